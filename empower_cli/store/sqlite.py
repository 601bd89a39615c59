"""The Store: opening (and migrating, store.schema) the SQLite file, transactions, the
hash-chained event log (its format: store.chain), the case and customer tables derived from
it, and the budget ledger read from the cases table.

Every write runs inside `Store.write()`, one `BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from empower_cli.core.errors import DatabaseBusy, EmpowerError, StoreError
from empower_cli.core.models import BudgetState
from empower_cli.core.timeutil import iso
from empower_cli.store.chain import GENESIS, Head, canonical_json, event_hash
from empower_cli.store.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from sqlite_utils import Database

BUSY_TIMEOUT_MS = 5_000
BUSY_RETRIES = 6  # BEGIN IMMEDIATE attempts; with the timeout, ~30 s before giving up
# For new databases: an import writes each row's case and event (~2 KB) through the WAL,
# and 16 KiB pages halve the time its commits spend writing compared with 4 KiB pages.
PAGE_SIZE = 16_384
Row = dict[str, Any]

class Cursor(Protocol):
    """What the store reads from a query's result (sqlite3's cursor, or psycopg's)."""

    @property
    def description(self) -> Any: ...
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The calls the store makes on a connection: sqlite3's, which store.postgres also speaks."""

    def execute(self, sql: str, params: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...
    @property
    def in_transaction(self) -> bool: ...
    def close(self) -> None: ...


# A pending case whose hold time has passed is expired from that moment, at every read.
STATUS_SQL = (
    "CASE WHEN status IN ('pending_cosign', 'pending_supervisor') AND expires_at <= :now "
    "THEN 'expired' ELSE status END"
)




class Store:
    """One SQLite file in WAL mode; migrates on open; owns every transaction.

    The base of every backend: its SQL is written to run on PostgreSQL too (`?` and `:name`
    parameters, which store.postgres translates); what differs is a method a backend
    overrides (connecting, transactions, migrations, the bulk write) or one of the SQL
    fragments below (JSON, dates).
    """

    dialect = "sqlite"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path: Path | None = path
        self.location = str(path)  # how messages name the database
        if not create and not path.exists():
            raise StoreError(f"{path}: no database here yet (run: empower init)")
        if create:
            self._make_parent(path)
            from empower_cli.store.files import create_shared_file

            create_shared_file(path)
        self.conn: Connection
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if _empty(path):  # new: the page size is fixed once WAL mode is set
                self.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = self._wal_mode()
            self.conn.execute("PRAGMA synchronous = NORMAL" if mode == "wal" else "PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (sqlite3.DatabaseError, EmpowerError) as e:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            if isinstance(e, EmpowerError):  # a newer schema, or busy past the retry limit
                raise
            if _busy(e):  # never "database is locked" to a user
                raise DatabaseBusy() from None
            raise StoreError(_describe(str(path), e)) from None
        self._share_with_group()

    def _wal_mode(self) -> str:
        """Switch to WAL (a no-op once the file is in WAL mode). SQLite answers "database is
        locked" at once, without waiting out the busy timeout, while another connection holds
        a lock on a file it is creating: two first uses at the same moment then collided
        (exit 6 for one of them). Retried for as long as a busy write would be."""
        for attempt in range(200):
            try:
                return str(self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as e:
                if not _busy(e) or attempt == 199:
                    raise
                time.sleep(min(0.005 * (attempt + 1), 0.15))
        raise AssertionError("unreachable")

    def _share_with_group(self) -> None:
        """In a group-shared directory, the file and its -wal/-shm stay writable by the group
        (README: "Several accounts on one database")."""
        from empower_cli.store.files import share_with_group

        p = self.path
        assert p is not None
        share_with_group([p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")], p.parent)

    @staticmethod
    def _make_parent(path: Path) -> None:
        try:
            if not path.parent.is_dir():
                from empower_cli.store.files import make_shared_dir

                path.parent.mkdir(parents=True, exist_ok=True)
                make_shared_dir(path.parent)
        except OSError as e:
            raise StoreError(f"{path.parent}: cannot create the database directory ({e.strerror})") from None

    @property
    def db(self) -> Database:
        from sqlite_utils import Database

        db = self.__dict__.get("_db")
        if db is None:
            assert isinstance(self.conn, sqlite3.Connection), "sqlite-utils builds SQLite's schema only"
            db = self.__dict__["_db"] = Database(self.conn)
        return db

    def close(self) -> None:
        self.conn.close()

    def grant_to_agents(self) -> str | None:
        """Give the agents' role what every command needs, on a backend with roles (None here)."""
        return None

    def login(self) -> str | None:
        """The database login that acts, on a backend that authenticates one (PostgreSQL's
        `session_user`); None on SQLite, where the OS account acts."""
        return None

    def iterate(self, sql: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a large read, streamed (several may be open at once)."""
        yield from self.conn.execute(sql, params)

    # -- SQL fragments a backend spells its own way (the audit reports use them) ------

    def sql_json_elements(self, column: str) -> str:
        """A table of a JSON array column's elements, each in a column named `value`."""
        return f"json_each({column})"

    def sql_json_field(self, column: str, key_param: str) -> str:
        """The value of a JSON object column at a key given as the parameter `key_param`
        (its value made by `fact_key`)."""
        return f"json_extract({column}, {key_param})"

    def fact_key(self, name: str) -> str:
        """The parameter `sql_json_field` takes for a key."""
        return '$."' + name.replace('"', '\\"') + '"'

    def sql_days_between(self, later_date: str, earlier_date: str) -> str:
        """Days from one ISO date text to another, as a float."""
        return f"(julianday({later_date}) - julianday({earlier_date}))"

    def sql_now(self, *, days_ago: int = 0) -> str:
        """The SQL clock as the store's fixed-width UTC text (2026-11-23T10:00:00.000000Z):
        SQLite's 'now' has milliseconds; three zeros keep the width (text order = time order)."""
        shift = f", '-{int(days_ago)} days'" if days_ago else ""
        return f"(strftime('%Y-%m-%dT%H:%M:%f', 'now'{shift}) || '000Z')"

    def sql_json_text(self, column: str, name: str) -> str:
        """A JSON object column's value at key `name` (a literal: views hold no parameters)."""
        path = self.fact_key(name).replace("'", "''")
        return f"json_extract({column}, '{path}')"

    def sql_zero_pad(self, expr: str, width: int) -> str:
        """An integer as text, zero-padded on the left to `width` digits."""
        return f"substr('{'0' * width}' || {expr}, -{width})"

    def view_marks(self, names: Sequence[str]) -> dict[str, str]:
        """The SQL text of each of these views that exists (their policy mark is a comment in it)."""
        marks = ", ".join("?" * len(names))
        sql = f"SELECT name, sql FROM sqlite_master WHERE type = 'view' AND name IN ({marks})"
        return dict(self.conn.execute(sql, tuple(names)).fetchall())

    def write_view(self, name: str, select: str, *, mark: str) -> None:
        """(Re)create a view; call inside write()."""
        self.conn.execute(f"DROP VIEW IF EXISTS {name}")
        self.conn.execute(f"CREATE VIEW {name} AS {select} /* {mark} */")

    def may_write_views(self) -> bool:
        return True

    def sql_unindexed(self, column: str) -> str:
        """A column the planner must not search an index for (SQLite's unary `+`)."""
        return f"+{column}"

    def scratch_table(self, name: str, select: str, params: Any) -> None:
        """A temporary table of this connection, made from a query (dropped by `drop_scratch`)."""
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.drop_scratch(name)
        self.conn.execute(f"CREATE TEMP TABLE {name} AS {select}", params)

    def drop_scratch(self, name: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def match_case_texts(self, terms: Sequence[str], *, limit: int | None, now: str) -> list[tuple[Any, ...]]:
        """`case search`'s matches, best first, as store.search.Hit's fields."""
        from empower_cli.store import search

        return search.match_sqlite(self, search.fts_query(terms), limit=limit, now=now)

    # -- the import's bulk writes (store.bulk; a backend may write its own way) -------

    def known_external(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        """external_id -> content_hash for the ids already recorded (None for a live case)."""
        from empower_cli.store import bulk

        return bulk.known_external(self, external_ids)

    def next_case_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM cases").fetchone()[0])

    def write_chunk(self, cases: Iterable[Sequence[Any]], events: Iterable[Sequence[Any]],
                    customers: Iterable[Sequence[Any]]) -> None:  # fmt: skip
        """Insert one imported chunk; call inside `write()` so cases and events commit together."""
        from empower_cli.store import bulk

        bulk.write_chunk(self, cases, events, customers)

    def indexes_deferred(self) -> list[str]:
        from empower_cli.store import bulk

        return bulk.deferred_indexes(self.conn)

    def defer_indexes(self) -> None:
        from empower_cli.store import bulk

        bulk.defer_indexes(self)

    def rebuild_indexes(self) -> int:
        from empower_cli.store import bulk

        return bulk.rebuild_indexes(self)

    def tune_for_bulk(self, *, deferred: bool) -> None:
        from empower_cli.store import bulk

        bulk.tune_for_bulk(self, deferred=deferred)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Store]:
        """One BEGIN IMMEDIATE transaction: the check and the write see the same state."""
        self._begin_immediate()
        try:
            yield self
        except sqlite3.DatabaseError as e:  # disk full, I/O error...: say so, keep nothing
            self._rollback()
            if _busy(e):  # SPEC §6: never "database is locked" to a user; busy is exit 6
                raise DatabaseBusy() from None
            raise StoreError(f"{_describe(self.location, e)}; nothing was recorded") from None
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._rollback()
            if _busy(e):
                raise DatabaseBusy() from None
            raise StoreError(f"{_describe(self.location, e)}; the change was not saved") from None

    def _rollback(self) -> None:
        """Roll back if a transaction is open; a failing rollback must not hide the first error
        (SQLite discards an uncommitted transaction when the connection closes)."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _begin_immediate(self) -> None:
        for attempt in range(BUSY_RETRIES):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise StoreError(_describe(self.location, e)) from None
                time.sleep(0.01 * (attempt + 1))
        raise DatabaseBusy()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the database has schema version {version}, newer than this "
                f"empower understands ({SCHEMA_VERSION}); upgrade empower to use it"
            )
        if version == SCHEMA_VERSION:
            return
        with self.write():
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self.db)
                self.conn.execute(f"PRAGMA user_version = {number}")

    # -- events ---------------------------------------------------------------------

    def head(self) -> Head:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return Head(row[0], row[1]) if row else Head(0, GENESIS)

    def append_event(self, *, kind: str, case_id: int | None, actor: str, os_user: str,
                     payload: Mapping[str, Any], at: dt.datetime) -> Head:  # fmt: skip
        """Append one hash-chained event; call inside write()."""
        assert self.conn.in_transaction, "append_event outside a write transaction"
        prev = self.head()
        event = {"seq": prev.seq + 1, "at": iso(at), "case_id": case_id, "kind": kind,
                 "actor": actor, "os_user": os_user, "payload": dict(payload)}  # fmt: skip
        digest = event_hash(prev.hash, event)
        self.conn.execute(
            "INSERT INTO events (seq, at, case_id, kind, actor, os_user, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event["seq"], event["at"], case_id, kind, actor, os_user,
             canonical_json(event["payload"]), prev.hash, digest),
        )  # fmt: skip
        return Head(prev.seq + 1, digest)

    def latest_event(self, kind: str) -> Row | None:
        return latest_event(self.conn, kind)

    def next_prev_hash(self, seq: int) -> str | None:
        return next_prev_hash(self.conn, seq)

    def events(self, case_id: int | None = None) -> list[Row]:
        where, params = ("WHERE case_id = ?", (case_id,)) if case_id is not None else ("", ())
        cur = self.conn.execute(f"SELECT * FROM events {where} ORDER BY seq", params)
        return _rows(cur)

    # -- what `audit verify` reads to re-derive the tables from the events ------------

    def case_events_by_case(self) -> Iterator[tuple[int, int, str, str, str, str]]:
        """(case_id, seq, at, kind, actor, payload) of every case's events, by case then seq
        (the case_id index holds them in that order: no sort)."""
        yield from self.iterate(
            "SELECT case_id, seq, at, kind, actor, payload FROM events WHERE case_id IS NOT NULL ORDER BY case_id, seq"
        )

    def cases_by_id(self) -> Iterator[Row]:
        names = self.columns("cases")
        for values in self.iterate(f"SELECT {', '.join(names)} FROM cases ORDER BY id"):
            yield dict(zip(names, values, strict=True))

    def columns(self, table: str) -> list[str]:
        """A table's columns, in order."""
        cur = self.conn.execute(f"SELECT * FROM {table} LIMIT 0")
        return [d[0] for d in cur.description]

    def events_of_no_case(self, kind: str) -> list[Row]:
        return _rows(self.conn.execute("SELECT * FROM events WHERE case_id IS NULL AND kind = ? ORDER BY seq", (kind,)))

    def customers_with_segment(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT customer_id, segment FROM customers WHERE segment IS NOT NULL"))

    def customers_without_case(self) -> list[str]:
        sql = "SELECT customer_id FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM cases) LIMIT 1000"
        return [c for (c,) in self.conn.execute(sql)]

    def case_customers_without_row(self) -> list[str]:
        sql = ("SELECT DISTINCT customer_id FROM cases WHERE customer_id NOT IN (SELECT customer_id FROM customers)"
               " LIMIT 10")  # fmt: skip
        return [c for (c,) in self.conn.execute(sql)]

    def policy_rows(self) -> list[Row]:
        return _rows(self.conn.execute("SELECT * FROM policies ORDER BY number"))

    # -- cases ----------------------------------------------------------------------

    # Plain parameterised SQL, not sqlite-utils: importing it costs ~40 ms on every
    # `case new`; it is only needed to build the schema in the migrations.

    def insert_case(self, row: Mapping[str, Any]) -> int:
        assert self.conn.in_transaction, "insert_case outside a write transaction"
        columns = ", ".join(_quote(k) for k in row)
        marks = ", ".join("?" for _ in row)
        # The id is chosen here, not by the backend: writes are serialised, and SQLite and
        # PostgreSQL then number cases alike (the largest id + 1, as SQLite's rowid does).
        cur = self.conn.execute(
            f"INSERT INTO cases (id, {columns}) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM cases), {marks})"
            " RETURNING id",
            tuple(row.values()),
        )
        return int(cur.fetchone()[0])

    def update_case(self, case_id: int, changes: Mapping[str, Any]) -> None:
        assert self.conn.in_transaction, "update_case outside a write transaction"
        assignments = ", ".join(f"{_quote(k)} = ?" for k in changes) or "id = id"
        cur = self.conn.execute(f"UPDATE cases SET {assignments} WHERE id = ?", (*changes.values(), case_id))
        if cur.rowcount == 0:
            raise StoreError(f"case {case_id} does not exist")

    def get_case(self, case_id: int, *, now: dt.datetime) -> Row | None:
        cur = self.conn.execute(
            f"SELECT *, {STATUS_SQL} AS effective_status FROM cases WHERE id = :id",
            {"id": case_id, "now": iso(now)},
        )
        rows = _rows(cur)
        return rows[0] if rows else None

    def list_cases(self, *, now: dt.datetime, customer: str | None = None,
                   agent: str | None = None, status: str | None = None,
                   since: dt.datetime | None = None, limit: int | None = None) -> list[Row]:  # fmt: skip
        clauses, params = [], {"now": iso(now)}
        if customer is not None:
            clauses.append("customer_id = :customer")
            params["customer"] = customer
        if agent is not None:
            clauses.append("agent = :agent")
            params["agent"] = agent
        if status is not None:
            clauses.append(f"({STATUS_SQL}) = :status")
            params["status"] = status
        if since is not None:
            clauses.append("opened_at >= :since")
            params["since"] = iso(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f"LIMIT {int(limit)}" if limit else ""
        cur = self.conn.execute(
            f"SELECT *, {STATUS_SQL} AS effective_status FROM cases {where} "
            f"ORDER BY opened_at DESC, id DESC {tail}",
            params,
        )
        return _rows(cur)

    # -- customers and the budget ledger -------------------------------------------

    def customer_segment(self, customer_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT segment FROM customers WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        return row[0] if row else None

    def remember_customer(self, customer_id: str, segment: str | None, at: dt.datetime) -> None:
        """Record a customer the first time they are seen; a given segment sticks."""
        self.conn.execute(
            "INSERT INTO customers (customer_id, segment, first_seen) VALUES (?, ?, ?) "
            "ON CONFLICT(customer_id) DO UPDATE SET segment = COALESCE(excluded.segment, customers.segment)",
            (customer_id, segment, iso(at)),
        )

    def set_segment(self, customer_id: str, segment: str, at: dt.datetime) -> None:
        """Put a customer in a segment (a grant: call inside write(), with its event)."""
        self.conn.execute(
            "INSERT INTO customers (customer_id, segment, first_seen) VALUES (?, ?, ?) "
            "ON CONFLICT(customer_id) DO UPDATE SET segment = excluded.segment",
            (customer_id, segment, iso(at)),
        )

    # -- copying a whole database (`empower db copy`) ---------------------------------

    COPIED_TABLES = ("policies", "customers", "cases", "events")
    """The tables that hold a database's history and state, each keyed by its first column."""

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """Every row of a copied table, in `columns(table)` order, by its key."""
        assert table in self.COPIED_TABLES
        columns = self.columns(table)
        yield from self.iterate(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")

    def row_count(self, table: str) -> int:
        assert table in self.COPIED_TABLES
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def is_empty(self) -> bool:
        return all(self.row_count(t) == 0 for t in self.COPIED_TABLES)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert rows as they are (`db copy`); call inside write(). New cases get their search
        and precedent rows set-based, as an import's chunk does (store.derived)."""
        from empower_cli.store.derived import set_based

        assert table in self.COPIED_TABLES
        assert self.conn.in_transaction
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        if table == "cases":
            with set_based(self):
                self.conn.executemany(sql, rows)
        else:
            self.conn.executemany(sql, rows)

    def has_events(self) -> bool:
        return self.conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None

    def has_cases(self) -> bool:
        return self.conn.execute("SELECT 1 FROM cases LIMIT 1").fetchone() is not None

    # -- applied policies (SPEC §5a) -------------------------------------------------

    def applied_policy(self) -> Row | None:
        """The policy that governs: the one applied last (None before the first)."""
        cur = self.conn.execute("SELECT * FROM policies ORDER BY number DESC LIMIT 1")
        rows = _rows(cur)
        return rows[0] if rows else None

    def policy_log(self) -> list[Row]:
        """Every applied policy, oldest first, without its text."""
        cur = self.conn.execute(
            "SELECT number, version, sha256, currency, applied_by, os_user, applied_at, note, seq"
            " FROM policies ORDER BY number"
        )
        return _rows(cur)

    def policy_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM policies").fetchone()[0])

    def record_policy(self, *, number: int, version: str, sha256: str, currency: str, text: str, applied_by: str,
                      os_user: str, at: dt.datetime, note: str | None, seq: int) -> int:  # fmt: skip
        """Store an applied policy; call inside write(), after appending its event."""
        assert self.conn.in_transaction, "record_policy outside a write transaction"
        self.conn.execute(
            "INSERT INTO policies (number, version, sha256, currency, text, applied_by, os_user, applied_at, note, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, version, sha256, currency, text, applied_by, os_user, iso(at), note, seq),
        )
        return number

    def budget(self, customer_id: str, *, limit: int, window_days: int, now: dt.datetime,
               exclude_case: int | None = None) -> BudgetState:  # fmt: skip
        """Spent (approved inside the window) and held (live pending) for one customer.

        No upper bound on settled_at: `now` is taken before the write lock is won, and a
        case another process approved meanwhile (settled a few ms "after" now) is spent too.
        """
        row = self.conn.execute(
            """
            SELECT
              COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0),
              COALESCE(SUM(CASE WHEN status != 'approved' THEN held_amount END), 0),
              COUNT(CASE WHEN discretionary_amount > 0
                          AND (status = 'approved' OR held_amount > 0) THEN 1 END)
            FROM cases
            WHERE customer_id = :customer AND id <> COALESCE(:exclude, 0) AND (
                (status = 'approved' AND settled_at > :window_start)
                OR (status IN ('pending_cosign', 'pending_supervisor') AND expires_at > :now))
            """,
            {"customer": customer_id, "exclude": exclude_case, "now": iso(now),
             "window_start": iso(now - dt.timedelta(days=window_days))},
        ).fetchone()  # fmt: skip
        return BudgetState(limit=limit, spent=row[0], held=row[1], count=row[2])

    # -- the workflow queue (cli/workflow.py) -----------------------------------------

    def waiting_for(self, agent: str, *, can_approve: bool, now: dt.datetime) -> list[Row]:
        """Live pending cases another agent may act on, oldest first: co-signs for anyone,
        supervisor cases only for a role that can approve; never the agent's own cases."""
        cur = self.conn.execute(
            "SELECT *, status AS effective_status FROM cases "
            "WHERE expires_at > :now AND agent != :agent "
            "AND (status = 'pending_cosign' OR (:approver = 1 AND status = 'pending_supervisor')) "
            "ORDER BY opened_at, id",
            {"now": iso(now), "agent": agent, "approver": int(can_approve)},
        )
        return _rows(cur)



def latest_event(conn: Connection, kind: str) -> Row | None:
    """The newest event of a kind that belongs to no case (a policy, a segment grant)."""
    sql = "SELECT * FROM events WHERE case_id IS NULL AND kind = ? ORDER BY seq DESC LIMIT 1"
    rows = _rows(conn.execute(sql, (kind,)))
    return rows[0] if rows else None


def next_prev_hash(conn: Connection, seq: int) -> str | None:
    """The prev_hash of the event after `seq` (None when it is the last)."""
    sql = "SELECT prev_hash FROM events WHERE seq > ? ORDER BY seq LIMIT 1"
    row = conn.execute(sql, (seq,)).fetchone()
    return row[0] if row else None


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _quote(column: str) -> str:
    """A column name as an SQL identifier (names come from our code, never from input)."""
    return '"' + column.replace('"', '""') + '"'


def _busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock past the timeout."""
    return isinstance(error, sqlite3.OperationalError) and ("locked" in str(error) or "busy" in str(error))


def _rows(cur: Cursor) -> list[Row]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def _describe(path: str, error: sqlite3.Error) -> str:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return f"{path}: the file is not an empower database or is corrupt ({text})"
    if "readonly" in text or "read-only" in text:
        return f"{path}: the database is read-only for this account ({text})"
    if "full" in text:
        return f"{path}: the disk holding the database is full ({text})"
    if "disk I/O error" in text:
        return f"{path}: the disk failed to read or write the database ({text})"
    if "unable to open" in text:
        return f"{path}: cannot open the database ({text}); check the directory exists and is writable"
    return f"{path}: database error ({text})"
