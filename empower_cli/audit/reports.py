"""Supervisor reports (SPEC §8): shares, outlier flags and policy candidates, as typed rows
(money in minor units) from the grouped rows store/reports.py queries; render/json.py gives
them their JSON shape (the hash-chain check is in verify.py).

Every report is one or two GROUP BY queries; Python only post-processes the grouped rows
(agents, rules, pairs, days), never the cases one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from empower_cli.core.errors import InvalidInput
from empower_cli.core.models import Policy
from empower_cli.core.money import format_money, share
from empower_cli.core.timeutil import iso
from empower_cli.store import reports as queries
from empower_cli.store.sqlite import Store

REPORTS = ("summary", "agents", "rules", "customers", "pairs", "outcomes")

# Outlier detection (README: "How reports flag"): the modified z-score of Iglewicz and
# Hoaglin, 0.6745 * (x - median) / MAD, flagged beyond 3.5. When the MAD is 0 (most peers
# identical) the mean absolute deviation * 1.2533 stands in for it.
Z_LIMIT = 3.5
MIN_RELATIVE_GAP = 0.25  # and at least 25 % away from the median: tight teams stay quiet
MIN_AGENT_CASES = 5  # agents with fewer cases are shown but neither flagged nor used as peers
MIN_PEERS = 3
REPEAT_MIN = 3  # a customer needs at least this many exceptions to be a repeat
BUDGET_FLAG_TENTHS = 9  # spend reaching 9/10 of the limit, compared in exact integers
PAIR_MIN_COSIGNS = 5
PAIR_SHARE = 0.5
CANDIDATE_MIN_BENT = 5
CANDIDATE_BENT_SHARE = 0.10  # of the case type's cases
CANDIDATE_APPROVED = 0.8
CANDIDATE_RETAINED = 0.8
CANDIDATE_DISSATISFIED = 0.2
PERCENTILE_TENTHS = 9  # the 90th percentile


@dataclass(frozen=True)
class Flag:
    """Why a row stands out: a stable `code` a script can match on, and the `text` people read.

    Codes: agents `lenient`, `harsh`, `high_spend`, `low_spend`; customers `repeat_exceptions`,
    `budget_used`; pairs `one_cosigner`.
    """

    code: str
    text: str


Flags = tuple[Flag, ...]  # a row's flags, in the order the report checks them; () when none


@dataclass(frozen=True)
class Period:
    """The reporting period on `opened_at`: since inclusive, until exclusive."""

    now: dt.datetime
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def span(self) -> queries.Span:
        """The period as the store's queries take it: ISO text."""
        return queries.Span(
            now=iso(self.now),
            since=iso(self.since) if self.since is not None else None,
            until=iso(self.until) if self.until is not None else None,
        )


@dataclass(frozen=True)
class SummaryReport:
    cases: int
    in_policy: int
    discretion_cases: int
    discretion_spent: int  # minor units
    escalations: int
    cosigns: int
    objections: int
    denials: int
    expired: int
    dissatisfied: int
    retention_after_discretion: float | None
    retention_after_denial: float | None
    weekly_spend: list[tuple[str, int]]  # (Monday, minor units), oldest first
    period: Period


@dataclass(frozen=True)
class AgentRow:
    agent: str
    cases: int
    discretion_cases: int
    spent: int
    mean_amount: int
    escalations: int
    objections_received: int
    flags: Flags
    spend_share: float | None


@dataclass(frozen=True)
class RuleRow:
    rule_id: str
    bent: int
    blocked: int
    spent: int
    candidate: bool
    suggested_limit: int | str | None  # days or a count, or money text (exact cents)
    bent_share: float | None
    approved_share: float | None
    retention: float | None


@dataclass(frozen=True)
class CustomerRow:
    customer_id: str
    cases: int
    discretion_cases: int
    spent: int
    budget_used_share: float | None
    flags: Flags


@dataclass(frozen=True)
class PairRow:
    agent: str
    cosigner: str
    count: int
    share: float
    flags: Flags


@dataclass(frozen=True)
class OutcomeRow:
    kind: str
    cases: int
    satisfied: int
    neutral: int
    dissatisfied: int
    retained: int
    lost: int
    retention: float | None


