"""The SQL of the supervisor reports (SPEC §8): one or two GROUP BY queries per report over
a period of `opened_at`, returning grouped rows; audit/reports.py does the rest in Python.

Each query is shaped for a covering index (migrations 2 to 4 in store/sqlite.py): change one
and check its plan (tests/test_import_indexes.py) and `bench/audit.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from empower_cli.store.sqlite import STATUS_SQL, Store

# A case that reached a supervisor: asked for one, sent there by the rules or an
# objection (still waiting or expired), or settled by one (approved or denied).
ESCALATED_SQL = "(escalated = 1 OR supervisor IS NOT NULL OR status IN ('pending_supervisor', 'denied'))"
DISCRETION_SQL = "in_policy = 0"


@dataclass(frozen=True)
class Span:
    """A reporting period as ISO text: `since` inclusive, `until` exclusive, on `opened_at`;
    `now` decides which pending cases have expired."""

    now: str
    since: str | None = None
    until: str | None = None

    def where(self, *extra: str, alias: str = "") -> tuple[str, dict[str, Any]]:
        """A WHERE clause with the period's bounds and the `extra` conditions, and its parameters
        (always `now`, for STATUS_SQL)."""
        col = f"{alias}opened_at"
        clauses = list(extra)
        params: dict[str, Any] = {"now": self.now}
        if self.since is not None:
            clauses.append(f"{col} >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append(f"{col} < :until")
            params["until"] = self.until
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


# -- summary -------------------------------------------------------------------------


def summary_counts(store: Store, span: Span) -> tuple[int, ...]:
    """cases, in policy, discretion cases, approved discretion (cents), escalations, co-signs,
    objections, denials, expired, dissatisfied, then retained / known after approved
    discretion, and retained / known after a denial."""
    where, params = span.where()
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
    return tuple(row)


def weekly_spend(store: Store, span: Span) -> list[tuple[str, int]]:
    """(Monday of the week, approved discretion in cents) per week of opening, oldest first,
    empty weeks included.

    One range search of the covering index on opened_at per week: a single pass over the
    index without the sort a GROUP BY on the day would need. The weeks are counted here, not
    in SQL, so that every backend reads the same ranges.
    """
    where, params = span.where()
    first, last = store.conn.execute(f"SELECT MIN(opened_at), MAX(opened_at) FROM cases {where}", params).fetchone()
    if first is None:
        return []
    # The week of a time is read from its date text: rounding the whole timestamp would put
    # 23:59:59.9997 on a Sunday into Monday (the store keeps milliseconds) and lose a week.
    day = dt.date.fromisoformat(first[:10])
    start = day - dt.timedelta(days=day.weekday())
    since, until = params.get("since", ""), params.get("until", "9999")
    sql = ("SELECT COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0) FROM cases"
           " WHERE opened_at >= ? AND opened_at < ?")  # fmt: skip
    weeks = []
    while start.isoformat() <= last:
        end = start + dt.timedelta(days=7)
        low, high = max(start.isoformat(), since), min(end.isoformat(), until)
        weeks.append((start.isoformat(), int(store.conn.execute(sql, (low, high)).fetchone()[0])))
        start = end
    return weeks


# -- agents --------------------------------------------------------------------------


def agent_rows(store: Store, span: Span) -> list[tuple[str, int, int, int, int, int, int]]:
    """(agent, cases, discretion cases, approved discretion, all discretion asked (cents),
    escalations, objections) per agent, by agent."""
    where, params = span.where()
    return store.conn.execute(
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


# -- rules ---------------------------------------------------------------------------


class MeasuredRule(Protocol):
    """How a bent rule's value is read: its fact, as a "number", "money" or "age" (days before
    opening, for max_age_days; "" when it has no value), and +1 for a max rule, -1 for a min."""

    @property
    def rule_id(self) -> str: ...
    @property
    def fact(self) -> str: ...
    @property
    def measure(self) -> str: ...
    @property
    def direction(self) -> int: ...


class RuleHits:
    """The rules bent or blocked in a period, one row each, in a temporary table (built by
    `rule_hits`, dropped when it ends)."""

    def __init__(self, store: Store) -> None:
        self._conn = store.conn

    def counts(self) -> list[tuple[Any, ...]]:
        """(rule id, case type, bent, blocked, approved discretion (cents), bent and approved,
        bent and retained, bent with retention known, bent and dissatisfied, bent with a
        reaction, bent values) per rule and case type, by rule then case type."""
        return self._conn.execute(
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
            FROM audit_rule_hits GROUP BY rule_id, case_type ORDER BY rule_id, case_type
            """
        ).fetchall()

    def value_from_top(self, rule_id: str, offset: int) -> Any:
        """The rule's bent value `offset` places below its largest, signed by the rule's direction.

        Sorted from the top with LIMIT/OFFSET, SQLite keeps only the rows above the offset in
        its sorter.
        """
        (v,) = self._conn.execute(
            "SELECT v FROM audit_rule_hits WHERE rule_id = ? AND v IS NOT NULL ORDER BY v DESC LIMIT 1 OFFSET ?",
            (rule_id, offset),
        ).fetchone()
        return v


