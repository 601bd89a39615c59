"""Supervisor reports (SPEC §8) as SQL aggregations over the store (the hash-chain check
is in audit_verify.py).

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
from empower_cli.core.money import format_money
from empower_cli.core.timeutil import iso
from empower_cli.store.sqlite import STATUS_SQL, Store

REPORTS = ("summary", "agents", "rules", "customers", "pairs", "outcomes")

# A case that reached a supervisor: asked for one, sent there by the rules or an
# objection (still waiting or expired), or settled by one (approved or denied).
ESCALATED_SQL = "(escalated = 1 OR supervisor IS NOT NULL OR status IN ('pending_supervisor', 'denied'))"
DISCRETION_SQL = "in_policy = 0"

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
class Period:
    """The reporting period on `opened_at`: since inclusive, until exclusive."""

    now: dt.datetime
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self, *extra: str, alias: str = "") -> tuple[str, dict[str, Any]]:
        col = f"{alias}opened_at"
        clauses = list(extra)
        params: dict[str, Any] = {"now": iso(self.now)}
        if self.since is not None:
            clauses.append(f"{col} >= :since")
            params["since"] = iso(self.since)
        if self.until is not None:
            clauses.append(f"{col} < :until")
            params["until"] = iso(self.until)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def json(self) -> dict[str, str | None]:
        return {"since": iso(self.since) if self.since else None, "until": iso(self.until) if self.until else None}


def share(part: int, whole: int, places: int = 4) -> float | None:
    """A share as a plain number rounded for display; None when there is nothing to divide."""
    return round(part / whole, places) if whole else None


# -- summary -------------------------------------------------------------------------


def summary(store: Store, period: Period, *, digits: int) -> dict[str, Any]:
    where, params = period.where()
    row = store.conn.execute(
        f"""
        SELECT COUNT(*),
          COUNT(CASE WHEN in_policy = 1 THEN 1 END),
          COUNT(CASE WHEN {DISCRETION_SQL} THEN 1 END),
          COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0),
          COUNT(CASE WHEN {ESCALATED_SQL} THEN 1 END),
          COUNT(cosigner),
          COALESCE(SUM(objections), 0),
          COUNT(CASE WHEN status = 'denied' THEN 1 END),
          COUNT(CASE WHEN ({STATUS_SQL}) = 'expired' THEN 1 END),
          COUNT(CASE WHEN reaction = 'dissatisfied' THEN 1 END),
          COUNT(CASE WHEN {DISCRETION_SQL} AND status = 'approved' AND retained = 1 THEN 1 END),
          COUNT(CASE WHEN {DISCRETION_SQL} AND status = 'approved' AND retained IS NOT NULL THEN 1 END),
          COUNT(CASE WHEN status = 'denied' AND retained = 1 THEN 1 END),
          COUNT(CASE WHEN status = 'denied' AND retained IS NOT NULL THEN 1 END)
        FROM cases {where}
        """,
        params,
    ).fetchone()
    cases, in_policy, disc, spent, esc, cosigns, objections, denials, expired, dissat = row[:10]
    return {
        "cases": cases,
        "in_policy": in_policy,
        "in_policy_share": share(in_policy, cases),
        "discretion_cases": disc,
        "discretion_spent": format_money(spent, digits),
        "escalations": esc,
        "cosigns": cosigns,
        "objections": objections,
        "denials": denials,
        "expired": expired,
        "dissatisfied": dissat,
        "retention": {"after_discretion": share(row[10], row[11]), "after_denial": share(row[12], row[13])},
        "weekly_spend": weekly_spend(store, period, digits=digits),
        "period": period.json(),
    }


def weekly_spend(store: Store, period: Period, *, digits: int) -> list[dict[str, str]]:
    """Approved discretion per week (Monday) of opening, oldest first, empty weeks included.

    One range search of the covering index on opened_at per week: a single pass over the
    index without the sort a GROUP BY on the day would need.
    """
    conn = store.conn
    where, params = period.where()
    # The week of a time is read from its date text: date() of the whole timestamp would round
    # 23:59:59.9997 on a Sunday into Monday (SQLite keeps milliseconds) and lose a week.
    first = conn.execute(f"SELECT substr(MIN(opened_at), 1, 10) FROM cases {where}", params).fetchone()[0]
    last = conn.execute(f"SELECT MAX(opened_at) FROM cases {where}", params).fetchone()[0]
    if first is None:
        return []
    bounds = {"first": first, "last": last, "since": params.get("since", ""), "until": params.get("until", "9999")}
    rows = conn.execute(
        """
        WITH RECURSIVE weeks(start) AS (
          SELECT date(:first, '-6 days', 'weekday 1')
          UNION ALL SELECT date(start, '+7 days') FROM weeks WHERE date(start, '+7 days') <= :last)
        SELECT start, (
          SELECT COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0) FROM cases
          WHERE opened_at >= max(start, :since) AND opened_at < min(date(start, '+7 days'), :until))
        FROM weeks
        """,
        bounds,
    ).fetchall()
    return [{"week": week, "spent": format_money(cents, digits)} for week, cents in rows]


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


def agents(store: Store, period: Period, *, digits: int) -> list[dict[str, Any]]:
    where, params = period.where()
    rows = store.conn.execute(
        f"""
        SELECT agent, COUNT(*),
          COUNT(CASE WHEN {DISCRETION_SQL} THEN 1 END),
          COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0),
          COALESCE(SUM(CASE WHEN {DISCRETION_SQL} THEN discretionary_amount END), 0),
          COUNT(CASE WHEN {ESCALATED_SQL} THEN 1 END),
          COALESCE(SUM(objections), 0)
        FROM cases {where} GROUP BY agent ORDER BY agent
        """,
        params,
    ).fetchall()
    peers = [r for r in rows if r[1] >= MIN_AGENT_CASES]
    enough = len(peers) >= MIN_PEERS
    rate_spread = spread([r[2] / r[1] for r in peers]) if enough else None
    spend_spread = spread([r[3] / r[1] for r in peers]) if enough else None
    total_spent = sum(r[3] for r in rows)
    out: list[dict[str, Any]] = []
    for agent, cases, disc, spent, disc_total, esc, obj in rows:
        flag = None
        if enough and cases >= MIN_AGENT_CASES:
            flag = _agent_flag(disc / cases, (spent, cases), rate_spread, spend_spread, digits)
        out.append({
            "agent": agent, "cases": cases, "discretion_rate": share(disc, cases),
            "spent": format_money(spent, digits),
            "mean_amount": format_money(_round_div(disc_total, disc), digits),
            "escalations": esc, "objections_received": obj, "flag": flag,
            "spend_share": share(spent, total_spent),
        })  # fmt: skip
    return out


def _agent_flag(rate: float, spent_cases: tuple[int, int], rates: Spread | None, spends: Spread | None,
                digits: int) -> str | None:  # fmt: skip
    """Why an agent stands out from peers (a float ratio only for the statistics; the money
    shown is exact integer division)."""
    spent, cases = spent_cases
    per_case = spent / cases
    reasons = []
    direction = outlier(rate, rates)
    if direction and rates is not None:
        word = "lenient" if direction > 0 else "harsh"
        reasons.append(f"{word}: discretion rate {rate:.0%} vs peers' median {rates.median:.0%}")
    direction = outlier(per_case, spends)
    if direction and spends is not None:
        word = "high" if direction > 0 else "low"
        reasons.append(
            f"{word} spend: {format_money(_round_div(spent, cases), digits)} per case vs peers' median "
            f"{format_money(round(spends.median), digits)}"
        )
    return "; ".join(reasons) or None


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


def rules(store: Store, period: Period, *, policy: Policy) -> list[dict[str, Any]]:
    """Per rule: bent, blocked, discretion spent, policy candidates and a suggested limit.

    One pass parses the rule results (json_each) of the out-of-policy cases into a
    temporary table; the counts and the percentiles are then grouped from it.
    """
    digits = policy.digits
    infos = rule_infos(policy)
    conn = store.conn
    _collect_rule_hits(store, period, list(infos.values()))
    try:
        rows = conn.execute(
            """
            SELECT rule_id, case_type,
              COUNT(CASE WHEN result = 'bent' THEN 1 END),
              COUNT(CASE WHEN result = 'blocked' THEN 1 END),
              COALESCE(SUM(CASE WHEN status = 'approved' THEN amount END), 0),
              COUNT(CASE WHEN result = 'bent' AND status = 'approved' THEN 1 END),
              COUNT(CASE WHEN result = 'bent' AND retained = 1 THEN 1 END),
              COUNT(CASE WHEN result = 'bent' AND retained IS NOT NULL THEN 1 END),
              COUNT(CASE WHEN result = 'bent' AND reaction = 'dissatisfied' THEN 1 END),
              COUNT(CASE WHEN result = 'bent' AND reaction IS NOT NULL THEN 1 END),
              COUNT(v)
            FROM temp.audit_rule_hits GROUP BY rule_id, case_type ORDER BY rule_id, case_type
            """
        ).fetchall()
        merged: dict[str, list[int]] = {}
        for rule_id, _, *numbers in rows:  # one row per rule and case type
            acc = merged.setdefault(rule_id, [0] * len(numbers))
            merged[rule_id] = [a + b for a, b in zip(acc, numbers, strict=True)]
        limits = _percentiles(store, {r: (infos[r].measure, m[-1]) for r, m in merged.items() if m[-1]}, digits)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.audit_rule_hits")
    type_counts = case_type_counts(store, period, sorted({t for _, t, *_ in rows}))
    type_cases: dict[str, int] = {}
    for rule_id, case_type, *_ in rows:
        type_cases[rule_id] = type_cases.get(rule_id, 0) + type_counts.get(case_type, 0)
    out: list[dict[str, Any]] = []
    for rule_id, (n_bent, n_blocked, spent, approved, retained, known, dissat, reacted, _) in merged.items():
        candidate = (
            n_bent >= max(CANDIDATE_MIN_BENT, CANDIDATE_BENT_SHARE * type_cases[rule_id])
            and approved >= CANDIDATE_APPROVED * n_bent
            and known > 0 and retained >= CANDIDATE_RETAINED * known
            and (reacted == 0 or dissat <= CANDIDATE_DISSATISFIED * reacted)
        )  # fmt: skip
        out.append({
            "rule_id": rule_id, "bent": n_bent, "blocked": n_blocked,
            "spent": format_money(spent, digits), "candidate": candidate,
            "suggested_limit": limits.get(rule_id),
            "bent_share": share(n_bent, type_cases[rule_id]),
            "approved_share": share(approved, n_bent), "retention": share(retained, known),
        })  # fmt: skip
    out.sort(key=lambda r: (-r["bent"] - r["blocked"], r["rule_id"]))
    return out


def _collect_rule_hits(store: Store, period: Period, infos: Sequence[RuleInfo]) -> None:
    """temp.audit_rule_hits: one row per rule bent or blocked, with the bent fact's value `v`
    measured as the policy's rule reads it (a number, or a date's age in days), times the
    rule's direction so that the largest `v` is always the furthest from the standard."""
    args: dict[str, Any] = {}
    branches = []
    for k, info in enumerate(infos):
        if not info.measure:
            continue
        fact = f"json_extract(c.facts, :f{k})"
        value = (f"julianday(substr(c.opened_at, 1, 10)) - julianday({fact})" if info.measure == "age"
                 else f"CAST({fact} AS NUMERIC)")  # fmt: skip
        branches.append(f"WHEN :r{k} THEN {info.direction} * ({value})")
        args |= {f"r{k}": info.rule_id, f"f{k}": '$."' + info.fact.replace('"', '\\"') + '"'}
    # A CASE on the rule id rather than a join with a table of rules: the join would parse
    # each rule result once per rule.
    measured = f"CASE r.value ->> 'id' {' '.join(branches)} END" if branches else "NULL"
    where, params = period.where(DISCRETION_SQL, "r.value ->> 'result' != 'pass'", alias="c.")
    store.conn.execute("PRAGMA temp_store = MEMORY")
    store.conn.execute("DROP TABLE IF EXISTS temp.audit_rule_hits")
    store.conn.execute(
        f"""
        CREATE TEMP TABLE audit_rule_hits AS
        SELECT r.value ->> 'id' AS rule_id, r.value ->> 'result' AS result, c.case_type,
          c.status, c.discretionary_amount AS amount, c.retained, c.reaction,
          CASE WHEN r.value ->> 'result' = 'bent' THEN {measured} END AS v
        FROM cases AS c, json_each(c.rules) AS r {where}
        """,
        {**params, **args},
    )


