"""Batch import of historical cases (SPEC §7): validate each record read by import_read
through the live path (validate_proposal + evaluate), record good rows in chunks with
their hash-chained events, and give every bad row a reason and its line number.

Memory stays flat: one chunk of rows at a time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from empower_cli.config import Identity
from empower_cli.errors import InvalidInput, NotFound
from empower_cli.import_read import CsvReader, Format, JsonlReader
from empower_cli.import_rows import Prepared
from empower_cli.models import Policy
from empower_cli.render import neutralise
from empower_cli.store import Store
from empower_cli.timeutil import iso

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
    note: str | None = None  # for stderr: something the user should do, though nothing was lost

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read, "imported": self.imported, "skipped": self.skipped,
            "rejected": self.rejected, "elapsed": round(self.elapsed, 3),
            "rows_per_second": round(self.rows_per_second, 1), "file": self.file,
            "format": self.format, "dry_run": self.dry_run, "rejects_file": self.rejects_file,
        }  # fmt: skip


# -- validating ---------------------------------------------------------------------
# -- writing ------------------------------------------------------------------------


class RejectsFile:
    """line, external_id, reason, record: one row per rejected record, in line order per chunk.
    Cells that a spreadsheet would run as a formula are prefixed with ' (as audit CSV is)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def open(self) -> None:
        """Called once the header is read: a file refused at once leaves no rejects file."""
        if self.path is None:
            return
        try:
            self.handle = self.path.open("w", encoding="utf-8", newline="")
        except OSError as e:
            raise InvalidInput("--rejects", f"cannot write {self.path} ({e.strerror})") from None
        self.writer = csv.writer(self.handle)
        self.writer.writerow(["line", "external_id", "reason", "record"])

    def write(self, rows: list[tuple[int, str, str, str]]) -> None:
        if self.writer is None or not rows:
            return
        rows.sort(key=lambda r: r[0])
        self.writer.writerows(
            (line, neutralise(ext), neutralise(reason), neutralise(raw.rstrip("\r\n")))
            for line, ext, reason, raw in rows
        )
        assert self.handle is not None
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


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
        from empower_cli.import_pool import checked
        from empower_cli.store_import import SeenIds

        started = time.perf_counter()
        self.summary.file, self.summary.format, self.summary.dry_run = str(path), fmt, self.store is None
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
        except OSError as e:
            raise InvalidInput(str(path), f"cannot read the file ({e.strerror})") from None
        self.seen = SeenIds() if self.store is None else None
        self._prefix()
        deferring = False
        if self.store is not None:
            from empower_cli.store_import import tune_for_bulk

            deferring = self._defer_indexes(path)
            tune_for_bulk(self.store, deferred=deferring)
        with stream:
            reader: CsvReader | JsonlReader = (CsvReader if fmt == "csv" else JsonlReader)(stream, str(path))
            self.rejects.open()
            chunk: list[Prepared] = []
            bad: list[tuple[int, str, str, str]] = []
            layout = reader.layout if isinstance(reader, CsvReader) else None
            outcomes = checked(reader, policy=self.policy, now=self.now, workers=self.workers, layout=layout)
            try:
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
            finally:
                outcomes.close()  # stops the workers at once, also when a chunk failed
                if self.seen is not None:
                    self.seen.close()
        if deferring:
            # Not in a `finally`: after a failure or Ctrl-C they are built by the next
            # import or `empower init` (the indexes only speed up reports and look-ups).
            self._rebuild_indexes()
        self.summary.elapsed = time.perf_counter() - started
        self.summary.rows_per_second = self.summary.read / self.summary.elapsed if self.summary.elapsed else 0.0
        return self.summary

    def _defer_indexes(self, path: Path) -> bool:
        from empower_cli.import_read import estimate_records
        from empower_cli.store_import import defer_indexes, deferred_indexes, next_case_id

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
        from empower_cli.errors import DatabaseBusy, StoreError
        from empower_cli.store_import import rebuild_indexes

        assert self.store is not None
        if self.on_phase is not None:
            self.on_phase("building report indexes")
        try:
            rebuild_indexes(self.store)
        except (StoreError, DatabaseBusy) as e:
            # Every row is committed: a failure here (a full disk, say) loses nothing.
            why = "the database stayed busy" if isinstance(e, DatabaseBusy) else str(e)
            self.summary.note = f"the report indexes were not built ({why}); run `empower init` to build them"

    def _prefix(self) -> None:
        ident = self.identity
        self.event_head = (
            '{"actor":' + json.dumps(ident.agent, ensure_ascii=False) + ',"at":' + json.dumps(iso(self.now))
            + ',"case_id":'
        )  # fmt: skip
        self.event_mid = ',"kind":"imported","os_user":' + json.dumps(ident.os_user, ensure_ascii=False) + ',"payload":'

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
            ext = p.external_id
            if ext in known:
                digest = known[ext]
            elif ext in in_chunk:
                digest = in_chunk[ext]
            else:
                in_chunk[ext] = p.content_hash
                fresh.append(p)
                continue
            if digest == p.content_hash:
                self.summary.skipped += 1
            else:
                why = "a live case" if digest is None else "a different content"
                bad.append((p.line, ext, f"conflict: external_id {ext!r} is already recorded with {why}; "
                            "not overwritten", p.raw))  # fmt: skip
        return fresh

    def _flush_dry(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store_import import known_external

        ids = [p.external_id for p in chunk]
        assert self.seen is not None
        known = self.seen.lookup(ids)
        if self.dry_conn is not None:
            known.update(known_external(self.dry_conn, ids))
        fresh = self._classify(chunk, known, bad)
        self.seen.add((p.external_id, p.content_hash) for p in fresh)
        self.summary.imported += len(fresh)

    def _flush_write(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store_import import known_external, next_case_id, write_chunk

        store = self.store
        assert store is not None
        sha256 = hashlib.sha256
        with store.write():
            known = known_external(store.conn, [p.external_id for p in chunk])
            conflicts: list[tuple[int, str, str, str]] = []
            fresh = self._classify(chunk, known, conflicts)
            head = store.head()
            seq, prev = head.seq, head.hash
            case_id = next_case_id(store.conn)
            cases, events = [], []
            at = iso(self.now)
            actor, os_user = self.identity.agent, self.identity.os_user
            for p in fresh:
                seq += 1
                payload = p.payload
                body = f'{self.event_head}{case_id}{self.event_mid}{payload},"seq":{seq}}}'
                digest = sha256((prev + body).encode("utf-8")).hexdigest()
                cases.append((case_id, p.external_id, *p.case, p.content_hash, actor))
                events.append((seq, at, case_id, "imported", actor, os_user, payload, prev, digest))
                prev = digest
                case_id += 1
            write_chunk(store, cases, events, (p.customer for p in fresh))
        # Counted only once the chunk is committed.
        self.summary.imported += len(fresh)
        bad.extend(conflicts)
