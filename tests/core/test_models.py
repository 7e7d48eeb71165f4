"""Records parse every real Vultr body exactly and leniently; the field view round-trips."""

from __future__ import annotations

import itertools
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vultr_scraper_core.models import (
    AVAILABILITY_SHAPE,
    PRICE_KINDS,
    Catalogue,
    CloudPlan,
    MetalPlan,
    OperatingSystem,
    Record,
    RecordError,
    Region,
    availability_problem,
    decode_json,
    documented_shape,
    observe_fields,
    parse_availability,
    parse_record,
    parse_records,
    record_document,
    record_fields,
    same_record,
    same_value,
)

# sample file -> (record type, container key or None for a bare array)
SAMPLES: dict[str, tuple[type[Record], str | None]] = {
    "plans_2025-12-09_page1.json": (CloudPlan, "plans"),
    "plans-vc2_2026-01_array.json": (CloudPlan, None),
    "plans-vcg_2024-12_excerpt.json": (CloudPlan, "plans"),
    "plans-vdm_2026_excerpt.json": (CloudPlan, "plans"),
    "plans_2021-09.json": (CloudPlan, "plans"),
    "plans-metal-gpu_2024-12_excerpt.json": (MetalPlan, "plans_metal"),
    "plans-metal_2021-09.json": (MetalPlan, "plans_metal"),
    "regions_2026-01_array.json": (Region, None),
    "regions_2021-09.json": (Region, "regions"),
    "os-windows_2026-01_array.json": (OperatingSystem, None),
    "os_2021-09.json": (OperatingSystem, "os"),
    "os_2021-09_page1.json": (OperatingSystem, "os"),
    "os_2021-09_page2.json": (OperatingSystem, "os"),
    "os_2021-09_page3.json": (OperatingSystem, "os"),
}


def _items(samples_dir: Path, name: str) -> list[Any]:
    document = decode_json((samples_dir / name).read_bytes())
    container = SAMPLES[name][1]
    items = document[container] if container else document
    assert isinstance(items, list)
    return items


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_real_sample_parses_exactly_with_nothing_unknown(
    samples_dir: Path, name: str
) -> None:
    record_type = SAMPLES[name][0]
    items = _items(samples_dir, name)
    records, problems = parse_records(record_type, items)
    assert problems == []
    assert len(records) == len(items)
    for record in records.values():
        # Every field of every captured generation is modelled; nothing went to `extra`.
        assert record.extra == {}, record
        for kind in PRICE_KINDS:
            value = getattr(record, kind, None)
            assert value is None or type(value) is Decimal
        # The view round-trips, which the change feed relies on.
        assert same_record(parse_record(record_type, record_document(record)), record)
        # And the stored JSON round-trips exactly.
        stored = msgspec.json.decode(msgspec.json.encode(record), type=record_type)
        assert stored == record
    # No field or JSON type the model does not expect: real bodies raise no drift.
    documented = documented_shape(record_type)
    for field, kinds in observe_fields(items).items():
        assert field in documented, field
        assert set(kinds) <= set(documented[field]), (field, kinds)


def test_december_2025_page_keeps_published_money_exact(samples_dir: Path) -> None:
    plans, _ = parse_records(CloudPlan, _items(samples_dir, "plans_2025-12-09_page1.json"))
    assert plans["vc2-1c-1gb"].monthly_cost == Decimal("5")
    assert str(plans["vc2-1c-1gb"].hourly_cost) == "0.007"
    twin = plans["vc2-1c-1gb-sc1"]
    assert str(twin.monthly_cost) == "7.5"
    assert twin.twin_of == "vc2-1c-1gb"
    assert twin.locations == ["sao"]
    assert plans["vc2-1c-1gb"].twin_of is None
    assert plans["vc2-1c-1gb"].is_clusterable is False
    assert {plan.type for plan in plans.values()} == {"vc2", "vhf", "vhp", "voc"}


def test_vdm_plan_without_monthly_cost_and_sold_nowhere(samples_dir: Path) -> None:
    plans, _ = parse_records(CloudPlan, _items(samples_dir, "plans-vdm_2026_excerpt.json"))
    mi325x = plans["vcg-mi325x-252c-2872g-1536vram"]
    assert mi325x.monthly_cost is None
    assert mi325x.hourly_cost == Decimal("36.92")
    assert mi325x.locations == []  # kept: "not sold anywhere" is information
    assert mi325x.gpu_brand == "AMD"
    assert plans["vcg-a40-24c-120g-48vram"].type == "vdm"  # a vcg- id with another type