Report = SummaryReport | list[AgentRow] | list[RuleRow] | list[CustomerRow] | list[PairRow] | list[OutcomeRow]


# -- summary -------------------------------------------------------------------------


def summary(store: Store, period: Period) -> SummaryReport:
    row = queries.summary_counts(store, period.span())
    cases, in_policy, disc, spent, esc, cosigns, objections, denials, expired, dissat = row[:10]
    return SummaryReport(cases, in_policy, disc, spent, esc, cosigns, objections, denials, expired, dissat,
                         retention_after_discretion=share(row[10], row[11]),
                         retention_after_denial=share(row[12], row[13]),
                         weekly_spend=queries.weekly_spend(store, period.span()), period=period)  # fmt: skip


# -- robust outliers -----------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    median: float
    scale: float  # MAD / 0.6745, or the mean absolute deviation * 1.2533 when the MAD is 0

    def z(self, x: float) -> float:
        return 0.0 if self.scale == 0 else (x - self.median) / self.scale


def spread(values: Sequence[float]) -> Spread | None:
    return _weighted_spread([(v, 1) for v in values])


def outlier(value: float, s: Spread | None) -> int:
    """+1 far above the peers, -1 far below, 0 in line (see Z_LIMIT and MIN_RELATIVE_GAP)."""
    if s is None or s.scale == 0:
        return 0
    gap = value - s.median
    if abs(s.z(value)) <= Z_LIMIT or abs(gap) < MIN_RELATIVE_GAP * abs(s.median):
        return 0
    return 1 if gap > 0 else -1


def _weighted_median(pairs: Sequence[tuple[float, int]], total: int) -> float:
    """The median of values given as (value, how many), sorted by value."""
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    seen, lo = 0, None
    for value, n in pairs:
        if lo is None and seen + n > lo_rank:
            lo = value
        if seen + n > hi_rank:
            assert lo is not None
            return (lo + value) / 2
        seen += n
    raise AssertionError("counts do not add up to the total")


def _weighted_spread(histogram: Iterable[tuple[float, int]]) -> Spread | None:
    """Median and robust scale of values given as (value, how many) pairs."""
    pairs = sorted((float(v), n) for v, n in histogram if n > 0)
    total = sum(n for _, n in pairs)
    if total == 0:
        return None
    med = _weighted_median(pairs, total)
    devs = sorted((abs(v - med), n) for v, n in pairs)
    mad = _weighted_median(devs, total)
    scale = mad / 0.6745 if mad > 0 else 1.2533 * sum(d * n for d, n in devs) / total
    return Spread(med, scale)


# -- agents --------------------------------------------------------------------------


def agents(store: Store, period: Period, *, digits: int) -> list[AgentRow]:
    rows = queries.agent_rows(store, period.span())
    peers = [r for r in rows if r[1] >= MIN_AGENT_CASES]
    enough = len(peers) >= MIN_PEERS
    rate_spread = spread([r[2] / r[1] for r in peers]) if enough else None
    spend_spread = spread([r[3] / r[1] for r in peers]) if enough else None
    total_spent = sum(r[3] for r in rows)
    out: list[AgentRow] = []
    for agent, cases, disc, spent, disc_total, esc, obj in rows:
        flags: Flags = ()
        if enough and cases >= MIN_AGENT_CASES:
            flags = _agent_flags(disc / cases, (spent, cases), rate_spread, spend_spread, digits)
        out.append(AgentRow(agent, cases, disc, spent, _round_div(disc_total, disc), esc, obj, flags,
                            share(spent, total_spent)))  # fmt: skip
    return out


def _agent_flags(rate: float, spent_cases: tuple[int, int], rates: Spread | None, spends: Spread | None,
                 digits: int) -> Flags:  # fmt: skip
    """Why an agent stands out from peers (a float ratio only for the statistics; the money
    shown is exact integer division)."""
    spent, cases = spent_cases
    per_case = spent / cases
    flags: list[Flag] = []
    direction = outlier(rate, rates)
    if direction and rates is not None:
        word = "lenient" if direction > 0 else "harsh"
        flags.append(Flag(word, f"{word}: discretion rate {rate:.0%} vs peers' median {rates.median:.0%}"))
    direction = outlier(per_case, spends)
    if direction and spends is not None:
        word = "high" if direction > 0 else "low"
        flags.append(Flag(f"{word}_spend", f"{word} spend: {format_money(_round_div(spent, cases), digits)} per case "
                                           f"vs peers' median {format_money(round(spends.median), digits)}"))
    return tuple(flags)


