"""The import's SQL (part of the store layer): bulk writes of imported cases with their
hash-chained events, external-id look-ups, and a read-only view for dry runs.

Kept apart from store.sqlite so the hot path is one executemany per table per chunk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from empower_cli.core.errors import StoreError
from empower_cli.store.schema import SCHEMA_VERSION
from empower_cli.store.sqlite import BUSY_TIMEOUT_MS, Connection, Store, latest_event, next_prev_hash


class ImportedCase(NamedTuple):
    """An imported case's columns as its validation fixes them, named, typed and ordered as
    in the cases table; the writer puts the id before them and the importing account after
    them. CASE_COLUMNS is derived from these fields, so the INSERT cannot drift from them."""

    external_id: str
    imported: int
    opened_at: str
    agent: str
    customer_id: str
    segment: str | None
    case_type: str
    action: str
    amount: int
    discretionary_amount: int
    held_amount: int
    in_policy: int
    status: str
    expires_at: str | None
    settled_at: str | None
    escalated: int
    facts: str
    rules: str
    reasons: str
    justification: str | None
    reaction: str | None
    retained: int | None
    cosigner: str | None
    supervisor: str | None
    objections: int
    policy_version: str
    policy_sha256: str
    today_status: str
    today_discretionary: int
    content_hash: str


CASE_COLUMNS = ("id", *ImportedCase._fields, "imported_by")
EVENT_COLUMNS = ("seq", "at", "case_id", "kind", "actor", "os_user", "payload", "prev_hash", "hash")
_INSERT_CASES = f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({', '.join('?' * len(CASE_COLUMNS))})"
_INSERT_EVENTS = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
# A customer's first_seen is the earliest time known, imported history included.
# The WHERE skips no-op updates: most imported rows are for customers already known.
_UPSERT_CUSTOMERS = (
    "INSERT INTO customers (customer_id, segment, first_seen) VALUES (?, ?, ?) "
    "ON CONFLICT(customer_id) DO UPDATE SET segment = COALESCE(excluded.segment, customers.segment), "
    "first_seen = CASE WHEN excluded.first_seen < customers.first_seen THEN excluded.first_seen"
    " ELSE customers.first_seen END "
    "WHERE excluded.first_seen < customers.first_seen OR excluded.segment IS NOT NULL"
    " AND (customers.segment IS NULL OR excluded.segment <> customers.segment)"
)
_LOOKUP_BATCH = 500  # bound parameters per IN (...) query
WAL_CHECKPOINT_BYTES = 128 << 20


def known_external(store: Store, external_ids: Sequence[str]) -> dict[str, str | None]:
    """external_id -> content_hash for the ids already recorded (hash None for a live case)."""
    return _known_external(store.conn, external_ids)


def _known_external(conn: Connection, external_ids: Sequence[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    unique = list(dict.fromkeys(external_ids))
    for start in range(0, len(unique), _LOOKUP_BATCH):
        batch = unique[start : start + _LOOKUP_BATCH]
        marks = ", ".join("?" * len(batch))
        for ext, digest in conn.execute(
            f"SELECT external_id, content_hash FROM cases WHERE external_id IN ({marks})", batch
        ):
            found[ext] = digest
    return found


def write_chunk(store: Store, cases: Iterable[Sequence[Any]], events: Iterable[Sequence[Any]],
                customers: Iterable[Sequence[Any]]) -> None:  # fmt: skip
    """Insert one chunk; call inside `store.write()` so cases and events commit together."""
    assert store.conn.in_transaction, "write_chunk outside a write transaction"
    from empower_cli.store.derived import set_based

    with set_based(store):  # search and precedent rows for the chunk, one statement each
        store.conn.executemany(_INSERT_CASES, cases)
    store.conn.executemany(_UPSERT_CUSTOMERS, customers)
    store.conn.executemany(_INSERT_EVENTS, events)


# The report indexes keyed on columns that are random in an import's order (time, customer).
# Kept up to date row by row, each chunk rewrites thousands of their pages; built once at the
# end of a large import, they are sorted instead. Correctness never depends on them.
DEFERRABLE_INDEXES = ("idx_cases_status_opened_at", "cases_by_customer", "cases_by_time", "cases_cosigned")
SMALL_CACHE_KIB = 16_384  # with the indexes deferred; while building them, the sorter spills beyond it


def deferred_indexes(conn: Connection) -> list[str]:
    """The report indexes a large import dropped and has not rebuilt yet (a running import's,
    or a killed one's)."""
    return [name for (name,) in conn.execute("SELECT name FROM deferred_indexes ORDER BY name")]


def defer_indexes(store: Store) -> None:
    """Drop the deferrable report indexes, remembering their definitions in the same
    transaction, so that a kill at any point leaves them either in place or listed in
    `deferred_indexes` for `rebuild_indexes`."""
    marks = ", ".join("?" * len(DEFERRABLE_INDEXES))
    with store.write():
        found = store.conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({marks})", DEFERRABLE_INDEXES
        ).fetchall()
        store.conn.executemany("INSERT INTO deferred_indexes (name, sql) VALUES (?, ?)", found)
        for name, _ in found:
            store.conn.execute(f'DROP INDEX "{name}"')


