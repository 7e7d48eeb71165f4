"""Vultr catalogue records as msgspec Structs, parsed leniently and exactly.

Rules that every record type follows (see ``notes/vultr-api.md`` for why):

* every field but ``id`` is optional, because fields come and go between API generations;
* a key the model does not know, or a known key whose value has an unusable type, is kept
  verbatim in ``extra`` (never dropped, never a crash); schema drift is reported separately,
  from the raw JSON shape (``observe_fields`` against ``documented_shape``);
* money is ``Decimal`` decoded from the JSON text (never through ``float``): ``7.5`` stays
  ``Decimal("7.5")``, ``0.007`` stays ``Decimal("0.007")``;
* ``locations`` loses empty strings and duplicates; ``[]`` (not sold anywhere) is kept;
* ``location_cost`` (region -> prices) replaces the base price in that region; an empty map is
  the same as no map.

Records have a *field view* (``record_fields``): wire name -> value, typed fields first, then
``extra``. ``parse_record(cls, {"id": ..., **record_fields(r)}) == r`` holds for every record,
which is what the change feed relies on to rebuild history from old/new values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar, get_args

import msgspec

PRICE_KINDS = ("monthly_cost", "hourly_cost", "monthly_cost_preemptible", "hourly_cost_preemptible")
TWIN_SUFFIX = "-sc1"  # São Paulo SKUs: a separate plan id at a regional price (notes §6)

# JSON-decoding that keeps every non-integer number exact.
_JSON_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(body: bytes) -> Any:
    """Decode Vultr JSON: integers stay ``int``, every other number becomes an exact Decimal."""
    return _JSON_DECODER.decode(body)


class Record(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every catalogue record."""

    # Unknown keys, and known keys whose value could not be converted, exactly as received
    # (numbers that are not integers as their decimal text).
    extra: dict[str, Any] = {}


class _PlanFields(Record, kw_only=True, omit_defaults=True):
    id: str
    ram: int | None = None  # MB
    disk: int | None = None  # GB per disk
    disk_count: int | None = None
    bandwidth: int | None = None  # GB per month
    monthly_cost: Decimal | None = None
    hourly_cost: Decimal | None = None
    monthly_cost_preemptible: Decimal | None = None
    hourly_cost_preemptible: Decimal | None = None
    invoice_type: str | None = None
    deploy_ondemand: bool | None = None
    deploy_preemptible: bool | None = None
    type: str | None = None
    locations: list[str] | None = None
    location_cost: dict[str, dict[str, Decimal]] | None = None
    gpu_vram_gb: int | None = None  # total VRAM of the plan
    gpu_type: str | None = None
    gpu_count: int | str | None = None  # may be a "num/den" fraction string

    def prices(self, region: str | None = None) -> dict[str, Decimal | None]:
        """The four published prices, with ``location_cost[region]`` replacing base ones."""
        base: dict[str, Decimal | None] = {kind: getattr(self, kind) for kind in PRICE_KINDS}
        regional = (self.location_cost or {}).get(region or "")
        if regional:
            base.update({kind: regional[kind] for kind in PRICE_KINDS if kind in regional})
        return base

    @property
    def gpu_fraction(self) -> Fraction | None:
        """``gpu_count`` as a number (``"1/2"`` -> 1/2), or None when absent or unreadable."""
        value = self.gpu_count
        if value is None:
            return None
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            return None

    @property
    def twin_of(self) -> str | None:
        """The base plan id of a ``-sc1`` regional twin (whether or not that plan exists)."""
        return self.id.removesuffix(TWIN_SUFFIX) if self.id.endswith(TWIN_SUFFIX) else None


class CloudPlan(_PlanFields, kw_only=True, omit_defaults=True):
    """``/v2/plans`` -> ``plans[]``. ``type`` is the family (vc2, vhf, vhp, voc, vcg, vdm, vx1)."""

    vcpu_count: int | None = None
    disk_type: str | None = None
    cpu_vendor: str | None = None
    storage_type: str | None = None
    vcpu_type: str | None = None
    clusterable: str | None = None  # "yes" / "no" (a string, not a bool)
    gpu_brand: str | None = None
    link_speed: Decimal | None = None  # Gbps, "up to"
    link_type: str | None = None

    @property
    def is_clusterable(self) -> bool | None:
        return {"yes": True, "no": False}.get((self.clusterable or "").lower())

    @property
    def vcpus(self) -> int | None:
        return self.vcpu_count


