"""How comparable past cases were decided (`empower case precedents`, and the walk-through
after its evaluation): the criteria from core.precedents, the counts from the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from empower_cli.core.models import Policy, Proposal
from empower_cli.core.money import parse_money
from empower_cli.core.precedents import RECENT, Criteria, Precedents, Recent, criteria, criteria_of, median
from empower_cli.core.timeutil import iso
from empower_cli.store import precedents as queries
from empower_cli.store.sqlite import Store


def find_precedents(*, policy: Policy, store: Store, case_type: str, action: str, facts: Mapping[str, str],
                    amount: str | None, now: dt.datetime) -> Precedents:  # fmt: skip
    """Comparable cases of this type, action and facts (core.precedents), and what became of them."""
    proposed = parse_money(amount, field="amount", digits=policy.digits) if amount is not None else None
    crit = criteria(policy, case_type=case_type, action=action, facts=facts, now=now)
    return precedents_for(crit, store=store, now=now, proposed=proposed)


def precedents_of(proposal: Proposal, *, policy: Policy, store: Store, now: dt.datetime) -> Precedents:
    """The walk-through's block: the proposal's facts are already typed."""
    ctype = policy.case_types[proposal.case_type]
    crit = criteria_of(policy, ctype=ctype, action=proposal.action, values=proposal.facts, now=now)
    return precedents_for(crit, store=store, now=now, proposed=proposal.amount)


def precedents_for(crit: Criteria, *, store: Store, now: dt.datetime, proposed: int | None = None) -> Precedents:
    ranges = [queries.Range(b.fact, float(b.lo), float(b.hi), b.upper_closed) for b in crit.bands]
    key = queries.Key(crit.case_type, crit.action, crit.signature, ranges)
    matched, approved, denied, expired, pending, low, high = queries.precedent_counts(store, key, now=iso(now))
    middle = (queries.approved_amounts_at(store, key, offset=(approved - 1) // 2, count=2 - approved % 2)
              if approved else [])
    recent = queries.recent_precedents(store, key, now=iso(now), limit=RECENT)
    below = queries.approved_at_or_below(store, key, amount=proposed) if proposed is not None else None
    return Precedents(
        criteria=crit, matched=matched, approved=approved, denied=denied, expired=expired, pending=pending,
        median=median(middle) if approved else None, low=low, high=high,
        recent=tuple(Recent(*r) for r in recent), proposed=proposed, at_or_below=below,
    )  # fmt: skip
