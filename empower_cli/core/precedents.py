"""What makes past cases comparable to a proposal (`empower case precedents`), and what their
decisions add up to. Pure: the store finds the cases, this module says which and sums them.

Comparable means: the same case type, the same action, the same rules bent or blocked (and
every other rule passed), and for each bent rule the fact in the same *band*. A bent rule's
bend range (from its standard limit, excluded, to its bend limit, included) is cut into
BANDS equal parts, measured the way the rule reads the fact (days of age for
`max_age_days`; from the top for a `min` rule): a return 20 days after purchase under
"15 days, bendable to 30" is in the first third (15, 20], as are 16 to 20 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from empower_cli.core.errors import InvalidInput
from empower_cli.core.evaluate import evaluate_rule
from empower_cli.core.facts import parse_fact_value
from empower_cli.core.models import CaseType, FactValue, Policy, Rule

BANDS = 3
RECENT = 3


@dataclass(frozen=True)
class Band:
    """Where a bent rule's fact must lie: lo < value <= hi (a `max` or age rule) or
    lo <= value < hi (a `min` rule), in the unit the cases store (money in whole units,
    age in days at the case's opening)."""

    rule_id: str
    fact: str
    measure: str  # "value" or "age" (days between the date fact and the case's opening)
    number: int  # 1 .. BANDS: how far into the bend range
    lo: Fraction
    hi: Fraction
    upper_closed: bool  # True: lo < v <= hi; False (a min rule): lo <= v < hi
    money: bool = False  # a money fact: lo and hi in whole currency units


@dataclass(frozen=True)
class Criteria:
    case_type: str
    action: str
    signature: str  # the rules not passed, `id=result` sorted by id, joined by commas
    results: tuple[tuple[str, str], ...]  # (rule id, result) of every rule, in policy order
    bands: tuple[Band, ...]


def signature(results: Sequence[tuple[str, str]]) -> str:
    """The rules bent or blocked, as the store keys each case: `receipt=blocked,return-window=bent`."""
    return ",".join(f"{rid}={res}" for rid, res in sorted(results) if res != "pass")


def criteria(policy: Policy, *, case_type: str, action: str, facts: Mapping[str, str],
             now: dt.datetime) -> Criteria:  # fmt: skip
    """What comparable cases share with a proposal of this type, action and facts.

    Every fact a rule reads must be given (exit 2 otherwise): without it, which rules the
    proposal bends is unknown. Other facts are checked if given and otherwise not needed.
    """
    ctype = policy.case_types.get(case_type)
    if ctype is None:
        raise InvalidInput("type", f"{case_type!r} is not a case type; one of {', '.join(policy.case_types)}")
    if action not in ctype.actions:
        raise InvalidInput("action", f"{action!r} is not an action for {ctype.id}; one of {', '.join(ctype.actions)}")
    return criteria_of(policy, ctype=ctype, action=action, values=_typed(ctype, facts, policy.digits), now=now)


def criteria_of(policy: Policy, *, ctype: CaseType, action: str, values: Mapping[str, FactValue],
                now: dt.datetime) -> Criteria:  # fmt: skip
    """The criteria of a proposal whose facts are already typed (the walk-through's)."""
    results, bands = [], []
    for rule in ctype.rules:
        if rule.fact not in values:
            raise InvalidInput("fact", f"{rule.fact} is needed to find comparable cases (rule {rule.id}): "
                                       f"--fact {rule.fact}=VALUE")  # fmt: skip
        result = evaluate_rule(rule, values[rule.fact], now=now)
        results.append((rule.id, result))
        if result == "bent":
            money = getattr(ctype.fact(rule.fact), "type", "") == "money"
            bands.append(band_of(rule, values[rule.fact], now=now, digits=policy.digits if money else None))
    return Criteria(ctype.id, action, signature(results), tuple(results), tuple(bands))


def _typed(ctype: CaseType, facts: Mapping[str, str], digits: int) -> dict[str, FactValue]:
    out: dict[str, FactValue] = {}
    for name, raw in facts.items():
        fact = ctype.fact(name)
        if fact is None:
            known = ", ".join(f.name for f in ctype.facts) or "none"
            raise InvalidInput("fact", f"{name!r} is not a fact of {ctype.id}; its facts: {known}")
        out[name] = parse_fact_value(fact, raw, digits=digits)
    return out


def band_of(rule: Rule, value: FactValue, *, now: dt.datetime, digits: int | None) -> Band:
    """The band of a bent rule's fact (see the module docstring); `digits`: the minor digits
    of a money fact (its limits are minor units, the cases store decimal text), else None."""
    assert isinstance(rule.standard, int)
    assert isinstance(rule.bend, int)
    if rule.op == "max_age_days":
        assert isinstance(value, dt.date)
        measured, measure = (now.date() - value).days, "age"
    else:
        assert isinstance(value, int)
        measured, measure = value, "value"
    down = rule.op == "min"
    width = abs(rule.bend - rule.standard)
    distance = rule.standard - measured if down else measured - rule.standard
    number = min(BANDS, max(1, -(-BANDS * distance // width)))  # ceil, within 1..BANDS
    near = Fraction((number - 1) * width, BANDS)
    far = Fraction(number * width, BANDS)
    lo, hi = (rule.standard - far, rule.standard - near) if down else (rule.standard + near, rule.standard + far)
    scale = 10 ** (digits or 0)
    return Band(rule.id, rule.fact, measure, number, lo / scale, hi / scale, upper_closed=not down,
                money=digits is not None)  # fmt: skip


# -- what the comparable cases add up to -------------------------------------------------------


@dataclass(frozen=True)
class Recent:
    case_id: int
    opened_at: str
    status: str
    amount: int
    agent: str


@dataclass(frozen=True)
class Precedents:
    criteria: Criteria
    matched: int
    approved: int
    denied: int
    expired: int
    pending: int
    median: int | None  # of the amounts approved, in minor units (half up between two)
    low: int | None
    high: int | None
    recent: tuple[Recent, ...]
    proposed: int | None = None  # the --amount asked about
    at_or_below: int | None = None  # approved amounts at or below it


def median(sorted_amounts: Sequence[int]) -> int | None:
    """The middle amount; between two, their mean rounded half up to the minor unit (exact)."""
    n = len(sorted_amounts)
    if n == 0:
        return None
    a, b = sorted_amounts[(n - 1) // 2], sorted_amounts[n // 2]
    return (a + b + 1) // 2