def _round_div(total: int, count: int) -> int:
    """Integer cents, rounded half up; exact (no float)."""
    return (2 * total + count) // (2 * count) if count else 0


# -- rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    rule_id: str
    case_type: str
    fact: str
    measure: str  # "number", "money", "age" (days, for max_age_days) or "" (cannot suggest)
    direction: int  # +1: a max rule (bent values lie above), -1: a min rule


def rule_infos(policy: Policy) -> dict[str, RuleInfo]:
    infos = {}
    for ctype in policy.case_types.values():
        for rule in ctype.rules:
            fact = ctype.fact(rule.fact)
            measure = ""
            if rule.op in ("max", "min") and fact is not None:
                measure = "money" if fact.type == "money" else "number"
            elif rule.op == "max_age_days":
                measure = "age"
            infos[rule.id] = RuleInfo(rule.id, ctype.id, rule.fact, measure, -1 if rule.op == "min" else 1)
    return infos


def rules(store: Store, period: Period, *, policy: Policy) -> list[RuleRow]:
    """Per rule: bent, blocked, discretion spent, policy candidates and a suggested limit.

    The store collects the rules bent or blocked once; the counts and the percentiles are
    then grouped from that collection.
    """
    digits = policy.digits
    infos = rule_infos(policy)
    span = period.span()
    with queries.rule_hits(store, span, list(infos.values())) as hits:
        rows = hits.counts()
        merged = _by_rule(rows)
        limits = _percentiles(hits, {r: (infos[r].measure, m[-1]) for r, m in merged.items() if m[-1]}, digits)
    type_counts = queries.case_type_counts(store, span, sorted({t for _, t, *_ in rows}))
    type_cases: dict[str, int] = {}
    for rule_id, case_type, *_ in rows:
        type_cases[rule_id] = type_cases.get(rule_id, 0) + type_counts.get(case_type, 0)
    out = [_rule_row(rule_id, numbers, type_cases[rule_id], limits.get(rule_id))
           for rule_id, numbers in merged.items()]  # fmt: skip
    out.sort(key=lambda r: (-r.bent - r.blocked, r.rule_id))
    return out


def _by_rule(rows: Iterable[Sequence[Any]]) -> dict[str, list[int]]:
    """The counts of each rule, added up over its case types (one row per rule and case type)."""
    merged: dict[str, list[int]] = {}
    for rule_id, _, *numbers in rows:
        acc = merged.setdefault(rule_id, [0] * len(numbers))
        merged[rule_id] = [a + b for a, b in zip(acc, numbers, strict=True)]
    return merged


def _rule_row(rule_id: str, numbers: Sequence[int], type_cases: int, limit: int | str | None) -> RuleRow:
    n_bent, n_blocked, spent, approved, retained, known, dissat, reacted, _ = numbers
    candidate = (
        n_bent >= max(CANDIDATE_MIN_BENT, CANDIDATE_BENT_SHARE * type_cases)
        and approved >= CANDIDATE_APPROVED * n_bent
        and known > 0 and retained >= CANDIDATE_RETAINED * known
        and (reacted == 0 or dissat <= CANDIDATE_DISSATISFIED * reacted)
    )  # fmt: skip
    return RuleRow(rule_id, n_bent, n_blocked, spent, candidate, limit, share(n_bent, type_cases),
                   share(approved, n_bent), share(retained, known))  # fmt: skip


