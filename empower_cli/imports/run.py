"""Batch import of historical cases (SPEC §7): validate each record read by import_read
through the live path (validate_proposal + evaluate), record good rows in chunks with
their hash-chained events, and give every bad row a reason and its line number.

Memory stays flat: one chunk of rows at a time.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from empower_cli.core.errors import ImportInterrupted, InvalidInput, NotFound
from empower_cli.core.models import Policy
from empower_cli.core.timeutil import iso
from empower_cli.imports.read import CsvReader, Format, JsonlReader
from empower_cli.imports.rejects import RejectsFile
from empower_cli.imports.rows import Prepared
from empower_cli.services.identity import Identity
from empower_cli.store.chain import EventFrame, Head
from empower_cli.store.sqlite import Store

CHUNK_ROWS = 10_000
# An import expected to add at least this many rows, and at least as many as the database
# holds, drops the report indexes keyed in random order and builds them once at its end.
DEFER_INDEXES_MIN_ROWS = 50_000


@dataclass
class Summary:
    read: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    elapsed: float = 0.0
    rows_per_second: float = 0.0
    file: str = ""
    format: str = ""
    dry_run: bool = False
    rejects_file: str | None = None
    notes: list[str] = field(default_factory=list)  # for stderr: to do, though nothing was lost

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read, "imported": self.imported, "skipped": self.skipped,
            "rejected": self.rejected, "elapsed": round(self.elapsed, 3),
            "rows_per_second": round(self.rows_per_second, 1), "file": self.file,
            "format": self.format, "dry_run": self.dry_run, "rejects_file": self.rejects_file,
        }  # fmt: skip


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so that a chunk committed is a chunk counted (the
    interrupted message says how many rows were committed; it must be exact)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending and callable(previous):
        previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt


@dataclass
class Importer:
    """One run of `empower import cases`: read, validate, write chunk by chunk."""

    policy: Policy
    identity: Identity
    now: dt.datetime
    store: Store | None  # None for a dry run
    dry_conn: Any = None  # read-only connection for a dry run (None: no database yet)
    chunk_rows: int = CHUNK_ROWS
    summary: Summary = field(default_factory=Summary)
    rejects: RejectsFile = field(default_factory=lambda: RejectsFile(None))
    on_progress: Callable[[int], None] | None = None
    on_phase: Callable[[str], None] | None = None  # told when the import moves past reading
    workers: int = 0  # validating processes besides this one (import_pool.default_workers)

    def run(self, path: Path, fmt: Format) -> Summary:
        """Import PATH. Ctrl-C raises ImportInterrupted with the rows committed so far; any
        failure leaves no rejects file (a re-run rejects the same rows again)."""
        started = time.perf_counter()
        self.summary.file, self.summary.format, self.summary.dry_run = str(path), fmt, self.store is None
        try:
            with self._open(path) as stream:
                self._import(stream, path, fmt)
            with _uninterrupted():  # once in place, the report must be the one named in the summary
                placed = self.rejects.finish()
                self.summary.rejects_file = None if placed is None else str(placed)
        except KeyboardInterrupt:
            raise ImportInterrupted(self.summary.imported, dry_run=self.store is None) from None
        finally:
            self.rejects.discard()  # nothing left to remove once finished
        self.summary.elapsed = time.perf_counter() - started
        self.summary.rows_per_second = self.summary.read / self.summary.elapsed if self.summary.elapsed else 0.0
        return self.summary

    @staticmethod
    def _open(path: Path) -> IO[bytes]:
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
        except OSError as e:
            raise InvalidInput(str(path), f"cannot read the file ({e.strerror})") from None

    def _import(self, stream: IO[bytes], path: Path, fmt: Format) -> None:
        from empower_cli.imports.pool import checked
        from empower_cli.store.bulk import SeenIds

        # The header is checked and the rejects file created before anything is written.
        reader: CsvReader | JsonlReader = (CsvReader if fmt == "csv" else JsonlReader)(stream, str(path))
        self.rejects.open()
        self.frame = EventFrame(actor=self.identity.agent, at=iso(self.now), kind="imported",
                                os_user=self.identity.os_user)  # fmt: skip
        deferring = self._prepare_store(path)
        self.seen = SeenIds() if self.store is None else None
        layout = reader.layout if isinstance(reader, CsvReader) else None
        outcomes = checked(reader, policy=self.policy, now=self.now, workers=self.workers, layout=layout)
        try:
            self._consume(outcomes, reader)
        finally:
            outcomes.close()  # stops the workers at once, also when a chunk failed
            if self.seen is not None:
                self.seen.close()
        if deferring:
            # Not in a `finally`: after a failure or Ctrl-C they are built by the next
            # import or `empower init` (the indexes only speed up reports and look-ups).
            self._rebuild_indexes()

    def _prepare_store(self, path: Path) -> bool:
        """Tune the database for a bulk write; True when the report indexes are deferred."""
        if self.store is None:
            return False
        from empower_cli.store.bulk import tune_for_bulk

        deferring = self._defer_indexes(path)
        tune_for_bulk(self.store, deferred=deferring)
        return deferring

    def _consume(self, outcomes: Generator[Any, None, None], reader: CsvReader | JsonlReader) -> None:
        chunk: list[Prepared] = []
        bad: list[tuple[int, str, str, str]] = []
        for outcome in outcomes:
            self.summary.read += 1
            if isinstance(outcome, Prepared):
                chunk.append(outcome)
            else:
                bad.append(outcome)
            if len(chunk) + len(bad) >= self.chunk_rows:
                self._flush(chunk, bad, reader.bytes_read)
                chunk, bad = [], []
        self._flush(chunk, bad, reader.bytes_read)

    def _defer_indexes(self, path: Path) -> bool:
        from empower_cli.imports.read import estimate_records
        from empower_cli.store.bulk import defer_indexes, deferred_indexes, next_case_id

        store = self.store
        assert store is not None
        if deferred_indexes(store.conn):
            return True  # an interrupted import's: they are built at this one's end
        expected = estimate_records(path)
        existing = next_case_id(store.conn) - 1
        if expected < max(DEFER_INDEXES_MIN_ROWS, existing):
            return False
        defer_indexes(store)
        return True

    def _rebuild_indexes(self) -> None:
        from empower_cli.core.errors import DatabaseBusy, StoreError
        from empower_cli.store.bulk import rebuild_indexes

        assert self.store is not None
        if self.on_phase is not None:
            self.on_phase("building report indexes")
        try:
            rebuild_indexes(self.store)
        except (StoreError, DatabaseBusy) as e:
            # Every row is committed: a failure here (a full disk, say) loses nothing.
            why = "the database stayed busy" if isinstance(e, DatabaseBusy) else str(e)
            self.summary.notes.append(f"the report indexes were not built ({why}); run `empower init` to build them")

    def _flush(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]], done_bytes: int) -> None:
        if self.store is None:
            self._flush_dry(chunk, bad)
        elif chunk:
            self._flush_write(chunk, bad)
        self.summary.rejected += len(bad)
        self.rejects.write(bad)
        if self.on_progress is not None:
            self.on_progress(done_bytes)

    def _classify(self, chunk: list[Prepared], known: dict[str, str | None],
                  bad: list[tuple[int, str, str, str]]) -> list[Prepared]:  # fmt: skip
        """Drop rows already recorded (skipped) and conflicting ones (rejected)."""
        fresh: list[Prepared] = []
        in_chunk: dict[str, str] = {}
        for p in chunk:
            ext, content_hash = p.case.external_id, p.case.content_hash
            if ext in known:
                digest = known[ext]
            elif ext in in_chunk:
                digest = in_chunk[ext]
            else:
                in_chunk[ext] = content_hash
                fresh.append(p)
                continue
            if digest == content_hash:
                self.summary.skipped += 1
            else:
                why = "a live case" if digest is None else "a different content"
                bad.append((p.line, ext, f"conflict: external_id {ext!r} is already recorded with {why}; "
                            "not overwritten", p.raw))  # fmt: skip
        return fresh

    def _flush_dry(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store.bulk import known_external

        ids = [p.case.external_id for p in chunk]
        assert self.seen is not None
        known = self.seen.lookup(ids)
        if self.dry_conn is not None:
            known.update(known_external(self.dry_conn, ids))
        fresh = self._classify(chunk, known, bad)
        self.seen.add((p.case.external_id, p.case.content_hash) for p in fresh)
        self.summary.imported += len(fresh)

    def _flush_write(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store.bulk import known_external, next_case_id, write_chunk

        store = self.store
        assert store is not None
        with ExitStack() as held:
            with store.write():
                known = known_external(store.conn, [p.case.external_id for p in chunk])
                conflicts: list[tuple[int, str, str, str]] = []
                fresh = self._classify(chunk, known, conflicts)
                cases, events = self._chained(fresh, store.head(), next_case_id(store.conn))
                # From here to the count Ctrl-C waits: the message after it must be exact.
                held.enter_context(_uninterrupted())
                write_chunk(store, cases, events, (p.customer for p in fresh))
            self.summary.imported += len(fresh)  # counted only once the chunk is committed
        bad.extend(conflicts)

    def _chained(self, fresh: list[Prepared], head: Head,
                 case_id: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:  # fmt: skip
        """The case rows and their `imported` events, each hash-chained to the one before."""
        hash_event = self.frame.hash
        seq, prev = head.seq, head.hash
        cases, events = [], []
        at = iso(self.now)
        actor, os_user = self.identity.agent, self.identity.os_user
        for p in fresh:
            seq += 1
            payload = p.payload
            digest = hash_event(prev, seq, case_id, payload)
            cases.append((case_id, *p.case, actor))  # bulk.CASE_COLUMNS: the id, the validated columns, the importer
            events.append((seq, at, case_id, "imported", actor, os_user, payload, prev, digest))
            prev = digest
            case_id += 1
        return cases, events