class MetalPlan(_PlanFields, kw_only=True, omit_defaults=True):
    """``/v2/plans-metal`` -> ``plans_metal[]``. ``type`` is a storage class (SSD, NVMe)."""

    physical_cpus: int | None = None
    cpu_count: int | None = None
    cpu_cores: int | None = None
    cpu_threads: int | None = None
    cpu_model: str | None = None
    cpu_mhz: int | None = None

    @property
    def vcpus(self) -> int | None:
        # What a cloud "vCPU" compares with: hardware threads, else cores.
        return self.cpu_threads or self.cpu_cores or self.cpu_count


class Region(Record, kw_only=True, omit_defaults=True):
    id: str
    city: str | None = None
    country: str | None = None
    continent: str | None = None
    options: list[str] | None = None
    connectivity: list[str] | None = None


class OperatingSystem(Record, kw_only=True, omit_defaults=True):
    id: int
    name: str | None = None
    arch: str | None = None
    family: str | None = None


class Application(Record, kw_only=True, omit_defaults=True):
    """``/v2/applications?type=all`` -> ``applications[]``: one-click and Marketplace apps."""

    id: int
    name: str | None = None
    short_name: str | None = None
    deploy_name: str | None = None
    type: str | None = None  # "one-click" or "marketplace"
    vendor: str | None = None
    image_id: str | None = None  # "" for one-click apps


class KubernetesVersion(Record, kw_only=True, omit_defaults=True):
    """One entry of ``/v2/kubernetes/versions`` -> ``versions[]`` (plain strings on the wire,
    e.g. ``"v1.33.0+1"``; the client turns each into ``{"id": version}``)."""

    id: str


class StorageCluster(Record, kw_only=True, omit_defaults=True):
    """``/v2/object-storage/clusters`` -> ``clusters[]``."""

    id: int
    region: str | None = None
    hostname: str | None = None
    deploy: str | None = None  # "yes" / "no": new subscriptions accepted (a string, not a bool)

    @property
    def deployable(self) -> bool | None:
        return {"yes": True, "no": False}.get((self.deploy or "").lower())


class PublicIso(Record, kw_only=True, omit_defaults=True):
    """``/v2/iso-public`` -> ``public_isos[]`` (the id is a string)."""

    id: str
    name: str | None = None
    description: str | None = None
    md5sum: str | None = None


class DatabasePlan(_PlanFields, kw_only=True, omit_defaults=True):
    """``/v2/databases/plans`` -> ``plans[]`` (needs an API key). ``monthly_cost`` is the price
    in every region of ``locations`` unless ``location_cost`` says otherwise."""

    number_of_nodes: int | None = None
    vcpu_count: int | None = None
    supported_engines: dict[str, bool] | None = None  # engine -> offered (mysql, pg, valkey, ...)
    max_connections: dict[str, int] | None = None  # engine -> connection limit

    @property
    def engines(self) -> list[str]:
        return sorted(name for name, on in (self.supported_engines or {}).items() if on)

    @property
    def vcpus(self) -> int | None:
        return self.vcpu_count


class RegionAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """``/v2/regions/{id}/availability``: the only "in stock now" signal (plain id lists)."""

    region: str
    available_plans: list[str] = []
    vpc_only_plans: list[str] = []


Plan = CloudPlan | MetalPlan
R = TypeVar("R", bound=Record)