def rebuild_indexes(store: Store) -> int:
    """Build every deferred index in one transaction; returns how many were built."""
    conn = store.conn
    if not deferred_indexes(conn):
        return 0
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    temp = conn.execute("PRAGMA temp_store").fetchone()[0]
    # A small cache and a file-backed sorter: memory stays flat whatever the table's size.
    conn.execute(f"PRAGMA cache_size = -{SMALL_CACHE_KIB}")
    conn.execute("PRAGMA temp_store = FILE")
    try:
        with store.write():
            # Re-read under the lock: a concurrent import may have rebuilt them meanwhile.
            pending = conn.execute(
                "SELECT name, sql FROM deferred_indexes"
                " WHERE name NOT IN (SELECT name FROM sqlite_master WHERE type = 'index') ORDER BY name"
            ).fetchall()
            for _, sql in pending:
                conn.execute(sql)
            conn.execute("DELETE FROM deferred_indexes")
    finally:
        conn.execute(f"PRAGMA cache_size = {cache}")
        conn.execute(f"PRAGMA temp_store = {temp}")
    return len(pending)


def tune_for_bulk(store: Store, *, deferred: bool) -> None:
    """Settings for one import's connection. WAL with synchronous=NORMAL (set by Store) stays
    crash-consistent: a kill or power cut loses at most the last commits, never half of one."""
    # With the random-keyed indexes in place, their pages should stay cached (RSS ~135 MB);
    # with them deferred, every index grows at its end and a small cache does as well.
    store.conn.execute(f"PRAGMA cache_size = -{SMALL_CACHE_KIB if deferred else 65_536}")
    store.conn.execute("PRAGMA temp_store = MEMORY")
    # Checkpoint every ~128 MiB of WAL instead of every 1,000 pages: chunks re-dirty the same
    # pages, and fewer checkpoints copy (and fsync) each page fewer times. Still crash-safe.
    page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
    store.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_BYTES // page_size}")


def open_read_only(path: Path) -> sqlite3.Connection | None:
    """A connection that refuses writes (`query_only`), for dry runs; None when there is no
    database yet. Not `mode=ro`: a read-only connection would leave -wal and -shm files behind,
    while this one, the last to close, removes them as it found them."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: cannot read the database ({e})") from None
    if version == 0:
        conn.close()
        return None
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"{path}: the database has schema version {version}, newer than this empower understands")
    return conn


class ReadOnlyView:
    """What a dry run may ask of a database it must not change: opened with `open_read_only`,
    empty when there is no database yet (nothing is recorded, so every id is new)."""

    def __init__(self, path: Path) -> None:
        self._conn: Connection | None = open_read_only(path)

    def known_external(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        """As `known_external`, for the database as it stands."""
        return {} if self._conn is None else _known_external(self._conn, external_ids)

    def latest_event(self, kind: str) -> dict[str, Any] | None:
        """As `Store.latest_event` (None when there is no database yet)."""
        return None if self._conn is None else latest_event(self._conn, kind)

    def next_prev_hash(self, seq: int) -> str | None:
        return None if self._conn is None else next_prev_hash(self._conn, seq)

    def login(self) -> str | None:
        return None  # SQLite authenticates no one: the OS account acts

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SeenIds:
    """The external ids a dry run has met, in a private temporary database (not in memory),
    so that a dry run finds duplicates across the whole file with flat memory."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect("", isolation_level=None)
        self.conn.execute("CREATE TABLE seen (external_id TEXT PRIMARY KEY, content_hash TEXT) WITHOUT ROWID")

    def lookup(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        unique = list(dict.fromkeys(external_ids))
        for start in range(0, len(unique), _LOOKUP_BATCH):
            batch = unique[start : start + _LOOKUP_BATCH]
            marks = ", ".join("?" * len(batch))
            sql = f"SELECT external_id, content_hash FROM seen WHERE external_id IN ({marks})"
            found.update(self.conn.execute(sql, batch).fetchall())
        return found

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", pairs)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
