"""The schema, as named, ordered migrations keyed by `PRAGMA user_version`: the Store runs
the ones a file has not had yet when it opens it (docs/schema.md describes the result).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database


def _m001_initial(db: Database) -> None:
    db.table("events").create(
        {"seq": int, "at": str, "case_id": int, "kind": str, "actor": str, "os_user": str,
         "payload": str, "prev_hash": str, "hash": str},
        pk="seq", not_null={"at", "kind", "actor", "os_user", "payload", "prev_hash", "hash"},
    )  # fmt: skip
    db.table("events").create_index(["case_id"])
    db.executescript(
        """
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
        """
    )
    db.table("cases").create(
        {
            "id": int, "external_id": str, "imported": int, "opened_at": str, "agent": str,
            "customer_id": str, "segment": str, "case_type": str, "action": str,
            "amount": int, "discretionary_amount": int, "held_amount": int, "in_policy": int,
            "status": str, "expires_at": str, "settled_at": str, "escalated": int,
            "facts": str, "rules": str, "reasons": str, "justification": str,
            "reaction": str, "retained": int, "cosigner": str, "supervisor": str,
            "objections": int, "policy_version": str, "policy_sha256": str,
            "today_status": str, "today_discretionary": int, "content_hash": str,
        },
        pk="id",
        not_null={"imported", "opened_at", "agent", "customer_id", "case_type", "action",
                  "amount", "discretionary_amount", "held_amount", "in_policy", "status",
                  "facts", "rules", "reasons", "objections", "escalated"},
        defaults={"imported": 0, "held_amount": 0, "objections": 0, "escalated": 0},
    )  # fmt: skip
    db.table("cases").create_index(["external_id"], unique=True)
    db.table("cases").create_index(["customer_id", "status"])
    db.table("cases").create_index(["status", "opened_at"])
    db.table("cases").create_index(["agent"])
    db.table("customers").create(
        {"customer_id": str, "segment": str, "first_seen": str}, pk="customer_id"
    )


def _m002_report_indexes(db: Database) -> None:
    """Narrow covering indexes for the audit reports (a scan reads them, not the wide rows).

    The customer and agent indexes replace the first migration's (customer_id, status) and
    (agent) indexes, which they extend, so that imports pay for two more indexes, not four.
    """
    # One statement at a time: executescript() would commit the migration's transaction.
    for statement in (
        "DROP INDEX IF EXISTS idx_cases_customer_id_status",
        "DROP INDEX IF EXISTS idx_cases_agent",
        "CREATE INDEX cases_by_customer ON cases (customer_id, status, opened_at, in_policy,"
        " discretionary_amount, held_amount, settled_at, expires_at)",
        "CREATE INDEX cases_by_agent ON cases (agent, opened_at, status, in_policy,"
        " discretionary_amount, escalated, supervisor, objections)",
        "CREATE INDEX cases_by_time ON cases (opened_at, case_type, status, in_policy, discretionary_amount,"
        " escalated, supervisor, cosigner, objections, reaction, retained, expires_at)",
        "CREATE INDEX cases_cosigned ON cases (agent, cosigner, opened_at) WHERE cosigner IS NOT NULL",
    ):
        db.execute(statement)


def _m003_exceptions_index(db: Database) -> None:
    """A partial covering index of the out-of-policy cases with their rule results and facts:
    `audit rules` parses the JSON of these rows only, without reading the wide table."""
    db.execute(
        "CREATE INDEX cases_exceptions ON cases (opened_at, in_policy, case_type, status, discretionary_amount,"
        " retained, reaction, rules, facts) WHERE in_policy = 0"
    )


def _m004_append_order_indexes(db: Database) -> None:
    """The agent and exceptions indexes keyed in insertion order (`id`) after their grouping
    column, with the same covered columns: an import's rows, random in `opened_at`, then
    append to the end of a few ranges instead of landing on a random page each. Keyed on
    `opened_at`, the exceptions index (most imported history is out of policy, with its rule
    results and facts) was as large as the table, and each row dirtied one of its pages:
    a million-row import spent most of its time rewriting those pages. The reports scan
    these indexes whole; a narrow period is read through cases_by_time instead."""
    for statement in (
        "DROP INDEX IF EXISTS cases_exceptions",
        "DROP INDEX IF EXISTS cases_by_agent",
        "CREATE INDEX cases_exceptions_by_id ON cases (id, opened_at, in_policy, case_type, status,"
        " discretionary_amount, retained, reaction, rules, facts) WHERE in_policy = 0",
        "CREATE INDEX cases_by_agent_id ON cases (agent, id, opened_at, status, in_policy,"
        " discretionary_amount, escalated, supervisor, objections)",
    ):
        db.execute(statement)


def _m005_deferred_indexes(db: Database) -> None:
    """Where a large import keeps the report indexes it dropped until it rebuilds them at
    its end (store_import.defer_indexes): if it is killed, the next import or `empower init`
    rebuilds them from here. Empty at rest."""
    db.execute("CREATE TABLE deferred_indexes (name TEXT PRIMARY KEY, sql TEXT NOT NULL)")


def _m006_applied_policies(db: Database) -> None:
    """The database governs: every policy applied to it, with its full text (SPEC §5a), and
    the account that imported each imported case (until now only on its event). The first
    policy is applied by the first command that opens the database (services.governance)."""
    for statement in (
        "CREATE TABLE policies (number INTEGER PRIMARY KEY, version TEXT NOT NULL, sha256 TEXT NOT NULL,"
        " currency TEXT NOT NULL, text TEXT NOT NULL, applied_by TEXT NOT NULL, os_user TEXT NOT NULL,"
        " applied_at TEXT NOT NULL, note TEXT, seq INTEGER NOT NULL)",
        "ALTER TABLE cases ADD COLUMN imported_by TEXT",
        "UPDATE cases SET imported_by = (SELECT actor FROM events WHERE events.case_id = cases.id"
        " ORDER BY seq LIMIT 1) WHERE imported = 1",
    ):
        db.execute(statement)


MIGRATIONS: Sequence[Callable[[Database], None]] = (
    _m001_initial, _m002_report_indexes, _m003_exceptions_index, _m004_append_order_indexes,
    _m005_deferred_indexes, _m006_applied_policies,
)  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)