class Catalogue(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One snapshot: every collection keyed by id (integer ids as decimal strings)."""

    plans: dict[str, CloudPlan] = {}
    metal: dict[str, MetalPlan] = {}
    regions: dict[str, Region] = {}
    os: dict[str, OperatingSystem] = {}
    apps: dict[str, Application] = {}
    k8s_versions: dict[str, KubernetesVersion] = {}
    storage_clusters: dict[str, StorageCluster] = {}
    isos: dict[str, PublicIso] = {}
    databases: dict[str, DatabasePlan] = {}

    def plan(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id) or self.metal.get(plan_id)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in COLLECTIONS}


# Collections of a Catalogue, and the record type of each.
COLLECTIONS: dict[str, type[Record]] = {
    "plans": CloudPlan,
    "metal": MetalPlan,
    "regions": Region,
    "os": OperatingSystem,
    "apps": Application,
    "k8s_versions": KubernetesVersion,
    "storage_clusters": StorageCluster,
    "isos": PublicIso,
    "databases": DatabasePlan,
}


class RecordError(ValueError):
    """An item that cannot be a record at all (no usable ``id``)."""


# -- parsing ---------------------------------------------------------------------------------

_PLAIN_TYPES = (str, int, bool)


@functools.cache
def _exact_types(cls: type[Record]) -> dict[str, type]:
    """Wire name -> T, for the fields declared ``T`` or ``T | None`` with T str, int or bool: a
    value of exactly that type needs no conversion (exact: a bool is no int here)."""
    found: dict[str, type] = {}
    for name, annotation in _typed_fields(cls).items():
        members = [member for member in get_args(annotation) if member is not type(None)]
        members = members or [annotation]  # ``id: str``
        if len(members) == 1 and members[0] in _PLAIN_TYPES:
            found[name] = members[0]
    return found


@functools.cache
def _typed_fields(cls: type[Record]) -> dict[str, Any]:
    """Wire name -> annotated type, for every typed field except ``extra``."""
    return {
        field.encode_name: field.type
        for field in msgspec.structs.fields(cls)
        if field.name != "extra"
    }


def parse_record(cls: type[R], raw: Mapping[str, Any]) -> R:
    """Build a record from one decoded JSON object, never failing on a field's value."""
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a JSON object, got {json_kind(raw)}")
    types = _typed_fields(cls)
    exact = _exact_types(cls)
    typed: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, raw_value in raw.items():
        if raw_value is None:  # null is the same as absent (drift checks still see it)
            continue
        # Conversion works on the plain form (exact decimal text), so a record rebuilt from its
        # own document, or from change events, converts exactly the same way.
        value = plain(raw_value)
        field_type = types.get(key)
        if field_type is None:
            extra[key] = value
            continue
        if type(value) is exact.get(key):  # most fields: already what msgspec would return
            typed[key] = value
            continue
        try:
            converted = msgspec.convert(value, field_type, strict=False)
        except msgspec.ValidationError:
            if key == "id":
                raise RecordError(f"unusable id {raw_value!r}") from None
            extra[key] = value
            continue
        normalised = _normalise(key, converted)
        if normalised is _INVALID:
            extra[key] = value
        elif normalised is not None:
            typed[key] = normalised
    if "id" not in typed:
        raise RecordError("object has no id")
    return cls(**typed, extra=extra)


_INVALID = object()


def _normalise(key: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return value if value.is_finite() else _INVALID
    if key == "locations" and isinstance(value, list):
        # Empty strings have been seen inside the list; the order is Vultr's, keep it.
        unique = dict.fromkeys(value)
        unique.pop("", None)
        return list(unique)
    if key == "location_cost" and isinstance(value, dict):
        cleaned: dict[str, dict[str, Decimal]] = {}
        for region, prices in value.items():
            if not all(price.is_finite() for price in prices.values()):
                return _INVALID
            if region and prices:
                cleaned[region] = prices
        return cleaned or None
    return value


def parse_records(cls: type[R], items: Iterable[Any]) -> tuple[dict[str, R], list[str]]:
    """Records keyed by ``str(id)`` (first occurrence wins) and a list of problems found."""
    records: dict[str, R] = {}
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            record = parse_record(cls, item)
        except RecordError as error:
            problems.append(f"item {index}: {error}")
            continue
        record_id = str(getattr(record, "id"))  # noqa: B009 - every record type has an id
        if record_id in records:
            problems.append(f"duplicate id {record_id}")
            continue
        records[record_id] = record
    return records, problems


def availability_problem(document: Any) -> str | None:
    """Why an availability answer cannot be trusted, or None: it must be a JSON object whose
    ``available_plans`` is a list of plan ids (strings). A missing list is not "nothing in
    stock": it is an answer that says nothing."""
    if not isinstance(document, Mapping):
        return f"the answer is a JSON {json_kind(document)}, not an object"
    plans = document.get("available_plans")
    if plans is None:
        return "the answer has no available_plans list"
    if not isinstance(plans, list):
        return f"available_plans is a JSON {json_kind(plans)}, not an array"
    odd = [item for item in plans if not isinstance(item, str) or not item]
    if odd:
        return f"available_plans holds {len(odd)} item(s) that are not plan ids, e.g. {odd[0]!r}"
    return None


def parse_availability(region: str, document: Any) -> RegionAvailability:
    """Lenient: a missing or malformed list counts as empty (drift is reported elsewhere)."""

    def ids(key: str) -> list[str]:
        value = document.get(key) if isinstance(document, Mapping) else None
        if not isinstance(value, list):
            return []
        return list(dict.fromkeys(item for item in value if isinstance(item, str) and item))

    return RegionAvailability(
        region=region,
        available_plans=ids("available_plans"),
        vpc_only_plans=ids("available_vpc_only_plans"),
    )


# -- field views and exact comparison ----------------------------------------------------------


def record_fields(record: Record) -> dict[str, Any]:
    """Wire name -> value for every present field except ``id`` (Decimals kept as Decimal)."""
    view: dict[str, Any] = {}
    for key in _typed_fields(type(record)):
        if key == "id":
            continue
        value = getattr(record, key)
        if value is not None:
            view[key] = msgspec.to_builtins(value, builtin_types=(Decimal,))
    view.update(record.extra)
    return view


def record_document(record: Record) -> dict[str, Any]:
    """The record as plain JSON data (``id`` first, money as decimal strings)."""
    document: dict[str, Any] = {"id": getattr(record, "id")}  # noqa: B009
    document.update(plain(record_fields(record)))
    return document


_SCALARS = frozenset({str, int, bool, float, type(None)})


def plain(value: Any) -> Any:
    """JSON-able data: Decimal -> its exact text; containers recursively; the rest as is."""
    kind = type(value)
    # Exact-type shortcuts first: a plan's region list is hundreds of strings at 10x size, and
    # the isinstance checks below (Mapping is an ABC) would cost more than the whole parse.
    if kind in _SCALARS:
        return value
    if kind is list:
        return [item if type(item) in _SCALARS else plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def same_value(left: Any, right: Any) -> bool:
    """Equality that respects JSON types: ``True`` is not ``1``, ``5`` equals ``Decimal("5.0")``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    numbers = (int, Decimal)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(
            same_value(item, right[key]) for key, item in left.items()
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_value, left, right))
    return type(left) is type(right) and bool(left == right)


# Decimals as JSON numbers: the text of each value then says which JSON type it has (5 and
# Decimal("5") alike, "5" and True apart), so equal bytes mean same_value holds.
_CANONICAL = msgspec.json.Encoder(decimal_format="number")


def same_record(left: Record, right: Record) -> bool:
    """``same_value`` over the two records' fields, ``id`` included.

    Most records of a scrape are unchanged, and two shortcuts settle those at a fraction of
    the cost of the field walk (2,400 plans: milliseconds instead of a third of a second):
    typed fields hold their declared types (``parse_record`` and the store's typed decoding
    see to it; none is declared both bool and int), so where ``==`` holds for them so does
    ``same_value``; ``extra`` is untyped (``True == 1`` there), so it must encode to the same
    bytes. Anything else (``7.5`` and ``7.50``, a changed field) is compared in full.
    """
    if type(left) is not type(right):
        return False
    if left == right and (
        left.extra is right.extra or _CANONICAL.encode(left.extra) == _CANONICAL.encode(right.extra)
    ):
        return True
    return same_value(
        {"id": getattr(left, "id"), **record_fields(left)},  # noqa: B009
        {"id": getattr(right, "id"), **record_fields(right)},  # noqa: B009
    )


# -- schema shapes (for drift detection) -------------------------------------------------------

Shape = dict[str, list[str]]  # field -> sorted JSON kinds seen ("integer", "string", ...)


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, Decimal | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


Observation = dict[str, dict[str, str]]  # field -> JSON kind -> id of the first item with it


def observe_fields(items: Iterable[Any]) -> Observation:
    """Field -> JSON kinds seen over ``items``, each with an example item id."""
    seen: Observation = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        example = str(item.get("id", ""))
        for key, value in item.items():
            seen.setdefault(str(key), {}).setdefault(json_kind(value), example)
    return seen


class FieldCensus(msgspec.Struct, kw_only=True):
    """How many of an answer's items carry each field (for "on 239 of 239 records")."""

    items: int = 0
    fields: dict[str, int] = {}


def field_census(items: Iterable[Any]) -> FieldCensus:
    census = FieldCensus(fields={})
    for item in items:
        if not isinstance(item, Mapping):
            continue
        census.items += 1
        for key in item:
            census.fields[str(key)] = census.fields.get(str(key), 0) + 1
    return census


def shape_of(observation: Observation) -> Shape:
    return {key: sorted(kinds) for key, kinds in sorted(observation.items())}


@functools.cache
def documented_shape(cls: type[Record]) -> dict[str, tuple[str, ...]]:
    """What the model expects per field, derived from its annotations."""
    return {
        key: tuple(sorted(_kinds_of(msgspec.inspect.type_info(field_type))))
        for key, field_type in _typed_fields(cls).items()
    }


def _kinds_of(info: msgspec.inspect.Type) -> set[str]:
    inspect = msgspec.inspect
    if isinstance(info, inspect.UnionType):
        return set().union(*(_kinds_of(member) for member in info.types))
    if isinstance(info, inspect.NoneType):
        return {"null"}
    if isinstance(info, inspect.BoolType):
        return {"boolean"}
    if isinstance(info, inspect.IntType):
        return {"integer"}
    if isinstance(info, inspect.DecimalType | inspect.FloatType):
        return {"integer", "number"}  # costs mix 5 and 7.5 in one response
    if isinstance(info, inspect.StrType):
        return {"string"}
    if isinstance(info, inspect.ListType):
        return {"array"}
    if isinstance(info, inspect.DictType):
        return {"object"}
    return {"any"}


AVAILABILITY_SHAPE: dict[str, tuple[str, ...]] = {
    "available_plans": ("array",),
    "available_vpc_only_plans": ("array",),
}
