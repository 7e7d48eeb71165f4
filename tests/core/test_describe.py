"""One sentence per change event, shared by the Atom feed, the status page and notifications."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from vultr_scraper_core.describe import describe_event, plural
from vultr_scraper_core.store.changes import ChangeEvent, EventKind

AT = datetime(2026, 5, 1, tzinfo=UTC)


def make(kind: str, subject: str, **fields: Any) -> ChangeEvent:
    return ChangeEvent(kind=kind, at=AT, subject=subject, **fields)


def test_stock_is_words_not_booleans() -> None:
    back = make(
        EventKind.STOCK_CHANGED,
        "vcg-a100-1c-6g-4vram",
        region="fra",
        field="in_stock",
        old=False,
        new=True,
    )
    assert describe_event(back) == "vcg-a100-1c-6g-4vram back in stock in fra"
    gone = msgspec.structs.replace(back, old=True, new=False)
    assert describe_event(gone) == "vcg-a100-1c-6g-4vram out of stock in fra"


def test_prices_with_unit_and_change() -> None:
    price = make(
        EventKind.PRICE_CHANGED,
        "vhp-2c-4gb-amd",
        region="fra",
        field="monthly_cost",
        old="26.4",
        new="24",
    )
    assert describe_event(price) == (
        "price of vhp-2c-4gb-amd in fra: 26.40 -> 24.00 USD/month (-9.1%)"
    )
    base = msgspec.structs.replace(
        price, region=None, field="hourly_cost", old="0.007", new="0.009"
    )
    assert describe_event(base) == (
        "price of vhp-2c-4gb-amd (base price): 0.007 -> 0.009 USD/hour (+28.6%)"
    )
    new_price = msgspec.structs.replace(price, old=None)
    assert describe_event(new_price) == "price of vhp-2c-4gb-amd in fra: none -> 24.00 USD/month"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            make(
                EventKind.PLAN_ADDED,
                "vc2-1c-1gb",
                new={"type": "vc2", "vcpu_count": 1, "ram": 1024, "monthly_cost": "5"},
            ),
            "new plan vc2-1c-1gb (vc2, 1 vCPU, 1024 MB, $5/month)",
        ),
        (make(EventKind.PLAN_RETIRED, "vc2-1c-1gb"), "plan vc2-1c-1gb retired"),
        (
            make(EventKind.SPEC_CHANGED, "vc2-1c-1gb", field="ram", old=1024, new=2048),
            "vc2-1c-1gb: ram changed 1024 -> 2048",
        ),
        (
            make(EventKind.REGION_ADDED, "fra", new={"city": "Frankfurt", "country": "DE"}),
            "region fra added (Frankfurt, DE)",
        ),
        (make(EventKind.REGION_REMOVED, "fra"), "region fra removed"),
        (
            make(EventKind.ENDPOINT_DOWN, "api", detail={"error": "timed out after 10 s"}),
            "endpoint api is DOWN: timed out after 10 s",
        ),
        (
            make(EventKind.ENDPOINT_UP, "api", detail={"downtime_s": 600}),
            "endpoint api is UP again after 10 min",
        ),
        (
            make(EventKind.SCHEMA_DRIFT, "/v2/plans", field="gpu_count", old="int", new="str"),
            "schema drift at /v2/plans: gpu_count int -> str",
        ),
        (
            make(
                EventKind.SCHEMA_DRIFT,
                "/v2/plans",
                field="gpu_brand",
                new=["string"],
                detail={"change": "new_field", "kinds": ["string"], "records": 239, "of": 239},
            ),
            "schema drift at /v2/plans: new field gpu_brand (string) on 239 of 239 records",
        ),
    ],
)
def test_every_kind_reads_as_a_sentence(event: ChangeEvent, expected: str) -> None:
    assert describe_event(event) == expected
    assert "True" not in describe_event(event) and "False" not in describe_event(event)


def test_plural() -> None:
    assert [plural(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert plural(1, "OS image") == "1 OS image"
    assert plural(3, "entry", "entries") == "3 entries"