def _percentiles(hits: queries.RuleHits, counts: dict[str, tuple[str, int]], digits: int) -> dict[str, int | str]:
    """The 90th percentile (nearest rank) of each rule's bent values, towards its bend limit."""
    out: dict[str, int | str] = {}
    for rule_id, (measure, n) in counts.items():
        rank = -(-n * PERCENTILE_TENTHS // 10)  # ceil(0.9 n), 1-based from the bottom, in integers
        value = abs(hits.value_from_top(rule_id, n - rank))  # signed so one ORDER BY serves max and min
        out[rule_id] = _money_text(value, digits) if measure == "money" else int(value)
    return out


def _money_text(value: Any, digits: int) -> str:
    """A money fact read back by SQLite as a number: to exact cents via its decimal text."""
    from decimal import Decimal

    cents = int((Decimal(str(value)) * (10**digits)).to_integral_value())
    return format_money(cents, digits)


# -- customers -----------------------------------------------------------------------


def customers(store: Store, period: Period, *, policy: Policy, limit: int | None) -> list[CustomerRow]:
    """Customers who received discretion, most spent first, with repeat exceptions flagged."""
    histogram, rows = queries.customer_rows(store, period.span(), limit)
    disc_spread = _weighted_spread(histogram)
    out: list[CustomerRow] = []
    for customer_id, cases, disc, spent, segment in rows:
        budget = policy.budget.limit_for(segment)
        used = spent / budget if budget else None  # not rounded: display rounding is the renderer's
        flags: list[Flag] = []
        if disc >= REPEAT_MIN and outlier(disc, disc_spread) > 0 and disc_spread is not None:
            flags.append(Flag("repeat_exceptions", f"repeat exceptions: {disc} vs a typical {disc_spread.median:g}"))
        if budget and 10 * spent >= BUDGET_FLAG_TENTHS * budget:  # exact: 1,799.90 of 2,000.00 is not 90 %
            # whole percent, rounded down
            flags.append(Flag("budget_used", f"used {100 * spent // budget}% of the budget"))
        out.append(CustomerRow(customer_id, cases, disc, spent, used, tuple(flags)))
    return out


# -- pairs ---------------------------------------------------------------------------


def pairs(store: Store, period: Period) -> list[PairRow]:
    """Who co-signs whose cases; an agent whose co-signs mostly come from one peer is flagged."""
    rows = queries.cosign_pairs(store, period.span())
    cosigners = {c for _, c, _ in rows}
    totals: dict[str, int] = {}
    for agent, _, n in rows:
        totals[agent] = totals.get(agent, 0) + n
    out: list[PairRow] = []
    for agent, cosigner, n in sorted(rows, key=lambda r: (r[0], -r[2], r[1])):
        peers = len(cosigners - {agent})  # who could have co-signed this agent's cases
        part = n / totals[agent]
        flags: Flags = ()
        if totals[agent] >= PAIR_MIN_COSIGNS and peers >= 2 and part >= max(PAIR_SHARE, 2 / peers):
            text = f"{part:.0%} of {agent}'s co-signs come from {cosigner} ({peers} possible co-signers)"
            flags = (Flag("one_cosigner", text),)
        out.append(PairRow(agent, cosigner, n, round(part, 4), flags))
    return out


# -- outcomes ------------------------------------------------------------------------

# The decision kinds store.reports.outcome_rows groups by, in the order the report lists them.
KINDS = ("in_policy", "discretion", "denied", "expired", "pending")


def outcomes(store: Store, period: Period) -> list[OutcomeRow]:
    """Reactions and retention by decision kind (effective status at the time of the report)."""
    rows = queries.outcome_rows(store, period.span())
    found = {r[0]: r[1:] for r in rows}
    out: list[OutcomeRow] = []
    for name in KINDS:
        cases, sat, neu, dis, kept, lost = found.get(name, (0, 0, 0, 0, 0, 0))
        out.append(OutcomeRow(name, cases, sat, neu, dis, kept, lost, share(kept, kept + lost)))
    return out


def report(name: str, store: Store, period: Period, *, policy: Policy, limit: int | None = None) -> Report:
    """Dispatch one report by name (the `audit` sub-commands); render.json.report_json gives
    it its JSON shape."""
    if name == "summary":
        return summary(store, period)
    if name == "agents":
        return agents(store, period, digits=policy.digits)
    if name == "rules":
        return rules(store, period, policy=policy)
    if name == "customers":
        return customers(store, period, policy=policy, limit=limit)
    if name == "pairs":
        return pairs(store, period)
    if name == "outcomes":
        return outcomes(store, period)
    raise InvalidInput("report", f"unknown report {name!r}; one of {', '.join(REPORTS)}")
