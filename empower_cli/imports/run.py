"""Batch import of historical cases (SPEC §7): validate each record read by imports.read
through the live path (validate_proposal + evaluate), record good rows in chunks with
their hash-chained events, and give every bad row a reason and its line number.

Memory stays flat: one chunk of rows at a time.
"""

from __future__ import annotations

import datetime as dt
import gc
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias, cast

from empower_cli.core.errors import ImportInterrupted, InvalidInput, NotFound
from empower_cli.core.models import Policy
from empower_cli.core.timeutil import iso
from empower_cli.imports.read import CsvReader, Format, JsonlReader
from empower_cli.imports.rejects import RejectsFile
from empower_cli.imports.rows import CONTENT_HASH_AT, EXTERNAL_ID_AT, Prepared
from empower_cli.store import bulk  # as a module: its functions are looked up when called (tests patch them)
from empower_cli.store.backend import Location, ReadOnly, open_view
from empower_cli.store.chain import EventFrame, Head
from empower_cli.store.sqlite import Store

if TYPE_CHECKING:
    from empower_cli.imports.pool import Outcome
    from empower_cli.services.identity import Identity  # a use case's value, passed in

CHUNK_ROWS = 10_000
# An import expected to add at least this many rows, and at least as many as the database
# holds, drops the report indexes keyed in random order and builds them once at its end.
DEFER_INDEXES_MIN_ROWS = 50_000
Reject = tuple[int, str, str, str]  # line, external_id, reason, raw record


@dataclass(frozen=True)
class WriteInto:
    """An import that records its rows in `store` (opened and closed by its caller)."""

    store: Store


@dataclass(frozen=True)
class DryRun:
    """An import that records nothing: its rows are checked against the database at
    `database`, read-only (and, when there is none yet, against nothing)."""

    database: Location


Target: TypeAlias = WriteInto | DryRun


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



