"""How comparable past cases were decided, for people: a few lines under the evaluation in
the walk-through and for `empower case precedents` (the JSON shape is in render/json.py)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from empower_cli.core.money import format_money
from empower_cli.core.precedents import BANDS, Band, Criteria, Precedents


def _band(criteria: Criteria, rule_id: str) -> Band | None:
    return next((b for b in criteria.bands if b.rule_id == rule_id), None)


def _number(value: Fraction, digits: int) -> str:
    """A band's bound: money to the minor unit (rounded half up), else a whole number or two decimals."""
    if digits:
        return format_money(math.floor(value * 10**digits + Fraction(1, 2)), digits)
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.2f}"


def band_json(criteria: Criteria, rule_id: str, digits: int) -> dict[str, Any]:
    """{"band": {number, of, fact, measure, above, up_to}} for a bent max rule; a min rule has
    {from, below}; {} for a blocked rule (no band)."""
    b = _band(criteria, rule_id)
    if b is None:
        return {}
    d = digits if b.money else 0
    ends = {"above": _number(b.lo, d), "up_to": _number(b.hi, d)} if b.upper_closed else {
        "from": _number(b.lo, d), "below": _number(b.hi, d)}  # fmt: skip
    return {"band": {"number": b.number, "of": BANDS, "fact": b.fact, "measure": b.measure, **ends}}


def band_text(b: Band, digits: int) -> str:
    """`days_since_purchase above 15 up to 20 (band 1 of 3)`."""
    d = digits if b.money else 0
    what = f"{b.fact} (age in days)" if b.measure == "age" else b.fact
    ends = f"above {_number(b.lo, d)} up to {_number(b.hi, d)}" if b.upper_closed else (
        f"from {_number(b.lo, d)} below {_number(b.hi, d)}")  # fmt: skip
    return f"{what} {ends} (band {b.number} of {BANDS})"


def precedent_lines(p: Precedents, *, digits: int, currency: str) -> list[str]:
    """Rich markup lines (ids and agents escaped)."""
    from empower_cli.render.terminal import safe

    c = p.criteria
    bent = [f"{safe(rid)} {res}" for rid, res in c.results if res != "pass"]
    what = f"{safe(c.case_type)} · {safe(c.action)} · " + (", ".join(bent) if bent else "no rule bent or blocked")
    lines = [f"[bold]precedents[/]: {p.matched:,} comparable case{'' if p.matched == 1 else 's'} ({what})"]
    lines += [f"  {band_text(b, digits)}" for b in c.bands]
    if not p.matched:
        return [*lines, "  [dim]no case like this one was recorded yet[/]"]
    lines.append(f"  approved {p.approved:,} · denied {p.denied:,} · expired {p.expired:,} · pending {p.pending:,}")
    if p.median is not None and p.low is not None and p.high is not None:
        lines.append(f"  amount approved: median {format_money(p.median, digits)}, from {format_money(p.low, digits)} "
                     f"to {format_money(p.high, digits)} {safe(currency)}")  # fmt: skip
    if p.proposed is not None and p.approved:
        lines.append(f"  {format_money(p.proposed, digits)} is at or above {p.at_or_below:,} of the {p.approved:,} "
                     "approved amounts")  # fmt: skip
    for r in p.recent:
        lines.append(f"  case {r.case_id} · {r.opened_at[:10]} · {r.status} · {format_money(r.amount, digits)} "
                     f"· {safe(r.agent)}")  # fmt: skip
    return lines
