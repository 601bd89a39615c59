"""PostgreSQL behind the same Store API (`--db postgresql://…`): agents on many machines share
one ledger with the guarantees SQLite gives one host.

The store's SQL is shared: `PgConnection` runs it through psycopg 3, translating the `?` and
`:name` parameters, and this module only overrides what PostgreSQL does its own way:
connecting, the write transaction, the schema, the import's COPY and a few SQL fragments.

- **Writes are serialised** like SQLite's `BEGIN IMMEDIATE`: every write transaction first
  locks the one row of `empower_meta` (`SELECT … FOR UPDATE`), so the hash chain's head, the
  budget check and the debit are read and written by one writer at a time, at READ
  COMMITTED (each statement after the lock sees every earlier commit). A lock not won within
  `lock_timeout` (30 s unless the URL sets it) is exit 6; so is a serialization failure or a
  deadlock, which this locking makes impossible on PostgreSQL itself (docs/postgres.md).
- **Identity is the login**: `login()` is `session_user`.
- **Same values**: text columns use the "C" collation (byte order, as SQLite sorts), money and
  ids are BIGINT, times the same ISO text; sums come back as int, so every report and every
  `case show` prints the same JSON on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from itertools import count
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from empower_cli.core.errors import DatabaseBusy, EmpowerError, StoreError
from empower_cli.store.bulk import ReadOnlyView
from empower_cli.store.schema import SCHEMA_VERSION
from empower_cli.store.sqlite import Cursor, Store

if TYPE_CHECKING:
    import psycopg

LOCK_TIMEOUT = "30s"  # as long as SQLite's busy retries; a URL's own lock_timeout wins
_BUSY_STATES = {"55P03", "40001", "40P01"}  # lock not available, serialization failure, deadlock
_cursor_names = count(1)


def display(url: str) -> str:
    """The URL without its password (messages, `init`, `db copy`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc}"))


# -- running the store's SQL on psycopg ---------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\?|(?<![\w:]):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's `?` and `:name` parameters as psycopg's `%s` and `%(name)s`; every literal `%`
    doubled, in quoted text too (psycopg reads them all); a `?` or `:name` in quoted text and
    `::` casts are left alone."""

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token[0] in "'\"":
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if m.group(1) is not None:
            return f"%({m.group(1)})s"
        return token

    return _TOKENS.sub(swap, sql)


class PgConnection:
    """A psycopg connection (autocommit: transactions are begun explicitly) with the calls the
    store makes on sqlite3's: `execute`, `executemany`, `in_transaction`, `close`. Errors come
    out as the store's: busy is DatabaseBusy (exit 6), anything else a one-line StoreError."""

    def __init__(self, raw: psycopg.Connection[Any], location: str) -> None:
        self.raw, self.location = raw, location

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        cur = self.raw.cursor()
        with self._errors():
            if params:
                cur.execute(translate(sql), params)
            else:
                cur.execute(sql.encode())  # bytes: no parameters, so a `%` stays a `%`
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        if batch:
            with self._errors():
                self.raw.cursor().executemany(translate(sql), batch)

    def stream(self, sql: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        """Rows through a server-side cursor: constant memory, and several may be read at once
        (`audit verify` walks the cases and their events side by side)."""
        name = f"empower_{next(_cursor_names)}"
        with self._errors(), self.raw.cursor(name=name, withhold=True) as cur:
            cur.itersize = 2_000
            cur.execute(translate(sql) if params else sql, params or None)
            yield from cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as e:
            raise _store_error(self.location, e) from None


def _has_schema(conn: PgConnection) -> bool:
    """empower's tables exist. A query of pg_tables, not to_regclass(): under the schema lock,
    only a statement's fresh snapshot sees another process's schema just committed."""
    sql = "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'empower_meta')"
    return bool(conn.execute(sql).fetchone()[0])


def _known_external(conn: PgConnection, external_ids: Sequence[str]) -> dict[str, str | None]:
    """external_id -> content_hash for the ids already recorded: one array parameter for the
    whole chunk (500 `?` per query, as on SQLite, plans slowly here)."""
    sql = "SELECT external_id, content_hash FROM cases WHERE external_id = ANY(?)"
    return dict(conn.execute(sql, (list(dict.fromkeys(external_ids)),)).fetchall())


def _store_error(location: str, error: Exception) -> EmpowerError:
    state = getattr(error, "sqlstate", None)
    if state in _BUSY_STATES:
        return DatabaseBusy()
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if state is None:  # the connection itself: lost, refused, not authenticated
        return StoreError(f"{location}: cannot use the database server ({text})")
    return StoreError(f"{location}: database error ({state}: {text})")


def _int_sums() -> type:
    """A loader for `numeric`: SUM over BIGINT money gives numeric on PostgreSQL and an integer
    on SQLite; both come back as int (a fraction, which no query makes, as float)."""
    from psycopg.adapt import Loader

    class IntOrFloat(Loader):
        def load(self, data: Any) -> int | float:
            value = Decimal(bytes(data).decode())
            return int(value) if value == value.to_integral_value() else float(value)

    return IntOrFloat


def connect(url: str, *, read_only: bool = False) -> PgConnection:
    """Open a connection; an unreachable server or a refused login is one line naming the host
    and database (exit 1), never the password."""
    try:
        import psycopg
    except ImportError:
        raise StoreError("PostgreSQL needs the psycopg driver: pip install 'empower[postgres]'") from None
    location = display(url)
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="empower")
    except psycopg.Error as e:
        reason = " ".join(str(e).split())
        if url in reason or (urlsplit(url).password or "\0") in reason:
            reason = type(e).__name__
        raise StoreError(f"{location}: cannot connect to the database server ({reason})") from None
    raw.adapters.register_loader("numeric", _int_sums())
    conn = PgConnection(raw, location)
    if conn.execute("SHOW lock_timeout").fetchone()[0] in ("0", "0ms"):
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    return conn


