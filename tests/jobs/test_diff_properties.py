"""Properties of the catalogue diff: it is exact (apply(A, diff(A, B)) == B) and quiet on no
change (diff(A, A) == []), including unknown fields, drifted values and regional prices, and
the events survive the change feed's JSON encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vultr_scraper_core.models import (
    PRICE_KINDS,
    Catalogue,
    CloudPlan,
    MetalPlan,
    Region,
    parse_record,
    same_record,
)
from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_jobs.diff import apply_events, diff_catalogues

AT = datetime(2026, 1, 31, tzinfo=UTC)
REGIONS = ["ewr", "fra", "ams", "sao", ""]
PROPERTY_SETTINGS = settings(
    derandomize=True,  # the same examples on every run and machine
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)

prices = st.one_of(
    st.integers(min_value=0, max_value=20_000),
    st.decimals(min_value=0, max_value=20_000, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("7.50"), Decimal("7.5"), Decimal("1E+1")]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from(["", "yes", "no", "x", "1/2"]),
    st.decimals(min_value=-10, max_value=10, places=2, allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=6,
)
# Values a known field may turn into when the API drifts.
drifted = st.one_of(st.sampled_from(["n/a", "2", True, False, [], {}]), json_values)
location_cost = st.dictionaries(
    st.sampled_from(REGIONS), st.dictionaries(st.sampled_from(PRICE_KINDS), prices, max_size=4)
)


def _field(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the normal value, sometimes a drifted one."""
    return st.one_of(strategy, strategy, strategy, drifted)


common_fields: dict[str, st.SearchStrategy[Any]] = {
    "ram": _field(st.integers(min_value=0, max_value=4096)),
    "monthly_cost": _field(prices),
    "hourly_cost": _field(prices),
    "monthly_cost_preemptible": _field(prices),
    "type": _field(st.sampled_from(["vc2", "vhp", "vcg", "SSD"])),
    "locations": _field(st.lists(st.sampled_from(REGIONS), max_size=4)),
    "location_cost": _field(location_cost),
    "gpu_count": _field(st.one_of(st.integers(0, 8), st.sampled_from(["1/2", "1/7"]))),
    "deploy_ondemand": _field(st.booleans()),
    "brand_new": json_values,
    "another_unknown": json_values,
}
cloud_fields = {
    **common_fields,
    "vcpu_count": _field(st.integers(min_value=1, max_value=64)),
    "clusterable": _field(st.sampled_from(["yes", "no"])),
    "link_speed": _field(prices),
}
metal_fields = {**common_fields, "cpu_threads": _field(st.integers(1, 256))}
region_fields = {
    "city": _field(st.sampled_from(["São Paulo", "Frankfurt"])),
    "options": _field(st.lists(st.sampled_from(["ddos_protection", "kubernetes"]), max_size=2)),
    "brand_new": json_values,
}


@st.composite
def raw_object(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    chosen = draw(st.sets(st.sampled_from(sorted(fields))))
    return {name: draw(fields[name]) for name in sorted(chosen)}


def _records(record_type: type[Any], ids: list[str], fields: dict[str, Any]) -> Any:
    return st.dictionaries(
        st.sampled_from(ids),
        raw_object(fields),
        max_size=len(ids),
    ).map(
        lambda raw: {
            key: parse_record(record_type, {"id": key, **value}) for key, value in raw.items()
        }
    )


catalogues = st.builds(
    Catalogue,
    plans=_records(CloudPlan, ["vc2-1c-1gb", "vc2-1c-1gb-sc1", "vcg-a100"], cloud_fields),
    metal=_records(MetalPlan, ["vbm-4c-32gb", "vc2-1c-1gb"], metal_fields),
    regions=_records(Region, ["ewr", "fra", "sao"], region_fields),
)


def assert_same_catalogue(left: Catalogue, right: Catalogue) -> None:
    for name in ("plans", "metal", "regions"):
        mine, theirs = getattr(left, name), getattr(right, name)
        assert mine.keys() == theirs.keys(), name
        for key, record in mine.items():
            assert same_record(record, theirs[key]), (name, key, record, theirs[key])
            assert record == theirs[key]


@PROPERTY_SETTINGS
@given(old=catalogues, new=catalogues)
def test_applying_the_diff_of_a_to_b_onto_a_yields_b(old: Catalogue, new: Catalogue) -> None:
    events = diff_catalogues(old, new, at=AT)
    assert_same_catalogue(apply_events(old, events), new)
    # The same holds for the events as the change feed stores them (JSON).
    stored = [msgspec.json.decode(msgspec.json.encode(event), type=ChangeEvent) for event in events]
    assert_same_catalogue(apply_events(old, stored), new)
    # One event per changed field (and region), never a no-op event, money never a float.
    keys = [
        (event.detail["collection"], event.subject, event.kind, event.field, event.region)
        for event in events
    ]
    assert len(keys) == len(set(keys))
    for event in stored:
        if event.kind in ("price_changed", "spec_changed"):
            assert event.old != event.new or type(event.old) is not type(event.new)
        if event.kind == "price_changed":
            assert not isinstance(event.old, float) and not isinstance(event.new, float)


@PROPERTY_SETTINGS
@given(catalogue=catalogues)
def test_diff_of_a_catalogue_with_itself_is_empty(catalogue: Catalogue) -> None:
    assert diff_catalogues(catalogue, catalogue, at=AT) == []
    # A copy that went through storage (JSON) is still "the same".
    stored = msgspec.json.decode(msgspec.json.encode(catalogue), type=Catalogue)
    assert diff_catalogues(catalogue, stored, at=AT) == []
