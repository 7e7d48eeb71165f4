"""The quarantine gate: is a fetched catalogue complete and plausible enough to become current?

A snapshot is held back (quarantined) when it is

* incomplete: a page failed after its retries, pagination did not end, or fewer items arrived
  than ``meta.total`` says;
* empty where it cannot be: no plans, or no regions;
* implausible against the current snapshot: a collection shrank by more than
  ``catalog.max_count_drop`` (default 20 %; losing a single item never trips it, so small
  lists such as bare-metal plans can lose one), or a published price moved above
  ``old * catalog.max_price_ratio`` or below ``old * catalog.min_price_ratio`` (x1.5 / x0.5).

A quarantined snapshot retires nothing and changes nothing; an operator can review it
(``vultr-scraper quarantine``) and accept it (``vultr-scraper quarantine accept``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal

import msgspec

from vultr_scraper_core.config import CatalogConfig
from vultr_scraper_core.describe import plural
from vultr_scraper_core.models import PRICE_KINDS, Catalogue, Plan

_EXAMPLES = 3


class Verdict(msgspec.Struct, kw_only=True):
    accepted: bool
    reasons: list[str]


class PriceMove(msgspec.Struct, frozen=True, kw_only=True):
    plan: str
    kind: str
    region: str | None
    old: Decimal
    new: Decimal

    def describe(self) -> str:
        where = f" in {self.region}" if self.region else ""
        ratio = self.new / self.old
        return f"{self.plan} {self.kind}{where} {self.old} -> {self.new} (x{ratio:.2f})"


def evaluate(
    current: Catalogue,
    candidate: Catalogue,
    *,
    problems: Sequence[str],
    checked: Collection[str],
    config: CatalogConfig,
) -> Verdict:
    """``checked``: the collections this run fetched (the OS list may be switched off)."""
    reasons = list(problems)
    for name in ("plans", "regions"):
        if name in checked and not getattr(candidate, name):
            reasons.append(f"no {name} returned")
    for name in checked:
        before, after = len(getattr(current, name)), len(getattr(candidate, name))
        if before and before - after > max(1.0, before * config.max_count_drop):
            reasons.append(
                f"{name}: {plural(after, 'item')}, down from {before} "
                f"(more than {config.max_count_drop:.0%} fewer)"
            )
    moves = list(price_moves(current, candidate, config))
    if moves:
        examples = ", ".join(move.describe() for move in moves[:_EXAMPLES])
        more = f" and {len(moves) - _EXAMPLES} more" if len(moves) > _EXAMPLES else ""
        reasons.append(
            f"{plural(len(moves), 'price')} moved beyond x{config.max_price_ratio} or "
            f"x{config.min_price_ratio}: {examples}{more}"
        )
    return Verdict(accepted=not reasons, reasons=reasons)


def price_moves(
    current: Catalogue, candidate: Catalogue, config: CatalogConfig
) -> Iterator[PriceMove]:
    """Published prices (base and per region) that moved beyond the configured ratios."""
    high = Decimal(str(config.max_price_ratio))
    low = Decimal(str(config.min_price_ratio))
    for name in ("plans", "metal"):
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


def _published(plan: Plan, region: str | None) -> dict[str, Decimal]:
    if region is None:
        prices = {kind: getattr(plan, kind) for kind in PRICE_KINDS}
    else:
        prices = dict((plan.location_cost or {}).get(region, {}))
    return {kind: value for kind, value in prices.items() if isinstance(value, Decimal)}