# -- the schema ---------------------------------------------------------------------------

TEXT = 'TEXT COLLATE "C"'
# Version 6 of the SQLite schema (store/schema.py), in PostgreSQL's words: a PostgreSQL
# database starts at the current version in one step. SQLite's covering report indexes,
# tuned for its planner, become the four B-trees the look-ups need (an external id, a
# customer's budget, the queue by status, a period by time): every index slows the COPY,
# and the reports over all history scan the table anyway. `deferred_indexes` has no use.
SCHEMA_6 = (
    f"""CREATE TABLE events (seq BIGINT PRIMARY KEY, at {TEXT} NOT NULL, case_id BIGINT, kind {TEXT} NOT NULL,
        actor {TEXT} NOT NULL, os_user {TEXT} NOT NULL, payload {TEXT} NOT NULL, prev_hash {TEXT} NOT NULL,
        hash {TEXT} NOT NULL)""",
    "CREATE INDEX events_by_case ON events (case_id, seq)",
    """CREATE FUNCTION empower_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'events are append-only: % refused', TG_OP; END $$""",
    """CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION empower_events_append_only()""",
    """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION empower_events_append_only()""",
    f"""CREATE TABLE cases (id BIGINT PRIMARY KEY, external_id {TEXT}, imported BIGINT NOT NULL DEFAULT 0,
        opened_at {TEXT} NOT NULL, agent {TEXT} NOT NULL, customer_id {TEXT} NOT NULL, segment {TEXT},
        case_type {TEXT} NOT NULL, action {TEXT} NOT NULL, amount BIGINT NOT NULL,
        discretionary_amount BIGINT NOT NULL, held_amount BIGINT NOT NULL DEFAULT 0, in_policy BIGINT NOT NULL,
        status {TEXT} NOT NULL, expires_at {TEXT}, settled_at {TEXT}, escalated BIGINT NOT NULL DEFAULT 0,
        facts {TEXT} NOT NULL, rules {TEXT} NOT NULL, reasons {TEXT} NOT NULL, justification {TEXT},
        reaction {TEXT}, retained BIGINT, cosigner {TEXT}, supervisor {TEXT}, objections BIGINT NOT NULL DEFAULT 0,
        policy_version {TEXT}, policy_sha256 {TEXT}, today_status {TEXT}, today_discretionary BIGINT,
        content_hash {TEXT}, imported_by {TEXT})""",
    "CREATE UNIQUE INDEX cases_by_external_id ON cases (external_id)",
    "CREATE INDEX cases_by_customer ON cases (customer_id, status)",
    "CREATE INDEX cases_by_status ON cases (status, opened_at)",
    "CREATE INDEX cases_by_time ON cases (opened_at)",
    f"CREATE TABLE customers (customer_id {TEXT} PRIMARY KEY, segment {TEXT}, first_seen {TEXT})",
    f"""CREATE TABLE policies (number BIGINT PRIMARY KEY, version {TEXT} NOT NULL, sha256 {TEXT} NOT NULL,
        currency {TEXT} NOT NULL, text {TEXT} NOT NULL, applied_by {TEXT} NOT NULL, os_user {TEXT} NOT NULL,
        applied_at {TEXT} NOT NULL, note {TEXT}, seq BIGINT NOT NULL)""",
)
# Migration 7 (store/schema.py): `case_texts` and its full-text index, `precedent_keys`, kept
# by triggers as on SQLite. The trigger functions run as the tables' owner (SECURITY
# DEFINER): an agent's login may read the derived tables but never write them directly.
# Full text is PostgreSQL's own (an 'english' tsvector column with a GIN index: stemming as
# FTS5's porter tokenizer, no accent folding). A case's key rows are computed as SQLite's
# migration computes them: its signature (rules not passed, `id=result` sorted), then the
# amount when no rule is bent, else each number or date fact's value.
_STEP_TEXT_PG = """
  SELECT NEW.case_id, CASE NEW.kind WHEN 'objected' THEN 'objection' ELSE 'note' END, NEW.kind, NEW.actor,
         NEW.at, t.text
  FROM (SELECT CASE NEW.kind WHEN 'objected' THEN NEW.payload::jsonb ->> 'reason'
               ELSE NEW.payload::jsonb ->> 'note' END AS text) t
  WHERE t.text IS NOT NULL AND t.text <> ''"""
