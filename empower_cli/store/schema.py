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


# -- migration 7: search, precedents, views for other tools ------------------------------

# What people write on a case after it is opened, by event kind: a co-sign, approval or
# denial note, an objection's reason (a justification is read from the cases row instead:
# no JSON to parse per imported case).
_STEP_TEXT = (
    "SELECT * FROM (SELECT {e}.case_id AS case_id,"
    " CASE {e}.kind WHEN 'objected' THEN 'objection' ELSE 'note' END AS kind, {e}.kind AS source,"
    " {e}.actor AS actor, {e}.at AS at,"
    " CASE {e}.kind WHEN 'objected' THEN json_extract({e}.payload, '$.reason')"
    " ELSE json_extract({e}.payload, '$.note') END AS text {tail}) WHERE text IS NOT NULL AND text != ''"
)
_STEP_KINDS = "('cosigned', 'approved', 'denied', 'objected')"
_JUSTIFICATION = (
    "SELECT {c}.id, 'justification', CASE WHEN {c}.imported = 1 THEN 'imported' ELSE 'opened' END, {c}.agent,"
    " {c}.opened_at, {c}.justification {tail}"
)
_TEXT_COLUMNS = "case_id, kind, source, actor, at, text"


def _case_texts(db: Database) -> None:
    """`case_texts`: every justification, note and objection reason, one row each, filled by
    triggers on cases and events (so an import's bulk writes fill it too), and its FTS5 index
    `case_texts_fts`, built and kept current by sqlite-utils' enable_fts triggers."""
    db.execute(
        "CREATE TABLE case_texts (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, kind TEXT NOT NULL,"
        " source TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, text TEXT NOT NULL)"
    )
    insert = f"INSERT INTO case_texts ({_TEXT_COLUMNS}) "
    db.execute(insert + _JUSTIFICATION.format(c="c", tail="FROM cases c WHERE c.justification != '' ORDER BY c.id"))
    db.execute(insert + _STEP_TEXT.format(e="events", tail=f"FROM events WHERE kind IN {_STEP_KINDS} ORDER BY seq"))
    db.execute(
        "CREATE TRIGGER cases_case_texts AFTER INSERT ON cases WHEN new.justification != '' BEGIN "
        + insert + _JUSTIFICATION.format(c="new", tail="") + "; END"
    )
    db.execute(
        f"CREATE TRIGGER events_case_texts AFTER INSERT ON events WHEN new.kind IN {_STEP_KINDS} BEGIN "
        + insert + _STEP_TEXT.format(e="new", tail="") + "; END"
    )
    in_transaction(db).table("case_texts").enable_fts(
        ["text"], create_triggers=True, tokenize="porter unicode61 remove_diacritics 2"
    )


# A case's signature: its rules not passed, `id=result` sorted by id (core.precedents.signature).
_SIGNATURE = (
    "(SELECT COALESCE(group_concat(hit, ','), '') FROM (SELECT json_extract(r.value, '$.id') || '='"
    " || json_extract(r.value, '$.result') AS hit FROM json_each({c}.rules) r"
    " WHERE json_extract(r.value, '$.result') != 'pass' ORDER BY 1))"
)
# A fact as a number the bands compare: a whole or decimal number as stored, a date as its age
# in days when the case was opened; anything else (yes/no, choices, text) is no row.
_NUMBER = "(f.value NOT GLOB '*[^0-9.]*' AND f.value GLOB '[0-9]*')"
_DATE = "f.value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"
_FACT_VALUE = (
    f"CASE WHEN {_DATE} THEN CAST(julianday(substr({{c}}.opened_at, 1, 10)) - julianday(f.value) AS INTEGER)"
    f" WHEN f.type IN ('integer', 'real') OR {_NUMBER}"
    f" OR (f.value GLOB '-[0-9]*' AND substr(f.value, 2) NOT GLOB '*[^0-9.]*') THEN CAST(f.value AS REAL) END"
)
# The rows of a case: the '' row when no rule is bent, else one row per number or date fact
# (a band reads one of them). In the trigger, `new` is the case; the migration reads them all.
_KEEP = " WHERE k.value IS NOT NULL AND (k.fact = '') = (instr(k.s, '=bent') = 0)"
# The key rows of the case `new` (a trigger's): signature, fact, value.
_NEW_KEYS = (
    "SELECT k.s, k.fact, k.value FROM"
    " (SELECT g.s, '' AS fact, new.amount AS value FROM (SELECT " + _SIGNATURE.format(c="new") + " AS s) g"
    " UNION ALL SELECT g.s, f.key, " + _FACT_VALUE.format(c="new") + " FROM (SELECT "
    + _SIGNATURE.format(c="new") + " AS s) g, json_each(new.facts) f) k" + _KEEP
)
# Beside the key, what `case precedents` shows, so that it reads this table alone.
_CASE_PART = "opened_at, status, expires_at, amount, agent"
_PRECEDENT_COLUMNS = f"case_type, action, signature, fact, value, case_id, {_CASE_PART}"
# The rows of the cases matching {where}, set-based: each case's signature computed once (the
# CTE is used twice, so SQLite materialises it), its facts read only when a rule is bent.
_Y = "y.case_type, y.action, y.s, {fact} AS fact, {value} AS v, y.id, " + ", ".join(
    f"y.{c}" for c in _CASE_PART.split(", "))
