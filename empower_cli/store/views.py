"""Views that show the database as the CLI sees it, for people and tools reading the file
directly (sqlite3, sqlite-utils, Datasette): `cases_now` and `budgets_now`.

They are written from the applied policy (its currency and minor digits, budget limits,
window and fact names are literals in their SQL) and rewritten whenever another policy is
applied; "now" is the SQL clock at the time of the query. The few expressions that differ
between backends (the clock as text, a JSON field, zero padding) and where a view's policy
mark is kept are the Store's (store.sqlite, store.postgres).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from empower_cli.store.sqlite import Store

VIEWS = ("cases_now", "budgets_now")
PENDING_SQL = "('pending_cosign', 'pending_supervisor')"


@dataclass(frozen=True)
class ViewPolicy:
    """What the views take from the applied policy."""

    sha256: str
    version: str
    currency: str
    digits: int
    per_customer: int
    segments: Mapping[str, int]
    window_days: int
    facts: Sequence[str]  # every fact name of every case type, in policy order, once


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def money_sql(store: Store, column: str, digits: int) -> str:
    """Minor units as decimal text (1250 -> '12.50'), exact, sign kept."""
    if digits == 0:
        return f"CAST({column} AS TEXT)"
    scale = 10**digits
    fraction = store.sql_zero_pad(f"(abs({column}) % {scale})", digits)
    return (f"(CASE WHEN {column} < 0 THEN '-' ELSE '' END || CAST(abs({column}) / {scale} AS TEXT) || '.'"
            f" || {fraction})")  # fmt: skip


def _cases_now_sql(store: Store, p: ViewPolicy) -> str:
    now = store.sql_now()
    status = f"CASE WHEN status IN {PENDING_SQL} AND expires_at <= {now} THEN 'expired' ELSE status END"
    held = f"CASE WHEN status IN {PENDING_SQL} AND expires_at > {now} THEN held_amount ELSE 0 END"
    facts = "".join(f", {store.sql_json_text('facts', name)} AS {identifier('fact_' + name)}" for name in p.facts)
    return (
        f"SELECT id AS case_id, opened_at, agent, customer_id, segment, case_type, action, {status} AS status,"
        f" status AS recorded_status, {literal(p.currency)} AS currency,"
        f" {money_sql(store, 'amount', p.digits)} AS amount,"
        f" {money_sql(store, 'discretionary_amount', p.digits)} AS discretionary_amount,"
        f" {money_sql(store, held, p.digits)} AS held, in_policy, expires_at, settled_at, escalated, justification,"
        f" reaction, retained, cosigner, supervisor, objections, imported, external_id, imported_by,"
        f" policy_version, today_status, facts, rules, reasons{facts} FROM cases"
    )


def _budgets_now_sql(store: Store, p: ViewPolicy) -> str:
    start, now = store.sql_now(days_ago=int(p.window_days)), store.sql_now()
    segments = "".join(f" WHEN {literal(name)} THEN {int(limit)}" for name, limit in p.segments.items())
    limit = f"(CASE cu.segment{segments} ELSE {int(p.per_customer)} END)" if segments else str(int(p.per_customer))
    used = "(COALESCE(s.spent, 0) + COALESCE(s.held, 0))"
    return (
        f"SELECT cu.customer_id, cu.segment, {literal(p.currency)} AS currency,"
        f" {money_sql(store, limit, p.digits)} AS \"limit\","
        f" {money_sql(store, 'COALESCE(s.spent, 0)', p.digits)} AS spent,"
        f" {money_sql(store, 'COALESCE(s.held, 0)', p.digits)} AS held,"
        f" {money_sql(store, f'({limit} - {used})', p.digits)} AS remaining,"
        f" COALESCE(s.cases, 0) AS discretion_cases, {int(p.window_days)} AS window_days,"
        f" {literal(p.version)} AS policy_version, {literal(p.sha256)} AS policy_sha256"
        " FROM customers cu LEFT JOIN (SELECT customer_id,"
        f" CAST(SUM(CASE WHEN status = 'approved' THEN discretionary_amount ELSE 0 END) AS BIGINT) AS spent,"
        f" CAST(SUM(CASE WHEN status != 'approved' THEN held_amount ELSE 0 END) AS BIGINT) AS held,"
        f" COUNT(CASE WHEN discretionary_amount > 0 AND (status = 'approved' OR held_amount > 0) THEN 1 END) AS cases"
        f" FROM cases WHERE (status = 'approved' AND settled_at > {start})"
        f" OR (status IN {PENDING_SQL} AND expires_at > {now}) GROUP BY customer_id) s"
        " ON s.customer_id = cu.customer_id"
    )


def views_current(store: Store, sha256: str) -> bool:
    """Are both views written from the policy with this SHA-256?"""
    marks = store.view_marks(VIEWS)
    return all(sha256 in (marks.get(name) or "") for name in VIEWS)


def write_views(store: Store, p: ViewPolicy) -> None:
    """(Re)write both views from the applied policy; call inside store.write()."""
    assert store.conn.in_transaction, "write_views outside a write transaction"
    for name, sql in (("cases_now", _cases_now_sql(store, p)), ("budgets_now", _budgets_now_sql(store, p))):
        store.write_view(name, sql, mark=f"policy {p.sha256}")


def ensure_views(store: Store, p: ViewPolicy) -> bool:
    """Write the views when they are missing or from another policy (after an upgrade, or
    once another policy is applied); True when they were written. Cheap when current.
    On PostgreSQL only the tables' owner may (re)write them: `empower init` (docs/postgres.md)."""
    if not store.may_write_views() or views_current(store, p.sha256):
        return False
    if store.conn.in_transaction:
        write_views(store, p)
        return True
    with store.write():
        if not views_current(store, p.sha256):  # another process may have written them meanwhile
            write_views(store, p)
    return True