_FACT_VALUE_PG = """CASE
      WHEN f.value #>> '{}' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
        THEN CAST(CAST(substr(c.opened_at, 1, 10) AS DATE) - CAST(f.value #>> '{}' AS DATE) AS DOUBLE PRECISION)
      WHEN f.value #>> '{}' ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN CAST(f.value #>> '{}' AS DOUBLE PRECISION)
    END"""
SCHEMA_7 = (
    f"""CREATE TABLE case_texts (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, case_id BIGINT NOT NULL,
        kind {TEXT} NOT NULL, source {TEXT} NOT NULL, actor {TEXT} NOT NULL, at {TEXT} NOT NULL, text TEXT NOT NULL,
        words tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)""",
    "CREATE INDEX case_texts_words ON case_texts USING GIN (words)",
    "CREATE INDEX case_texts_by_case ON case_texts (case_id)",
    """CREATE FUNCTION empower_case_text() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$ BEGIN
        IF current_setting('empower.bulk', true) = 'on' THEN RETURN NULL; END IF;  -- derived per chunk
        INSERT INTO case_texts (case_id, kind, source, actor, at, text)
        SELECT NEW.id, 'justification', CASE WHEN NEW.imported = 1 THEN 'imported' ELSE 'opened' END,
               NEW.agent, NEW.opened_at, NEW.justification;
        RETURN NULL; END $$""",
    """CREATE TRIGGER cases_case_texts AFTER INSERT ON cases FOR EACH ROW
        WHEN (NEW.justification <> '') EXECUTE FUNCTION empower_case_text()""",
    f"""CREATE FUNCTION empower_step_text() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$ BEGIN
        INSERT INTO case_texts (case_id, kind, source, actor, at, text) {_STEP_TEXT_PG};
        RETURN NULL; END $$""",
    """CREATE TRIGGER events_case_texts AFTER INSERT ON events FOR EACH ROW
        WHEN (NEW.kind IN ('cosigned', 'approved', 'denied', 'objected')) EXECUTE FUNCTION empower_step_text()""",
    f"""CREATE TABLE precedent_keys (case_type {TEXT} NOT NULL, action {TEXT} NOT NULL, signature {TEXT} NOT NULL,
        fact {TEXT} NOT NULL, value DOUBLE PRECISION NOT NULL, case_id BIGINT NOT NULL, opened_at {TEXT} NOT NULL,
        status {TEXT} NOT NULL, expires_at {TEXT}, amount BIGINT NOT NULL, agent {TEXT} NOT NULL,
        PRIMARY KEY (case_type, action, signature, fact, value, case_id))""",
    "CREATE INDEX precedent_keys_by_case ON precedent_keys (case_id)",
    f"""CREATE FUNCTION empower_add_precedent_keys(c cases) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
      SET search_path FROM CURRENT AS $$
      DECLARE sig TEXT;
      BEGIN
        SELECT COALESCE(string_agg(h.hit, ',' ORDER BY h.hit COLLATE "C"), '') INTO sig FROM (
          SELECT (r ->> 'id') || '=' || (r ->> 'result') AS hit FROM jsonb_array_elements(c.rules::jsonb) r
          WHERE r ->> 'result' <> 'pass') h;
        IF position('=bent' IN sig) = 0 THEN
          INSERT INTO precedent_keys VALUES (c.case_type, c.action, sig, '', c.amount, c.id, c.opened_at, c.status,
                                             c.expires_at, c.amount, c.agent);
        ELSE
          INSERT INTO precedent_keys
          SELECT c.case_type, c.action, sig, k.fact, k.value, c.id, c.opened_at, c.status, c.expires_at, c.amount,
                 c.agent
          FROM (SELECT f.key AS fact, {_FACT_VALUE_PG} AS value FROM jsonb_each(c.facts::jsonb) f) k
          WHERE k.value IS NOT NULL;
        END IF;
      END $$""",
    """CREATE FUNCTION empower_precedent_keys() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$ BEGIN
        IF current_setting('empower.bulk', true) = 'on' THEN RETURN NULL; END IF;  -- derived per chunk
        PERFORM empower_add_precedent_keys(NEW); RETURN NULL; END $$""",
    # A bulk write (an import's chunk, `db copy`) turns the two per-row triggers above off for
    # its own transaction and derives the rows of the cases it added here, in two statements:
    # row by row, PL/pgSQL triggers made a COPY of cases about twice as slow.
    f"""CREATE FUNCTION empower_derive_after(last BIGINT) RETURNS void LANGUAGE sql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$
      INSERT INTO case_texts (case_id, kind, source, actor, at, text)
        SELECT id, 'justification', CASE WHEN imported = 1 THEN 'imported' ELSE 'opened' END, agent, opened_at,
               justification FROM cases c WHERE id > last AND justification <> ''
          AND NOT EXISTS (SELECT 1 FROM case_texts t WHERE t.case_id = c.id AND t.kind = 'justification')
        ORDER BY id;
      INSERT INTO precedent_keys
        WITH y AS MATERIALIZED (
          SELECT c.id, c.case_type, c.action, c.amount, c.opened_at, c.status, c.expires_at, c.agent, c.facts,
            (SELECT COALESCE(string_agg(h.hit, ',' ORDER BY h.hit COLLATE "C"), '') FROM (
              SELECT (r ->> 'id') || '=' || (r ->> 'result') AS hit FROM jsonb_array_elements(c.rules::jsonb) r
              WHERE r ->> 'result' <> 'pass') h) AS sig
          FROM cases c WHERE c.id > last AND NOT EXISTS (SELECT 1 FROM precedent_keys k WHERE k.case_id = c.id))
        SELECT case_type, action, sig, '', amount, id, opened_at, status, expires_at, amount, agent
          FROM y WHERE position('=bent' IN sig) = 0
        UNION ALL
        SELECT k.case_type, k.action, k.sig, k.fact, k.value, k.id, k.opened_at, k.status, k.expires_at, k.amount,
               k.agent
          FROM (SELECT c.case_type, c.action, c.sig, f.key AS fact, {_FACT_VALUE_PG} AS value, c.id, c.opened_at,
                       c.status, c.expires_at, c.amount, c.agent
                FROM y c, jsonb_each(c.facts::jsonb) f WHERE position('=bent' IN c.sig) > 0) k
          WHERE k.value IS NOT NULL;
    $$""",
    # Only the triggers (as the owner) add a case's key rows; empower_derive_after is left to
    # everyone: it derives only what is missing, so calling it changes nothing else.
    "REVOKE EXECUTE ON FUNCTION empower_add_precedent_keys(cases) FROM PUBLIC",
    # A database made at version 6: what it holds gets its rows as SQLite's migration gives them.
    """INSERT INTO case_texts (case_id, kind, source, actor, at, text)
        SELECT id, 'justification', CASE WHEN imported = 1 THEN 'imported' ELSE 'opened' END, agent, opened_at,
               justification FROM cases WHERE justification <> '' ORDER BY id""",
    """INSERT INTO case_texts (case_id, kind, source, actor, at, text)
        SELECT * FROM (SELECT case_id, CASE kind WHEN 'objected' THEN 'objection' ELSE 'note' END, kind, actor, at,
               CASE kind WHEN 'objected' THEN payload::jsonb ->> 'reason' ELSE payload::jsonb ->> 'note' END AS text
               FROM events WHERE kind IN ('cosigned', 'approved', 'denied', 'objected') ORDER BY seq) t
        WHERE t.text IS NOT NULL AND t.text <> ''""",
    "SELECT empower_add_precedent_keys(c) FROM cases c ORDER BY c.id",
    "CREATE TRIGGER cases_precedent_keys AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION empower_precedent_keys()",
    """CREATE FUNCTION empower_precedent_status() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$ BEGIN
        UPDATE precedent_keys SET status = NEW.status WHERE case_id = NEW.id; RETURN NULL; END $$""",
    """CREATE TRIGGER cases_precedent_status AFTER UPDATE OF status ON cases FOR EACH ROW
        WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION empower_precedent_status()""",
)
MIGRATIONS: dict[int, Sequence[str]] = {6: SCHEMA_6, 7: SCHEMA_7}  # the version each block brings a database to
assert max(MIGRATIONS) == SCHEMA_VERSION, "a SQLite migration needs its PostgreSQL counterpart"
AGENTS_ROLE = "empower_agents"