def _percentiles(store: Store, counts: dict[str, tuple[str, int]], digits: int) -> dict[str, int | str]:
    """The 90th percentile (nearest rank) of each rule's bent values, towards its bend limit.

    Sorted from the top with LIMIT/OFFSET, SQLite keeps only the highest tenth in its sorter.
    """
    out: dict[str, int | str] = {}
    for rule_id, (measure, n) in counts.items():
        rank = -(-n * PERCENTILE_TENTHS // 10)  # ceil(0.9 n), 1-based from the bottom, in integers
        (v,) = store.conn.execute(
            "SELECT v FROM temp.audit_rule_hits WHERE rule_id = ? AND v IS NOT NULL ORDER BY v DESC LIMIT 1 OFFSET ?",
            (rule_id, n - rank),
        ).fetchone()
        value = abs(v)  # v carries the rule's direction so that one ORDER BY serves max and min
        out[rule_id] = _money_text(value, digits) if measure == "money" else int(value)
    return out


def case_type_counts(store: Store, period: Period, case_types: Sequence[str]) -> dict[str, int]:
    """Cases per given case type (conditional counts: one scan of an index, no sort)."""
    if not case_types:
        return {}
    where, params = period.where()
    names = {f"t{k}": t for k, t in enumerate(case_types)}
    counts = ", ".join(f"COUNT(CASE WHEN case_type = :{key} THEN 1 END)" for key in names)
    row = store.conn.execute(f"SELECT {counts} FROM cases {where}", {**params, **names}).fetchone()
    return dict(zip(case_types, row, strict=True))


def _money_text(value: Any, digits: int) -> str:
    """A money fact read back by SQLite as a number: to exact cents via its decimal text."""
    from decimal import Decimal

    cents = int((Decimal(str(value)) * (10**digits)).to_integral_value())
    return format_money(cents, digits)


# -- customers -----------------------------------------------------------------------


def customers(store: Store, period: Period, *, policy: Policy, limit: int | None) -> list[dict[str, Any]]:
    """Customers who received discretion, most spent first, with repeat exceptions flagged."""
    digits = policy.digits
    where, params = period.where()
    tail = "LIMIT :limit" if limit else ""
    # One pass: the per-customer groups are materialised once and read twice, for the
    # distribution of exceptions per customer (rows without a customer id) and the top rows.
    found = store.conn.execute(
        f"""
        WITH per AS MATERIALIZED (
          SELECT customer_id, COUNT(*) AS cases, COUNT(CASE WHEN {DISCRETION_SQL} THEN 1 END) AS disc,
            COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0) AS spent
          FROM cases {where} GROUP BY customer_id)
        SELECT NULL, COUNT(*), disc, NULL, NULL FROM per GROUP BY disc
        UNION ALL
        SELECT * FROM (
          SELECT customer_id, cases, disc, spent,
            (SELECT segment FROM customers AS k WHERE k.customer_id = per.customer_id)
          FROM per WHERE disc > 0 ORDER BY spent DESC, disc DESC, customer_id {tail})
        """,
        {**params, "limit": limit},
    ).fetchall()
    histogram = [(disc, n) for customer, n, disc, _, _ in found if customer is None]
    rows = [r for r in found if r[0] is not None]
    disc_spread = _weighted_spread(histogram)
    out: list[dict[str, Any]] = []
    for customer_id, cases, disc, spent, segment in rows:
        budget = policy.budget.limit_for(segment)
        used = spent / budget if budget else None  # not rounded: display rounding is the renderer's
        reasons = []
        if disc >= REPEAT_MIN and outlier(disc, disc_spread) > 0 and disc_spread is not None:
            reasons.append(f"repeat exceptions: {disc} vs a typical {disc_spread.median:g}")
        if budget and 10 * spent >= BUDGET_FLAG_TENTHS * budget:  # exact: 1,799.90 of 2,000.00 is not 90 %
            reasons.append(f"used {100 * spent // budget}% of the budget")  # whole percent, rounded down
        out.append({
            "customer_id": customer_id, "cases": cases, "discretion_cases": disc,
            "spent": format_money(spent, digits), "budget_used_share": used,
            "flag": "; ".join(reasons) or None,
        })  # fmt: skip
    return out


# -- pairs ---------------------------------------------------------------------------


def pairs(store: Store, period: Period) -> list[dict[str, Any]]:
    """Who co-signs whose cases; an agent whose co-signs mostly come from one peer is flagged."""
    where, params = period.where("cosigner IS NOT NULL")
    rows = store.conn.execute(
        f"SELECT agent, cosigner, COUNT(*) FROM cases {where} GROUP BY agent, cosigner", params
    ).fetchall()
    cosigners = {c for _, c, _ in rows}
    totals: dict[str, int] = {}
    for agent, _, n in rows:
        totals[agent] = totals.get(agent, 0) + n
    out: list[dict[str, Any]] = []
    for agent, cosigner, n in sorted(rows, key=lambda r: (r[0], -r[2], r[1])):
        peers = len(cosigners - {agent})  # who could have co-signed this agent's cases
        part = n / totals[agent]
        flag = None
        if totals[agent] >= PAIR_MIN_COSIGNS and peers >= 2 and part >= max(PAIR_SHARE, 2 / peers):
            flag = f"{part:.0%} of {agent}'s co-signs come from {cosigner} ({peers} possible co-signers)"
        out.append({"agent": agent, "cosigner": cosigner, "count": n, "share": round(part, 4), "flag": flag})
    return out


# -- outcomes ------------------------------------------------------------------------

KINDS = ("in_policy", "discretion", "denied", "expired", "pending")


def outcomes(store: Store, period: Period) -> list[dict[str, Any]]:
    """Reactions and retention by decision kind (effective status at the time of the report)."""
    where, params = period.where()
    kind = f"""CASE WHEN status = 'approved' AND in_policy = 1 THEN 'in_policy'
        WHEN status = 'approved' THEN 'discretion' WHEN status = 'denied' THEN 'denied'
        WHEN ({STATUS_SQL}) = 'expired' THEN 'expired' ELSE 'pending' END"""
    rows = store.conn.execute(
        f"""
        SELECT {kind} AS kind, COUNT(*),
          COUNT(CASE WHEN reaction = 'satisfied' THEN 1 END),
          COUNT(CASE WHEN reaction = 'neutral' THEN 1 END),
          COUNT(CASE WHEN reaction = 'dissatisfied' THEN 1 END),
          COUNT(CASE WHEN retained = 1 THEN 1 END),
          COUNT(CASE WHEN retained = 0 THEN 1 END)
        FROM cases {where} GROUP BY kind
        """,
        params,
    ).fetchall()
    found = {r[0]: r[1:] for r in rows}
    out: list[dict[str, Any]] = []
    for name in KINDS:
        cases, sat, neu, dis, kept, lost = found.get(name, (0, 0, 0, 0, 0, 0))
        out.append({
            "kind": name, "cases": cases, "satisfied": sat, "neutral": neu, "dissatisfied": dis,
            "no_reaction": cases - sat - neu - dis, "retained": kept, "lost": lost,
            "retention_unknown": cases - kept - lost, "retention": share(kept, kept + lost),
        })  # fmt: skip
    return out


def report(name: str, store: Store, period: Period, *, policy: Policy, limit: int | None = None) -> Any:
    """Dispatch one report by name (the `audit` sub-commands)."""
    if name == "summary":
        return summary(store, period, digits=policy.digits)
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