_X = "x.case_type, x.action, x.id, x.opened_at, x.status, x.expires_at, x.amount, x.agent, x.facts"
# The key rows of `y`: the cases with their signature `s`.
_PRECEDENT_ROWS = (
    " SELECT " + _Y.format(fact="''", value="y.amount") + " FROM y WHERE instr(y.s, '=bent') = 0"
    " UNION ALL SELECT * FROM (SELECT " + _Y.format(fact="f.key", value=_FACT_VALUE.format(c="y"))
    + " FROM y, json_each(y.facts) f WHERE instr(y.s, '=bent') > 0) WHERE v IS NOT NULL"
)
_PRECEDENT_BACKFILL = "WITH y AS (SELECT " + _X + ", " + _SIGNATURE.format(c="x") + " AS s FROM cases x{where})" + (
    _PRECEDENT_ROWS)
# The same rows for the cases after id :last (an import's chunk), each distinct `rules` text's
# signature computed once: a chunk holds thousands of cases but a handful of rule outcomes, and
# parsing every case's rules was a tenth of the importing process's time (200,000 rows).
# The signature is a function of that text alone, so the rows are the same (tests/test_derived.py).
_PRECEDENTS_BY_RULES = (
    "WITH sigs AS (SELECT d.rules, " + _SIGNATURE.format(c="d") + " AS s"
    " FROM (SELECT DISTINCT rules FROM cases WHERE id > :last) d),"
    " y AS (SELECT " + _X + ", sigs.s FROM cases x JOIN sigs ON sigs.rules = x.rules WHERE x.id > :last)"
    + _PRECEDENT_ROWS
)

# What the triggers on a new case do, as set-based statements over the cases after id :last:
# the import writes a chunk with these triggers (and the full-text one) dropped and runs
# these once per chunk, in the same transaction (store.derived).
PER_CASE_TRIGGERS = ("cases_case_texts", "case_texts_ai", "cases_precedent_keys")
TEXTS_SINCE = f"INSERT INTO case_texts ({_TEXT_COLUMNS}) " + _JUSTIFICATION.format(
    c="c", tail="FROM cases c WHERE c.id > :last AND c.justification != '' ORDER BY c.id")
FULL_TEXT_SINCE = "INSERT INTO case_texts_fts (rowid, text) SELECT id, text FROM case_texts WHERE id > :last_text"
PRECEDENTS_SINCE = f"INSERT INTO precedent_keys ({_PRECEDENT_COLUMNS}) {_PRECEDENTS_BY_RULES} ORDER BY 1, 2, 3, 4, 5, 6"


def _precedent_keys(db: Database) -> None:
    """`precedent_keys`: every case under its type, action and signature, once with fact ''
    (no rule bent) or once per number or date fact with its value (a rule bent), with the
    case's opening, status, expiry, amount and agent: `case precedents` reads a band of a bent
    rule as one range of this table's key and nothing else. Kept by triggers on cases: a row
    per new case (live and imported), and a settled case's new status."""
    db.execute(
        "CREATE TABLE precedent_keys (case_type TEXT NOT NULL, action TEXT NOT NULL, signature TEXT NOT NULL,"
        " fact TEXT NOT NULL, value REAL NOT NULL, case_id INTEGER NOT NULL, opened_at TEXT NOT NULL,"
        " status TEXT NOT NULL, expires_at TEXT, amount INTEGER NOT NULL, agent TEXT NOT NULL,"
        " PRIMARY KEY (case_type, action, signature, fact, value, case_id)) WITHOUT ROWID"
    )
    # In key order: the table is its own index, and sorted rows append instead of splitting pages.
    db.execute(f"INSERT INTO precedent_keys ({_PRECEDENT_COLUMNS}) {_PRECEDENT_BACKFILL.format(where='')}"
               " ORDER BY 1, 2, 3, 4, 5, 6")
    db.execute(
        f"CREATE TRIGGER cases_precedent_keys AFTER INSERT ON cases BEGIN INSERT INTO precedent_keys"
        f" ({_PRECEDENT_COLUMNS}) SELECT new.case_type, new.action, s, fact, value, new.id, new.opened_at,"
        f" new.status, new.expires_at, new.amount, new.agent FROM ({_NEW_KEYS}); END"
    )
    # A status changes only when a case is settled: its rows are found by their whole key.
    db.execute(
        "CREATE TRIGGER cases_precedent_status AFTER UPDATE OF status ON cases WHEN old.status IS NOT new.status"
        " BEGIN UPDATE precedent_keys SET status = new.status WHERE case_type = new.case_type"
        f" AND action = new.action AND (signature, fact, value) IN ({_NEW_KEYS}) AND case_id = new.id; END"
    )


def in_transaction(db: Database) -> Database:
    """The same connection, with executescript() run one statement at a time: sqlite3's
    executescript() commits first, which would end the migration's transaction halfway."""
    import sqlite3

    from sqlite_utils import Database

    class OneTransaction(Database):
        def executescript(self, sql: str) -> sqlite3.Cursor:
            cursor, statement = None, ""
            for line in sql.splitlines(keepends=True):
                statement += line
                if sqlite3.complete_statement(statement):
                    cursor, statement = self.conn.execute(statement), ""
            if statement.strip():
                cursor = self.conn.execute(statement)
            assert cursor is not None
            return cursor

    return OneTransaction(db.conn)


def _m007_search_precedents_views(db: Database) -> None:
    """Full-text search over what people wrote (`case search`); comparable cases by key
    (`case precedents`)."""
    _case_texts(db)
    _precedent_keys(db)


MIGRATIONS: Sequence[Callable[[Database], None]] = (
    _m001_initial, _m002_report_indexes, _m003_exceptions_index, _m004_append_order_indexes,
    _m005_deferred_indexes, _m006_applied_policies, _m007_search_precedents_views,
)  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)
