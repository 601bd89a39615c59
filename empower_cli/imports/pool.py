"""Validation of import records on the machine's other cores: worker processes run the
same RowValidator.prepare on batches of records; results come back in file order.

Only the parent reads the file and writes the database, so line numbers, chunking and
crash-safety are the same as with no workers. Workers never outlive their importer: on
Linux the kernel kills them when it dies (kill -9 included); elsewhere they notice within
a quarter of a second. Ctrl-C is the importer's to handle: workers ignore it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.reduction import ForkingPickler
from typing import Any, Union

from empower_cli.core.errors import EmpowerError
from empower_cli.core.models import Policy
from empower_cli.imports.read import Layout, Record, RowProblem
from empower_cli.imports.rows import Prepared, RowValidator, reject_reason

BATCH_ROWS = 1_000
Reject = tuple[int, str, str, str]  # line, external_id, reason, raw record
Outcome = Union[Prepared, Reject]  # noqa: UP007  (a runtime alias; `|` needs 3.10 types)
MIN_BYTES_FOR_WORKERS = 4 * 1024 * 1024  # below this, starting processes costs more than it saves
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
ORPHAN_CHECK_SECONDS = 0.25  # how often a worker checks that its importer is alive (without prctl)


def _as_tuple(row: tuple[Any, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """Pickle a row as `tuple.__new__(its class, its values)`: unpickling it then runs no
    Python code, where a NamedTuple's default calls the class's own __new__, row by row, in
    the importer's process (the one that also writes)."""
    return tuple.__new__, (type(row), tuple(row))


# The queues pickle with multiprocessing's ForkingPickler: this reducer applies to them alone.
ForkingPickler.register(Prepared, _as_tuple)


def default_workers(size: int) -> int:
    """Worker processes for a file of `size` bytes: one per core, none for small files."""
    if size < MIN_BYTES_FOR_WORKERS:
        return 0
    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def check_one(validator: RowValidator, rec: Record) -> Outcome:
    """One record: a Prepared row, or a reject with its reason."""
    rec.fill()
    if rec.problem is not None:
        return (rec.line, str(rec.fields.get("external_id", "")), rec.problem, rec.raw)
    try:
        return validator.prepare(rec)
    except (EmpowerError, RowProblem) as e:
        return (rec.line, str(rec.fields.get("external_id", "")), reject_reason(e), rec.raw)


def checked(records: Iterable[Record], *, policy: Policy, now: dt.datetime, workers: int,
            layout: Layout | None = None) -> Generator[list[Outcome], None, None]:  # fmt: skip
    """Every record's outcome, in file order, a batch (a list) at a time; on `workers`
    processes when > 0 (`layout`: the CSV reader's, given to the workers once rather than
    with every record). Batches, not rows: the importer's process, the one that also
    writes, then pays its per-row Python only where it cannot be avoided."""
    if workers <= 0:
        validator = RowValidator(policy, now=now)
        batch: list[Outcome] = []
        for rec in records:
            batch.append(check_one(validator, rec))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    yield from _Pool(policy, now, workers, layout).run(records)


# A CSV record's cells, or (JSON Lines, or a record with a problem) its fields, facts and
# problem: plain tuples pickle far faster than dataclass instances, and empty dicts and Nones
# sent for nothing still cost a pickle opcode each way and an object built on arrival.
Wire = Union[tuple[int, str, list[str]], tuple[int, str, dict[str, Any], dict[str, str], Union[str, None]]]  # noqa: UP007


def _batches(records: Iterable[Record]) -> Iterator[list[Wire]]:
    batch: list[Wire] = []
    append = batch.append
    for rec in records:
        cells = rec.cells
        append((rec.line, rec.raw, cells) if cells is not None and rec.problem is None else
               (rec.line, rec.raw, rec.fields, rec.facts, rec.problem))  # fmt: skip
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
            append = batch.append
    if batch:
        yield batch