# Container allocations (net) between two young-generation collections during an import.
GC_THRESHOLD = 50_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect garbage less often during the import (its worker processes, forked inside,
    inherit the setting). Thousands of rows are alive at a time, and the collector's default
    (every 700 net allocations, its older generations over every object alive) cost ~6% of
    the importing process's CPU (measured on 200,000 rows). Rows hold no reference cycles; any
    cycle is still collected, after 50,000 net allocations instead of 700."""
    previous = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


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


class Importer:
    """One run of `empower import cases FILE`: read, validate, write chunk by chunk (a dry
    run counts instead). Use it in a `with` block: it owns the rejects file and, for a dry
    run, the read-only database and the ids met so far, and closes them at the block's end."""

    def __init__(self, path: Path, fmt: Format, *, policy: Policy, identity: Identity, now: dt.datetime,
                 target: Target, rejects: Path | None = None, workers: int = 0, chunk_rows: int = CHUNK_ROWS,
                 on_progress: Callable[[int], None] | None = None,
                 on_phase: Callable[[str], None] | None = None) -> None:  # fmt: skip
        """`rejects`: where the report of rejected rows goes (None: none); `workers`:
        validating processes besides this one (imports.pool.default_workers); `on_progress`
        is told the bytes read after each chunk, `on_phase` when the import moves past reading."""
        self.path, self.fmt, self.target = path, fmt, target
        self.policy, self.identity, self.now = policy, identity, now
        self.workers, self.chunk_rows = workers, chunk_rows
        self.on_progress, self.on_phase = on_progress, on_phase
        self.summary = Summary(file=str(path), format=fmt, dry_run=isinstance(target, DryRun))
        self.rejects = RejectsFile(rejects)
        self.frame = EventFrame(actor=identity.agent, at=iso(now), kind="imported", os_user=identity.os_user)
        self._open: ExitStack | None = None  # what __enter__ opened, for __exit__ to close
        self._view: ReadOnly | None = None  # a dry run's: the database as it stands
        self._seen: bulk.SeenIds | None = None  # a dry run's: the ids met earlier in the file

    def __enter__(self) -> Importer:
        with ExitStack() as opened:  # closes what was opened if a later step fails
            opened.callback(self.rejects.close)
            if isinstance(self.target, DryRun):
                self._view = open_view(self.target.database)
                opened.callback(self._view.close)
                self._seen = bulk.SeenIds()
                opened.callback(self._seen.close)
            self._open = opened.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def run(self) -> Summary:
        """Import the file. Ctrl-C raises ImportInterrupted with the rows committed so far; any
        failure leaves no rejects file (a re-run rejects the same rows again)."""
        if self._open is None:
            raise RuntimeError("Importer.run() outside its `with` block")
        started = time.perf_counter()
        try:
            with _open_input(self.path) as stream, _fewer_collections():
                self._import(stream)
            with _uninterrupted():  # once in place, the report must be the one named in the summary
                placed = self.rejects.finish()
                self.summary.rejects_file = None if placed is None else str(placed)
        except KeyboardInterrupt:
            raise ImportInterrupted(self.summary.imported, dry_run=self.summary.dry_run) from None
        finally:
            self.rejects.discard()  # nothing left to remove once finished
        self.summary.elapsed = time.perf_counter() - started
        self.summary.rows_per_second = self.summary.read / self.summary.elapsed if self.summary.elapsed else 0.0
        return self.summary

    def _import(self, stream: IO[bytes]) -> None:
        from empower_cli.imports.pool import checked

        # The header is checked and the rejects file created before anything is written.
        reader: CsvReader | JsonlReader = (CsvReader if self.fmt == "csv" else JsonlReader)(stream, str(self.path))
        self.rejects.open()
        deferring = self._prepare_store()
        layout = reader.layout if isinstance(reader, CsvReader) else None
        outcomes = checked(reader, policy=self.policy, now=self.now, workers=self.workers, layout=layout)
        try:
            self._consume(outcomes, reader)
        finally:
            outcomes.close()  # stops the workers at once, also when a chunk failed
        if deferring:
            # Not in a `finally`: after a failure or Ctrl-C they are built by the next
            # import or `empower init` (the indexes only speed up reports and look-ups).
            self._rebuild_indexes()

    def _prepare_store(self) -> bool:
        """Tune the database for a bulk write; True when the report indexes are deferred."""
        if not isinstance(self.target, WriteInto):
            return False
        store = self.target.store
        deferring = self._defer_indexes(store)
        store.tune_for_bulk(deferred=deferring)
        return deferring

    def _consume(self, outcomes: Generator[list[Outcome], None, None], reader: CsvReader | JsonlReader) -> None:
        """Flush a chunk every `chunk_rows` outcomes (good and bad together, as they come)."""
        pending: list[Outcome] = []
        for batch in outcomes:
            self.summary.read += len(batch)
            pending += batch
            while len(pending) >= self.chunk_rows:
                self._flush_outcomes(pending[: self.chunk_rows], reader.bytes_read)
                del pending[: self.chunk_rows]
        self._flush_outcomes(pending, reader.bytes_read)

    def _flush_outcomes(self, outcomes: list[Outcome], done_bytes: int) -> None:
        # A Prepared row is a tuple subclass; a reject a plain tuple.
        chunk = cast("list[Prepared]", [o for o in outcomes if type(o) is Prepared])
        bad = cast("list[Reject]", [o for o in outcomes if type(o) is not Prepared])
        self._flush(chunk, bad, done_bytes)

    def _defer_indexes(self, store: Store) -> bool:
        from empower_cli.imports.read import estimate_records

        if store.indexes_deferred():
            return True  # an interrupted import's: they are built at this one's end
        expected = estimate_records(self.path)
        existing = store.next_case_id() - 1
        if expected < max(DEFER_INDEXES_MIN_ROWS, existing):
            return False
        store.defer_indexes()
        return True

    def _rebuild_indexes(self) -> None:
        from empower_cli.core.errors import DatabaseBusy, StoreError

        assert isinstance(self.target, WriteInto)
        if self.on_phase is not None:
            self.on_phase("building report indexes")
        try:
            self.target.store.rebuild_indexes()
        except (StoreError, DatabaseBusy) as e:
            # Every row is committed: a failure here (a full disk, say) loses nothing.
            why = "the database stayed busy" if isinstance(e, DatabaseBusy) else str(e)
            self.summary.notes.append(f"the report indexes were not built ({why}); run `empower init` to build them")

    def _flush(self, chunk: list[Prepared], bad: list[Reject], done_bytes: int) -> None:
        if isinstance(self.target, DryRun):
            self._flush_dry(chunk, bad)
        elif chunk:
            self._flush_write(self.target.store, chunk, bad)
        self.summary.rejected += len(bad)
        self.rejects.write(bad)
        if self.on_progress is not None:
            self.on_progress(done_bytes)

    def _classify(self, chunk: list[Prepared], known: dict[str, str | None], bad: list[Reject]) -> list[Prepared]:
        """Drop rows already recorded (skipped) and conflicting ones (rejected)."""
        fresh: list[Prepared] = []
        in_chunk: dict[str, str] = {}
        for p in chunk:
            case = p.case
            ext, content_hash = case[EXTERNAL_ID_AT], case[CONTENT_HASH_AT]
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

    def _flush_dry(self, chunk: list[Prepared], bad: list[Reject]) -> None:
        assert self._seen is not None, "opened by __enter__"
        assert self._view is not None, "opened by __enter__"
        ids = [p.external_id for p in chunk]
        known = self._seen.lookup(ids)
        known.update(self._view.known_external(ids))
        fresh = self._classify(chunk, known, bad)
        self._seen.add((p.external_id, p.content_hash) for p in fresh)
        self.summary.imported += len(fresh)

    def _flush_write(self, store: Store, chunk: list[Prepared], bad: list[Reject]) -> None:
        with ExitStack() as held:
            with store.write():
                known = store.known_external([p.external_id for p in chunk])
                conflicts: list[Reject] = []
                fresh = self._classify(chunk, known, conflicts)
                cases, events = self._chained(fresh, store.head(), store.next_case_id())
                # From here to the count Ctrl-C waits: the message after it must be exact.
                held.enter_context(_uninterrupted())
                store.write_chunk(cases, events, (p.customer for p in fresh))
            self.summary.imported += len(fresh)  # counted only once the chunk is committed
        bad.extend(conflicts)

    def _chained(self, fresh: list[Prepared], head: Head,
                 case_id: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:  # fmt: skip
        """The case rows and their `imported` events, each hash-chained to the one before."""
        payloads = [p.payload for p in fresh]
        digests = self.frame.chain(head.hash, head.seq + 1, case_id, payloads)
        at = iso(self.now)
        actor, os_user = self.identity.agent, self.identity.os_user
        ids = range(case_id, case_id + len(fresh))
        # bulk.CASE_COLUMNS: the id, the validated columns, the importer
        cases = [(i, *p.case, actor) for i, p in zip(ids, fresh, strict=True)]
        events = [
            (seq, at, i, "imported", actor, os_user, payload, prev, digest)
            for seq, i, payload, prev, digest in zip(
                range(head.seq + 1, head.seq + 1 + len(fresh)), ids, payloads, [head.hash, *digests], digests,
                strict=False,  # the previous hashes: one more than the events (the last is no one's)
            )
        ]
        return cases, events


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except OSError as e:
        raise InvalidInput(str(path), f"cannot read the file ({e.strerror})") from None