def grants_sql(role: str = AGENTS_ROLE) -> list[str]:
    """What an agents' role may do: every command, but never UPDATE, DELETE or TRUNCATE the
    events (nor own a table, so never disable a trigger). docs/postgres.md explains each."""
    return [
        f'GRANT SELECT, INSERT ON events, policies TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE ON cases, customers TO "{role}"',
        f'GRANT SELECT, UPDATE (id) ON empower_meta TO "{role}"',  # the write lock: FOR UPDATE needs UPDATE
        f'GRANT SELECT ON case_texts, precedent_keys TO "{role}"',  # kept by the owner's triggers
    ]


class PostgresStore(Store):
    """The store on a PostgreSQL database (`postgresql://user@host:port/dbname`)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.path = None
        self.url = url
        self.location = display(url)
        self._pg = connect(url)
        self.conn = self._pg  # it speaks the sqlite3 calls the store makes
        try:
            self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _share_with_group(self) -> None:
        pass

    @property
    def pg(self) -> PgConnection:
        return self._pg

    def login(self) -> str | None:
        return str(self.pg.execute("SELECT session_user").fetchone()[0])

    def iterate(self, sql: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        yield from self.pg.stream(sql, params)

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Store]:
        """One transaction that holds the write lock from its first statement (as BEGIN
        IMMEDIATE does): the check and the write see the same state."""
        self.conn.execute("BEGIN")
        try:
            self.conn.execute("SELECT id FROM empower_meta WHERE id = 1 FOR UPDATE")
            yield self
        except BaseException:
            self._rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except EmpowerError:
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except EmpowerError:
            pass

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.location}: the database has schema version {version}, newer than this "
                f"empower understands ({SCHEMA_VERSION}); upgrade empower to use it"
            )
        if version == SCHEMA_VERSION:
            return
        self.conn.execute("BEGIN")
        try:
            # Two first uses at once: one creates the schema, the other waits, then finds it.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('empower schema'))")
            version = self.schema_version()
            if version == 0:
                self.conn.execute("CREATE TABLE empower_meta (id INTEGER PRIMARY KEY CHECK (id = 1),"
                                  " schema_version INTEGER NOT NULL)")  # fmt: skip
                self.conn.execute("INSERT INTO empower_meta VALUES (1, 0)")
            for number, statements in sorted(MIGRATIONS.items()):
                if number > version:
                    for statement in statements:
                        self.conn.execute(statement)
                    self.conn.execute("UPDATE empower_meta SET schema_version = ?", (number,))
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def schema_version(self) -> int:
        if not _has_schema(self.pg):
            return 0
        return int(self.conn.execute("SELECT schema_version FROM empower_meta").fetchone()[0])

    def grant_to_agents(self, role: str = AGENTS_ROLE) -> str | None:
        """Grant the agents' role what every command needs (creating it when this login may);
        returns the role. Run by the tables' owner (`empower init`): granting is idempotent.
        Raises StoreError, saying what an administrator must run, when the role is missing and
        this login may not create it."""
        exists = self.conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)).fetchone()
        if exists is None:
            try:
                self.conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
            except StoreError:
                raise StoreError(f'role {role} does not exist and {self.login()} may not create it; a database '
                                 f'administrator runs: CREATE ROLE "{role}" NOLOGIN; then `empower init` again '
                                 "grants it what agents need") from None  # fmt: skip
        for statement in grants_sql(role):
            self.conn.execute(statement)
        return role

    # -- SQL fragments ----------------------------------------------------------------

    def sql_json_elements(self, column: str) -> str:
        return f"jsonb_array_elements({column}::jsonb)"

    def sql_json_field(self, column: str, key_param: str) -> str:
        return f"({column}::jsonb ->> {key_param})"

    def fact_key(self, name: str) -> str:
        return name

    def sql_days_between(self, later_date: str, earlier_date: str) -> str:
        return f"CAST(CAST({later_date} AS DATE) - CAST({earlier_date} AS DATE) AS DOUBLE PRECISION)"

    def sql_unindexed(self, column: str) -> str:
        return column

    def sql_now(self, *, days_ago: int = 0) -> str:
        shift = f" - INTERVAL '{int(days_ago)} days'" if days_ago else ""
        return f"""to_char((now() AT TIME ZONE 'UTC'){shift}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

    def sql_json_text(self, column: str, name: str) -> str:
        return f"({column}::jsonb ->> '{name.replace(chr(39), chr(39) * 2)}')"

    def sql_zero_pad(self, expr: str, width: int) -> str:
        return f"lpad(CAST({expr} AS TEXT), {int(width)}, '0')"

    def view_marks(self, names: Sequence[str]) -> dict[str, str]:
        sql = ("SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c"
               " WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(?)")
        return {name: mark or "" for name, mark in self.conn.execute(sql, (list(names),)).fetchall()}

    def write_view(self, name: str, select: str, *, mark: str) -> None:
        """The view, its policy mark as its comment, and SELECT for the agents' role."""
        self.conn.execute(f"DROP VIEW IF EXISTS {name}")
        self.conn.execute(f"CREATE VIEW {name} AS {select}")
        self.conn.execute(f"COMMENT ON VIEW {name} IS '{mark}'")
        if self.conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (AGENTS_ROLE,)).fetchone():
            self.conn.execute(f'GRANT SELECT ON {name} TO "{AGENTS_ROLE}"')

    def may_write_views(self) -> bool:
        """Only the tables' owner may replace the views (an agent's login leaves them be)."""
        sql = ("SELECT pg_has_role(current_user, tableowner, 'MEMBER') FROM pg_tables"
               " WHERE schemaname = current_schema() AND tablename = 'cases'")
        row = self.conn.execute(sql).fetchone()
        return bool(row and row[0])

    def scratch_table(self, name: str, select: str, params: Any) -> None:
        self.drop_scratch(name)
        self.conn.execute(f"CREATE TEMP TABLE {name} AS {select}", params)

    def drop_scratch(self, name: str) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS pg_temp.{name}")

    def match_case_texts(self, terms: Sequence[str], *, limit: int | None, now: str) -> list[tuple[Any, ...]]:
        """PostgreSQL's full text: every term (each a phrase, nothing typed is query syntax),
        ranked by ts_rank (negated: lower is better, as bm25), then the newest text."""
        from empower_cli.store.search import MARK_END, MARK_START, SNIPPET_TOKENS
        from empower_cli.store.sqlite import STATUS_SQL

        # A term's punctuation separates its words, as FTS5's tokenizer does: `double-checked`
        # is the phrase "double checked" (PostgreSQL's parser would keep the hyphenated word).
        names = {f"t{k}": re.sub(r"[\W_]+", " ", term) for k, term in enumerate(terms)}
        query = " && ".join(f"phraseto_tsquery('english', :{key})" for key in names) or "''::tsquery"
        tail = "LIMIT :limit" if limit else ""
        options = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_TOKENS - 1}"
        sql = f"""
            WITH q AS (SELECT {query} AS q),
            best AS (SELECT t.id, -ts_rank(t.words, q.q) AS rank FROM case_texts t, q WHERE t.words @@ q.q
                     ORDER BY 2, 1 DESC {tail})
            SELECT t.case_id, t.kind, t.source, t.actor, t.at, ts_headline('english', t.text, q.q, :options),
                   best.rank, {STATUS_SQL}, c.customer_id, c.case_type, c.opened_at
            FROM best JOIN case_texts t ON t.id = best.id JOIN cases c ON c.id = t.case_id, q
            ORDER BY best.rank, best.id DESC
        """
        params = {**names, "options": options, "now": now, "limit": limit}
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    # -- the import: COPY, indexes kept -----------------------------------------------

    def write_chunk(self, cases: Iterable[Sequence[Any]], events: Iterable[Sequence[Any]],
                    customers: Iterable[Sequence[Any]]) -> None:  # fmt: skip
        from empower_cli.store.bulk import CASE_COLUMNS, EVENT_COLUMNS

        assert self.conn.in_transaction, "write_chunk outside a write transaction"
        self._copy_cases(CASE_COLUMNS, cases)
        self._upsert_customers(customers)
        self._copy("events", EVENT_COLUMNS, events)

    def _copy_cases(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY new cases with the per-row triggers of the derived tables off for this
        transaction, then derive their search and precedent rows in two statements."""
        last = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM cases").fetchone()[0])
        self.conn.execute("SET LOCAL empower.bulk = 'on'")
        self._copy("cases", columns, rows)
        self.conn.execute("SET LOCAL empower.bulk = 'off'")
        self.conn.execute("SELECT empower_derive_after(?)", (last,))

    def _upsert_customers(self, customers: Iterable[Sequence[Any]]) -> None:
        """The chunk's (customer, segment, first seen) rows as one statement: merged here as the
        row-by-row upsert would leave them (the earliest time, the last segment given), since
        one INSERT … ON CONFLICT may not touch a row twice."""
        from empower_cli.store.bulk import _UPSERT_CUSTOMERS

        merged: dict[str, tuple[str | None, str]] = {}
        for customer, segment, first_seen in customers:
            if customer in merged:
                known_segment, known_first = merged[customer]
                merged[customer] = (segment or known_segment, min(first_seen, known_first))
            else:
                merged[customer] = (segment, first_seen)
        if not merged:
            return
        ids = list(merged)
        upsert = _UPSERT_CUSTOMERS.replace(
            "VALUES (?, ?, ?)", "SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]))"
        )
        self.conn.execute(upsert, (ids, [merged[c][0] for c in ids], [merged[c][1] for c in ids]))

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """COPY in PostgreSQL's binary format: the server parses no text (on a small machine it
        shares the cores with the import's own workers)."""
        types = self._column_types(table, columns)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self.pg._errors(), self.pg.raw.cursor() as cur, cur.copy(sql.encode()) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _column_types(self, table: str, columns: Sequence[str]) -> list[str]:
        cache: dict[str, str] = self.__dict__.setdefault("_types", {})
        if table not in cache:
            sql = ("SELECT column_name, data_type FROM information_schema.columns"
                   " WHERE table_schema = current_schema() AND table_name = ?")  # fmt: skip
            cache.update({f"{table}.{c}": t for c, t in self.conn.execute(sql, (table,)).fetchall()})
            cache[table] = table
        return [cache[f"{table}.{c}"] for c in columns]

    def known_external(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        return _known_external(self.pg, external_ids)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        assert table in self.COPIED_TABLES
        assert self.conn.in_transaction
        if table == "cases":
            self._copy_cases(columns, rows)
        else:
            self._copy(table, columns, rows)

    def indexes_deferred(self) -> list[str]:
        return []

    def defer_indexes(self) -> None:
        pass

    def rebuild_indexes(self) -> int:
        return 0

    def tune_for_bulk(self, *, deferred: bool) -> None:
        pass


class PgReadOnlyView(ReadOnlyView):
    """`bulk.ReadOnlyView` on PostgreSQL: a read-only session (a dry run writes nothing), empty
    when the database has no schema yet."""

    def __init__(self, url: str) -> None:
        conn = connect(url, read_only=True)
        self._login = str(conn.execute("SELECT session_user").fetchone()[0])
        self._pg: PgConnection | None = conn if _has_schema(conn) else None
        self._conn = self._pg
        if self._pg is None:
            conn.close()

    def login(self) -> str | None:
        return self._login

    def known_external(self, external_ids: Sequence[str]) -> dict[str, str | None]:
        return {} if self._pg is None else _known_external(self._pg, external_ids)