def _work(tasks: Any, results: Any, policy: Policy, now: dt.datetime, layout: Layout | None, parent: int) -> None:
    if not _bind_to_parent(parent):
        return
    # Exit never waits for the result pipe to drain: with the importer gone nobody reads it,
    # and a queue's feeder thread blocked on a full pipe would keep this process alive.
    results.cancel_join_thread()
    validator = RowValidator(policy, now=now)
    while True:
        item = tasks.get()
        if item is None:
            return
        index, batch = item
        try:
            outcomes = [check_one(validator, _record(wire, layout)) for wire in batch]
            results.put((index, outcomes, None))
        except Exception as e:  # a bug, not a bad row: report it to the parent
            results.put((index, None, f"{type(e).__name__}: {e}"))
            results.close()
            results.join_thread()  # this one message must reach the parent before exit
            return


def _bind_to_parent(parent: int) -> bool:
    """Run first in a new worker: ignore Ctrl-C (the terminal sends it to the whole process
    group; the importer stops the workers itself) and die with the importer. False when
    the importer is already gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent across fork
    if sys.platform.startswith("linux"):
        import ctypes

        # The kernel sends SIGKILL when the parent exits, however it exits (kill -9 too).
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Everywhere, prctl or not: a thread that ends the worker once it is orphaned, whatever
    # the main thread is blocked on (a task half-written by a parent killed mid-write, say).
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    return os.getppid() == parent  # the parent may have died before prctl took effect


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)  # nothing to clean up: the results were for the importer that is gone


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Hold SIGINT while forking, so that a new worker cannot take Ctrl-C (and print a
    traceback) before it has set it to be ignored; the parent gets it just after."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _record(wire: Wire, layout: Layout | None) -> Record:
    if len(wire) == 3:
        return Record(wire[0], wire[1], cells=wire[2], layout=layout)
    line, raw, fields, facts, problem = wire
    return Record(line, raw, fields, facts, problem)


class _Pool:
    def __init__(self, policy: Policy, now: dt.datetime, workers: int, layout: Layout | None) -> None:
        ctx = mp.get_context("fork")  # the policy is shared as it is, nothing to re-load
        self.tasks = ctx.Queue()
        self.results = ctx.Queue()
        # PR_SET_PDEATHSIG is tied to the thread that forks: this one, which outlives the pool.
        self.procs = [
            ctx.Process(target=_work, args=(self.tasks, self.results, policy, now, layout, os.getpid()), daemon=True)
            for _ in range(workers)
        ]
        try:
            with _sigint_blocked():
                for proc in self.procs:
                    proc.start()
        except BaseException:
            self._stop(drained=False)
            raise
        self.in_flight_limit = 3 * workers  # bounds memory: at most this many batches out

    def run(self, records: Iterable[Record]) -> Iterator[list[Outcome]]:
        waiting: dict[int, list[Outcome]] = {}
        sent = received = 0
        try:
            for batch in _batches(records):
                self.tasks.put((sent, batch))
                sent += 1
                while sent - received >= self.in_flight_limit:
                    yield self._next(waiting, received)
                    received += 1
            while received < sent:
                yield self._next(waiting, received)
                received += 1
        finally:
            self._stop(drained=received == sent)

    def _next(self, waiting: dict[int, list[Outcome]], index: int) -> list[Outcome]:
        while index not in waiting:
            got, outcomes, error = self.results.get()
            if error is not None:
                raise RuntimeError(f"import worker failed: {error}")
            waiting[got] = outcomes
        return waiting.pop(index)

    def _stop(self, *, drained: bool) -> None:
        """End every worker. After the last result they are asked to finish; stopped early
        (a failure, Ctrl-C) they are killed: their pending results are not wanted."""
        if drained:
            for _ in self.procs:
                self.tasks.put(None)
            for proc in self.procs:
                proc.join(timeout=5)
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
        if not drained:
            # Batches no worker will read may fill the task pipe: exit must not wait for them.
            self.tasks.cancel_join_thread()
        self.tasks.close()
        self.results.close()