@contextmanager
def rule_hits(store: Store, span: Span, rules: Sequence[MeasuredRule]) -> Iterator[RuleHits]:
    """temp.audit_rule_hits: one row per rule bent or blocked by an out-of-policy case, with the
    bent fact's value `v` measured as the policy's rule reads it (a number, or a date's age in
    days), times the rule's direction so that the largest `v` is always the furthest from the
    standard. One pass parses the rule results (json_each); the counts and the percentiles are
    then grouped from the table."""
    args: dict[str, Any] = {}
    branches = []
    for k, rule in enumerate(rules):
        if not rule.measure:
            continue
        fact = store.sql_json_field("c.facts", f":f{k}")
        value = (store.sql_days_between("substr(c.opened_at, 1, 10)", fact) if rule.measure == "age"
                 else f"CAST({fact} AS NUMERIC)")  # fmt: skip
        branches.append(f"WHEN :r{k} THEN {rule.direction} * ({value})")
        args |= {f"r{k}": rule.rule_id, f"f{k}": store.fact_key(rule.fact)}
    # A CASE on the rule id rather than a join with a table of rules: the join would parse
    # each rule result once per rule.
    measured = f"CASE r.value ->> 'id' {' '.join(branches)} END" if branches else "NULL"
    where, params = span.where(DISCRETION_SQL, "r.value ->> 'result' != 'pass'", alias="c.")
    store.scratch_table(
        "audit_rule_hits",
        f"""
        SELECT r.value ->> 'id' AS rule_id, r.value ->> 'result' AS result, c.case_type,
          c.status, c.discretionary_amount AS amount, c.retained, c.reaction,
          CASE WHEN r.value ->> 'result' = 'bent' THEN {measured} END AS v
        FROM cases AS c, {store.sql_json_elements("c.rules")} AS r {where}
        """,
        {**params, **args},
    )
    try:
        yield RuleHits(store)
    finally:
        store.drop_scratch("audit_rule_hits")


def case_type_counts(store: Store, span: Span, case_types: Sequence[str]) -> dict[str, int]:
    """Cases per given case type (conditional counts: one scan of an index, no sort)."""
    if not case_types:
        return {}
    where, params = span.where()
    names = {f"t{k}": t for k, t in enumerate(case_types)}
    counts = ", ".join(f"COUNT(CASE WHEN case_type = :{key} THEN 1 END)" for key in names)
    row = store.conn.execute(f"SELECT {counts} FROM cases {where}", {**params, **names}).fetchone()
    return dict(zip(case_types, row, strict=True))


# -- customers -----------------------------------------------------------------------


def customer_rows(store: Store, span: Span, limit: int | None
                  ) -> tuple[list[tuple[int, int]], list[tuple[str, int, int, int, str | None]]]:  # fmt: skip
    """The distribution of discretion cases per customer, as (discretion cases, customers), and
    the customers who received discretion as (customer, cases, discretion cases, approved
    discretion (cents), segment), most spent first (the first `limit` when given).

    One pass: the per-customer groups are materialised once and read twice.
    """
    where, params = span.where()
    tail = "LIMIT :limit" if limit else ""
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
          FROM per WHERE disc > 0 ORDER BY spent DESC, disc DESC, customer_id {tail}) AS top
        """,
        {**params, "limit": limit},
    ).fetchall()
    histogram = [(disc, n) for customer, n, disc, _, _ in found if customer is None]
    return histogram, [r for r in found if r[0] is not None]


# -- pairs and outcomes --------------------------------------------------------------


def cosign_pairs(store: Store, span: Span) -> list[tuple[str, str, int]]:
    """(agent, co-signer, co-signed cases) per pair, in no particular order."""
    where, params = span.where("cosigner IS NOT NULL")
    return store.conn.execute(
        f"SELECT agent, cosigner, COUNT(*) FROM cases {where} GROUP BY agent, cosigner", params
    ).fetchall()


def outcome_rows(store: Store, span: Span) -> list[tuple[str, int, int, int, int, int, int]]:
    """(kind, cases, satisfied, neutral, dissatisfied, retained, lost) per decision kind that
    has cases: in_policy, discretion, denied, expired or pending (the effective status at `now`)."""
    where, params = span.where()
    kind = f"""CASE WHEN status = 'approved' AND in_policy = 1 THEN 'in_policy'
        WHEN status = 'approved' THEN 'discretion' WHEN status = 'denied' THEN 'denied'
        WHEN ({STATUS_SQL}) = 'expired' THEN 'expired' ELSE 'pending' END"""
    return store.conn.execute(
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