def test_metal_prices_and_cpu_counts(samples_dir: Path) -> None:
    plans, _ = parse_records(MetalPlan, _items(samples_dir, "plans-metal-gpu_2024-12_excerpt.json"))
    mi300x = plans["vbm-256c-2048gb-8-mi300x-gpu"]
    assert mi300x.monthly_cost == Decimal("11773.44")
    assert str(mi300x.monthly_cost_preemptible) == "9891.84"
    assert str(plans["vbm-112c-2048gb-8-h100-gpu"].hourly_cost_preemptible) == "18.4"
    assert mi300x.vcpus == 256  # threads
    old, _ = parse_records(MetalPlan, _items(samples_dir, "plans-metal_2021-09.json"))
    assert old["vbm-4c-32gb"].vcpus == 8
    assert old["vbm-4c-32gb"].monthly_cost == Decimal(120)


def test_regions_and_os_in_both_generations(samples_dir: Path) -> None:
    regions, _ = parse_records(Region, _items(samples_dir, "regions_2026-01_array.json"))
    assert len(regions) == 32
    assert regions["sao"].city == "São Paulo"
    old, _ = parse_records(Region, _items(samples_dir, "regions_2021-09.json"))
    assert old["atl"].options == []
    images, _ = parse_records(OperatingSystem, _items(samples_dir, "os_2021-09.json"))
    assert {image.arch for image in images.values()} >= {"x64", "i386"}
    pages = [
        parse_records(OperatingSystem, _items(samples_dir, f"os_2021-09_page{n}.json"))[0]
        for n in (1, 2, 3)
    ]
    assert {key for page in pages for key in page} == set(images)


def test_availability_sample(samples_dir: Path) -> None:
    document = decode_json((samples_dir / "regions-availability_2021-09.json").read_bytes())
    availability = parse_availability("ewr", document)
    assert len(availability.available_plans) == 17
    assert availability.vpc_only_plans == []
    assert set(observe_fields([document])) <= set(AVAILABILITY_SHAPE)


class PlanId(str):
    pass


@pytest.mark.parametrize(
    ("plans", "problem"),
    [
        ([], None),
        (["vc2-1c-1gb", "vhf-2c-4gb"], None),
        ([PlanId("vc2-1c-1gb")], None),  # a str all the same
        (["vc2-1c-1gb", ""], "1 item(s) that are not plan ids, e.g. ''"),
        (["vc2-1c-1gb", 3, None], "2 item(s) that are not plan ids, e.g. 3"),
        ([True], "1 item(s) that are not plan ids, e.g. True"),
        ([["vc2-1c-1gb"]], "1 item(s) that are not plan ids, e.g. ['vc2-1c-1gb']"),
        ([{"id": "vc2-1c-1gb"}], "1 item(s) that are not plan ids, e.g. {'id': 'vc2-1c-1gb'}"),
    ],
)
def test_availability_problem_names_items_that_are_not_plan_ids(
    plans: list[Any], problem: str | None
) -> None:
    found = availability_problem({"available_plans": plans})
    assert found == (None if problem is None else f"available_plans holds {problem}")


def test_decoding_never_goes_through_float() -> None:
    body = b'{"id":"p","monthly_cost":0.1,"hourly_cost":0.30000000000000004,"link_speed":2.5}'
    plan = parse_record(CloudPlan, decode_json(body))
    assert plan.monthly_cost == Decimal("0.1")
    assert str(plan.hourly_cost) == "0.30000000000000004"
    assert plan.link_speed == Decimal("2.5")


def test_odd_values_are_handled_not_fatal() -> None:
    raw = decode_json(
        b'{"id":"vcg-x","clusterable":"yes","gpu_count":"1/2","locations":["ewr","","ord","ewr"],'
        b'"vcpu_count":"2","brand_new":{"a":1.25},"monthly_cost":"n/a","ram":null,'
        b'"location_cost":{"fra":{"monthly_cost":26.4,"hourly_cost":0.04},"sao":{}}}'
    )
    plan = parse_record(CloudPlan, raw)
    assert plan.is_clusterable is True
    assert plan.gpu_count == "1/2"
    assert plan.gpu_fraction == Fraction(1, 2)
    assert plan.locations == ["ewr", "ord"]
    assert plan.vcpu_count == 2  # "2" still reads as a number; drift reports the type change
    assert plan.ram is None
    assert plan.monthly_cost is None
    # Unknown fields and unusable values are kept verbatim, numbers as exact text.
    assert plan.extra == {"brand_new": {"a": "1.25"}, "monthly_cost": "n/a"}
    assert plan.location_cost == {
        "fra": {"monthly_cost": Decimal("26.4"), "hourly_cost": Decimal("0.04")}
    }
    assert plan.prices("fra")["monthly_cost"] == Decimal("26.4")
    assert plan.prices("ewr")["monthly_cost"] is None
    assert same_record(parse_record(CloudPlan, record_document(plan)), plan)


