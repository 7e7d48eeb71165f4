"""The quarantine gate: is a fetched catalogue complete and plausible enough to become current?

A snapshot is held back (quarantined) when one of these checks finds something; each finding
names its check and the ``[catalog.gate]`` setting that decides it:

* ``incomplete``: a page failed after its retries, pagination did not end, an answer exceeded
  its byte cap, an id came twice with different content, or fewer items arrived than
  ``meta.total`` says;
* ``empty``: no plans, or no regions; or any other collection this run read (applications,
  Kubernetes versions, object-storage clusters, ISOs, OS images, database plans) came back
  empty while the committed catalogue has some;
* ``count_drop`` / ``count_growth``: a collection shrank by more than ``max_count_drop`` (20 %)
  or grew by more than ``max_count_growth`` (50 %); one item more or less never trips either;
* ``turnover``: more than ``max_turnover`` (25 %) of a collection's ids were replaced in one
  run, i.e. retired while others were added (a wholesale rename keeps the count but replaces
  every id); a plain shrink or growth is left to the count checks, and one id replaced never
  trips it;
* ``price_ratio``: a published price moved above ``old * max_price_ratio`` or below
  ``old * min_price_ratio`` (x1.5 / x0.5);
* ``lost_prices``: more than ``max_lost_prices`` (0) published prices vanished from a plan
  that had them, or can no longer be read as a number (``"N/A"``);
* ``required_fields``: a plan lacks a field of ``required_plan_fields`` (``locations``, and
  ``price``: at least one published price). A plan whose committed version already lacks the
  field is not held against it: the gate judges what changed, not Vultr's catalogue as such.

A quarantined snapshot retires nothing and changes nothing; an operator can review it
(``vultr-scraper quarantine``) and accept it (``vultr-scraper quarantine accept``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from vultr_scraper_core.config import CatalogGateConfig
from vultr_scraper_core.describe import plural
from vultr_scraper_core.models import PRICE_KINDS, Catalogue, Plan

_EXAMPLES = 3
PRICED = ("plans", "metal", "databases")
PRICE = "price"  # in required_plan_fields: at least one published price


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    check: str  # incomplete, empty, count_drop, count_growth, turnover, price_ratio, ...
    reason: str


class Verdict(msgspec.Struct, kw_only=True):
    findings: list[Finding]

    @property
    def accepted(self) -> bool:
        return not self.findings

    @property
    def reasons(self) -> list[str]:
        return [finding.reason for finding in self.findings]

    @property
    def checks(self) -> list[str]:
        return list(dict.fromkeys(finding.check for finding in self.findings))


class PriceMove(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    kind: str
    region: str | None
    old: Decimal
    new: Decimal

    def describe(self) -> str:
        ratio = self.new / self.old
        return f"{self.plan} {self.kind}{_in(self.region)} {self.old} -> {self.new} (x{ratio:.2f})"


class LostPrice(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    kind: str
    region: str | None
    old: Decimal | None  # None: the plan is new, its price unreadable from the start
    new: Any  # the unreadable value as received, or None when the price vanished

    def describe(self) -> str:
        now = "missing" if self.new is None else f"unreadable {_quote(self.new)}"
        was = "" if self.old is None else f"{self.old} -> "
        return f"{self.plan} {self.kind}{_in(self.region)} {was}{now}"


def evaluate(
    current: Catalogue,
    candidate: Catalogue,
    *,
    problems: Sequence[str],
    checked: Collection[str],
    config: CatalogGateConfig,
) -> Verdict:
    """``checked``: the collections this run fetched (the OS list may be switched off)."""
    findings = [Finding(check="incomplete", reason=problem) for problem in problems]
    for name in checked:
        if getattr(candidate, name):
            continue
        if name in ("plans", "regions"):
            findings.append(Finding(check="empty", reason=f"no {name} returned"))
        elif getattr(current, name):
            findings.append(
                Finding(
                    check="empty",
                    reason=f"no {name} returned, {len(getattr(current, name))} committed",
                )
            )
    for name in checked:
        findings.extend(
            _count_findings(name, getattr(current, name), getattr(candidate, name), config)
        )
    moves = list(price_moves(current, candidate, config))
    if moves:
        findings.append(
            Finding(
                check="price_ratio",
                reason=f"{plural(len(moves), 'price')} moved beyond x{config.max_price_ratio} "
                f"or x{config.min_price_ratio} (catalog.gate.max_price_ratio / "
                f"min_price_ratio): {_examples([move.describe() for move in moves])}",
            )
        )
    lost = list(lost_prices(current, candidate))
    if len(lost) > config.max_lost_prices:
        findings.append(
            Finding(
                check="lost_prices",
                reason=f"{plural(len(lost), 'published price')} vanished or became "
                f"unreadable (more than catalog.gate.max_lost_prices = "
                f"{config.max_lost_prices}): {_examples([item.describe() for item in lost])}",
            )
        )
    missing = list(missing_fields(current, candidate, config.required_plan_fields))
    if missing:
        plans = {plan for plan, _ in missing}
        findings.append(
            Finding(
                check="required_fields",
                reason=f"{plural(len(plans), 'plan')} lack required fields "
                f"(catalog.gate.required_plan_fields): "
                f"{_examples([f'{plan} {field}' for plan, field in missing])}",
            )
        )
    return Verdict(findings=findings)


def _count_findings(
    name: str, before: Mapping[str, Any], after: Mapping[str, Any], config: CatalogGateConfig
) -> Iterator[Finding]:
    old, new = len(before), len(after)
    if not old:
        return  # the first snapshot of a collection: nothing to compare with
    if old - new > max(1.0, old * config.max_count_drop):
        yield Finding(
            check="count_drop",
            reason=f"{name}: {plural(new, 'item')}, down from {old} (more than "
            f"{config.max_count_drop:.0%} fewer, catalog.gate.max_count_drop)",
        )
    elif new - old > max(1.0, old * config.max_count_growth):
        yield Finding(
            check="count_growth",
            reason=f"{name}: {plural(new, 'item')}, up from {old} (more than "
            f"{config.max_count_growth:.0%} more, catalog.gate.max_count_growth)",
        )
    added = sorted(after.keys() - before.keys())
    retired = sorted(before.keys() - after.keys())
    # Replaced ids: retirements matched by additions. What the count checks already see (a
    # plain shrink or growth) is not counted again; one id replaced never trips it.
    replaced = min(len(added), len(retired))
    if replaced > max(1.0, old * config.max_turnover):
        examples = [f"retired {key}" for key in retired[:2]] + [f"added {key}" for key in added[:2]]
        yield Finding(
            check="turnover",
            reason=f"{name}: {len(retired)} ids retired and {len(added)} added in one run "
            f"({replaced / old:.0%} of {old} replaced, more than {config.max_turnover:.0%}, "
            f"catalog.gate.max_turnover), e.g. {', '.join(examples)}",
        )


def price_moves(
    current: Catalogue, candidate: Catalogue, config: CatalogGateConfig
) -> Iterator[PriceMove]:
    """Published prices (base and per region) that moved beyond the configured ratios."""
    high = Decimal(str(config.max_price_ratio))
    low = Decimal(str(config.min_price_ratio))
    for name in PRICED:
        before: Mapping[str, Plan] = getattr(current, name)
        after: Mapping[str, Plan] = getattr(candidate, name)
        for plan_id in sorted(before.keys() & after.keys()):
            old, new = before[plan_id], after[plan_id]
            regions = sorted((old.location_cost or {}).keys() & (new.location_cost or {}).keys())
            for region in [None, *regions]:
                old_prices = _published(old, region)
                new_prices = _published(new, region)
                for kind in PRICE_KINDS:
                    was, now = old_prices.get(kind), new_prices.get(kind)
                    # A zero price (the free plan) has no meaningful ratio.
                    if was is None or now is None or was <= 0:
                        continue
                    if now > was * high or now < was * low:
                        yield PriceMove(plan=plan_id, kind=kind, region=region, old=was, new=now)


def lost_prices(current: Catalogue, candidate: Catalogue) -> Iterator[LostPrice]:
    """Published prices that vanished from a plan that had them, or that cannot be read.

    An unreadable value is one the model kept in ``extra`` (``"N/A"``, ``null``-like text, a
    ``location_cost`` map that is not region -> prices); it counts for new plans too."""
    for name in PRICED:
        before: Mapping[str, Plan] = getattr(current, name)
        after: Mapping[str, Plan] = getattr(candidate, name)
        for plan_id in sorted(after):
            new = after[plan_id]
            old = before.get(plan_id)
            for kind in PRICE_KINDS:
                was = getattr(old, kind) if old is not None else None
                if kind in new.extra:
                    yield LostPrice(
                        plan=plan_id, kind=kind, region=None, old=was, new=new.extra[kind]
                    )
                elif was is not None and getattr(new, kind) is None:
                    yield LostPrice(plan=plan_id, kind=kind, region=None, old=was, new=None)
            yield from _lost_regional(plan_id, old, new)


def _lost_regional(plan_id: str, old: Plan | None, new: Plan) -> Iterator[LostPrice]:
    regional_before = (old.location_cost if old is not None else None) or {}
    if "location_cost" in new.extra:
        if not regional_before:
            yield LostPrice(
                plan=plan_id,
                kind="location_cost",
                region=None,
                old=None,
                new=new.extra["location_cost"],
            )
        for region, prices in sorted(regional_before.items()):
            for kind, price in sorted(prices.items()):
                yield LostPrice(
                    plan=plan_id,
                    kind=kind,
                    region=region,
                    old=price,
                    new=new.extra["location_cost"],
                )
        return
    regional_after = new.location_cost or {}
    for region, prices in sorted(regional_before.items()):
        for kind, price in sorted(prices.items()):
            if kind not in regional_after.get(region, {}):
                yield LostPrice(plan=plan_id, kind=kind, region=region, old=price, new=None)


def missing_fields(
    current: Catalogue, candidate: Catalogue, required: Sequence[str]
) -> Iterator[tuple[str, str]]:
    """(plan, field) for every required field a plan lacks and its committed version had.

    ``price`` is only asked of new plans: a price vanishing from a known plan is a lost price.
    """
    for name in PRICED:
        before: Mapping[str, Plan] = getattr(current, name)
        after: Mapping[str, Plan] = getattr(candidate, name)
        for plan_id in sorted(after):
            new, old = after[plan_id], before.get(plan_id)
            for field in required:
                if field == PRICE:
                    if old is None and not _has_price(new):
                        yield plan_id, field
                elif not _has(new, field) and (old is None or _has(old, field)):
                    yield plan_id, field


def _has(plan: Plan, field: str) -> bool:
    return getattr(plan, field, None) is not None or field in plan.extra


def _has_price(plan: Plan) -> bool:
    return any(_has(plan, kind) for kind in PRICE_KINDS)


def _published(plan: Plan, region: str | None) -> dict[str, Decimal]:
    if region is None:
        prices = {kind: getattr(plan, kind) for kind in PRICE_KINDS}
    else:
        prices = dict((plan.location_cost or {}).get(region, {}))
    return {kind: value for kind, value in prices.items() if isinstance(value, Decimal)}


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_EXAMPLES])
    return f"{shown} and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else shown


def _in(region: str | None) -> str:
    return f" in {region}" if region else ""


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."