def test_gpu_count_fraction_variants() -> None:
    assert parse_record(CloudPlan, {"id": "a", "gpu_count": 2}).gpu_fraction == 2
    assert parse_record(CloudPlan, {"id": "a", "gpu_count": "0.25"}).gpu_fraction == Fraction(1, 4)
    assert parse_record(CloudPlan, {"id": "a", "gpu_count": "1/0"}).gpu_fraction is None
    assert parse_record(CloudPlan, {"id": "a"}).gpu_fraction is None


def test_non_finite_prices_are_not_money() -> None:
    plan = parse_record(CloudPlan, {"id": "a", "monthly_cost": "NaN", "hourly_cost": "Infinity"})
    assert plan.monthly_cost is None and plan.hourly_cost is None
    assert plan.extra == {"monthly_cost": "NaN", "hourly_cost": "Infinity"}


def test_empty_location_cost_is_no_location_cost() -> None:
    plan = parse_record(CloudPlan, {"id": "a", "location_cost": {"fra": {}, "": {"x": 1}}})
    assert plan.location_cost is None


@pytest.mark.parametrize("raw", [{"vcpu_count": 1}, {"id": 5}, {"id": ["x"]}, "not an object"])
def test_items_without_a_usable_id_are_rejected(raw: Any) -> None:
    with pytest.raises(RecordError):
        parse_record(CloudPlan, raw)


def test_parse_records_reports_problems_and_duplicates() -> None:
    records, problems = parse_records(
        CloudPlan, [{"id": "a"}, {"id": "a", "ram": 2}, {"ram": 1}, {"id": "b"}]
    )
    assert list(records) == ["a", "b"]
    assert records["a"].ram is None  # first occurrence wins
    assert problems == ["duplicate id a", "item 2: object has no id"]


def test_os_ids_are_integers_keyed_as_text() -> None:
    records, _ = parse_records(OperatingSystem, [{"id": 2284, "name": "Ubuntu 24.04 LTS x64"}])
    assert records["2284"].id == 2284


def test_same_value_respects_json_types() -> None:
    assert same_value(Decimal("5"), Decimal("5.00"))
    assert same_value(5, Decimal("5.0"))
    assert not same_value(True, 1)
    assert not same_value("5", 5)
    assert not same_value([1, 2], [1, 2, 3])
    assert same_value({"a": [Decimal("1.0")]}, {"a": [1]})
    assert not same_value({"a": 1}, {"b": 1})


def test_catalogue_counts_and_lookup() -> None:
    plan = parse_record(CloudPlan, {"id": "vc2-1c-1gb"})
    metal = parse_record(MetalPlan, {"id": "vbm-4c-32gb"})
    catalogue = Catalogue(plans={plan.id: plan}, metal={metal.id: metal})
    assert catalogue.counts() == {
        "plans": 1,
        "metal": 1,
        "regions": 0,
        "os": 0,
        "apps": 0,
        "k8s_versions": 0,
        "storage_clusters": 0,
        "isos": 0,
        "databases": 0,
    }
    assert catalogue.plan("vbm-4c-32gb") is metal
    assert catalogue.plan("nope") is None


def test_documented_shape_follows_the_annotations() -> None:
    shape = documented_shape(CloudPlan)
    assert shape["monthly_cost"] == ("integer", "null", "number")
    assert shape["gpu_count"] == ("integer", "null", "string")
    assert shape["clusterable"] == ("null", "string")
    assert "extra" not in shape


# Values that print alike but are different JSON types (or the same number written apart).
_LOOKALIKES = [5, Decimal("5"), Decimal("5.0"), "5", True, 1, Decimal("1"), None, "", "7.5"]
_MONEY = [None, Decimal("5"), Decimal("5.0"), Decimal("7.5"), Decimal("7.50")]


def test_same_record_agrees_with_same_value_over_the_fields() -> None:
    """The byte comparison that short-cuts ``same_record`` never says "same" where a full
    ``same_value`` of the field views would not (and the full one decides the rest): every
    pair of look-alike values, typed (money) and untyped (``extra``, also nested)."""

    def plan(price: Any, extra: Any, nested: bool) -> CloudPlan:
        value = {"inner": [extra]} if nested else extra
        return CloudPlan(id="vc2-1c-1gb", monthly_cost=price, extra={"odd": value})

    compared = 0
    for money, odd, nested in itertools.product(
        itertools.product(_MONEY, repeat=2), itertools.product(_LOOKALIKES, repeat=2), (0, 1)
    ):
        a, b = plan(money[0], odd[0], bool(nested)), plan(money[1], odd[1], bool(nested))
        full = same_value({"id": a.id, **record_fields(a)}, {"id": b.id, **record_fields(b)})
        assert same_record(a, b) == full, (a, b)
        compared += 1
    assert compared == 2 * len(_MONEY) ** 2 * len(_LOOKALIKES) ** 2
