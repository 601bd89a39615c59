"""The validating workers of a large import never outlive it: a `kill -9` of the importer
takes them within 2 seconds (prctl's parent-death signal; without it, their own check of
their parent), and Ctrl-C — SIGINT to the whole foreground process group, as a terminal
sends it — stops the import with exit 130, no traceback from any process, and one line
saying how many rows were committed; a re-run imports the rest. Real processes, real
files; every process started is stopped by its pid and checked gone."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from empower_cli.imports.pool import MIN_BYTES_FOR_WORKERS, default_workers
from empower_cli.imports.run import CHUNK_ROWS, DEFER_INDEXES_MIN_ROWS
from empower_cli.store import bulk as store_import
from tests.conftest import CliFn, as_json
from tests.hardening_support import cli_env, spawn
from tests.test_import import HEADER, ago, chain_ok, row, write
from tests.test_import_crash import committed
from tests.test_import_deferred import deferred

Pids = dict[int, int]  # pid -> its start time, so that a reused pid is never mistaken for ours
# Without prctl, as on a system that lacks it: the worker's own check of its parent remains.
NO_PRCTL = ("import sys, empower_cli.imports.pool as pool; pool.PR_SET_PDEATHSIG = 0; "
            "from empower_cli.cli.main import main; sys.argv[0] = 'empower'; main()")  # fmt: skip


def big_history(tmp_path: Path, rows: int, name: str = "big.csv") -> Path:
    opened = ago(30)
    lines = (row(f"BIG-{i:06d}", customer=f"C-{i % 997}", opened=opened, amount=f"{i % 90 + 1}.25")
             for i in range(rows))  # fmt: skip
    path = write(tmp_path, HEADER + "".join(lines), name)
    assert path.stat().st_size > MIN_BYTES_FOR_WORKERS, "too small to be validated on workers"
    return path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) from /proc/PID/stat; None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[19])


def children_of(parent: int) -> Pids:
    found: Pids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{entry}/status").read_text(encoding="utf-8", errors="replace")
            ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
            stat = _stat(int(entry))
            if ppid == parent and stat is not None:
                found[int(entry)] = stat[1]
    return found


def running(pids: Pids) -> list[int]:
    """Those of PIDS still running (a zombie has exited: only its exit status is left)."""
    alive = []
    for pid, started in pids.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started and stat[0] not in "ZX":
            alive.append(pid)
    return alive


def gone_within(pids: Pids, seconds: float) -> list[int]:
    """Poll until every pid has ended; those still running after SECONDS."""
    deadline = time.monotonic() + seconds
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return running(pids)


@contextlib.contextmanager
def importing(args: list[str], env: dict[str, str], *, prctl: bool = True,
              **kw: Any) -> Iterator[tuple[subprocess.Popen[bytes], Pids]]:  # fmt: skip
    """A real import process; on the way out it and every worker seen are killed by pid."""
    if prctl:
        proc = spawn(args, env, **kw)
    else:
        proc = subprocess.Popen([sys.executable, "-c", NO_PRCTL, *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # fmt: skip
    workers: Pids = {}
    try:
        yield proc, workers
    finally:
        for pid in running(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        assert gone_within(workers, 5) == [], "a worker was left running"


def wait_for_a_committed_chunk(proc: subprocess.Popen[bytes], workers: Pids, db: Path, expected: int) -> None:
    """Until the importer has its EXPECTED workers and has committed its first chunk."""
    deadline = time.monotonic() + 120
    while len(workers) < expected or committed(db) == 0:
        assert proc.poll() is None, "the import ended before the test could act"
        assert time.monotonic() < deadline, "no chunk committed within 120 s"
        workers.update(children_of(proc.pid))
        time.sleep(0.01)


@pytest.mark.parametrize("prctl", [True, False], ids=["prctl", "without-prctl"])
def test_kill_9_of_the_importer_ends_its_workers_within_2_seconds(tmp_path: Path, policy_path: Path,
                                                                  db_path: Path, prctl: bool) -> None:  # fmt: skip
    path = big_history(tmp_path, 40_000)
    expected = default_workers(path.stat().st_size)
    env = cli_env(policy_path, db_path, agent="carol")
    args = ["import", "cases", str(path)]
    with importing(args, env, prctl=prctl) as (proc, workers):
        wait_for_a_committed_chunk(proc, workers, db_path, expected)
        assert len(workers) == expected
        assert running(workers) == list(workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert gone_within(workers, 2.0) == [], "workers outlived their importer"
    assert chain_ok(db_path) == committed(db_path) > 0


def _interrupted_count(err: str) -> int:
    found = re.fullmatch(r"error: interrupted: ([\d,]+) rows? (?:were|was) committed \(re-run the same command "
                         r"to import the rest; committed rows are skipped\)\n", err)  # fmt: skip
    assert found, err
    return int(found.group(1).replace(",", ""))


def test_ctrl_c_stops_a_large_import_with_130_and_the_committed_count(cli: CliFn, tmp_path: Path,
                                                                      policy_path: Path, db_path: Path) -> None:
    rows = DEFER_INDEXES_MIN_ROWS + 5_000  # large enough to defer the report indexes too
    path = big_history(tmp_path, rows)
    expected = default_workers(path.stat().st_size)
    args = ["import", "cases", str(path), "--rejects", str(tmp_path / "bad.csv")]
    with importing(args, cli_env(policy_path, db_path, agent="carol"), start_new_session=True) as (proc, workers):
        wait_for_a_committed_chunk(proc, workers, db_path, expected)
        os.killpg(proc.pid, signal.SIGINT)  # the importer and its workers, as a terminal does
        _out, raw = proc.communicate(timeout=60)
        assert gone_within(workers, 2.0) == []
    err = raw.decode("utf-8", "replace")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "nothing was recorded" not in err
    done = _interrupted_count(err)
    assert done == committed(db_path)
    assert 0 < done < rows
    assert done % CHUNK_ROWS == 0
    assert chain_ok(db_path) == done
    assert deferred(db_path) == sorted(store_import.DEFERRABLE_INDEXES)  # left for the next import to build
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["big.csv", "policies.toml"]

    r = cli("import", "cases", *args[2:], "--json", agent="carol")  # the same command imports the rest
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["skipped"], summary["rejected"]) == (rows - done, done, 0)
    assert committed(db_path) == chain_ok(db_path) == rows
    assert deferred(db_path) == []


def test_ctrl_c_between_chunks_counts_exactly_the_committed_ones(cli: CliFn, tmp_path: Path, db_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """In process (no workers): Ctrl-C while the second chunk is written rolls it back and
    reports the first; the partial rejects report is removed, so the same command re-runs."""
    lines = [row(f"K-{i:05d}", amount=("bad" if i == 3 else "12.00")) for i in range(CHUNK_ROWS + 500)]
    path = write(tmp_path, HEADER + "".join(lines))
    real = store_import.write_chunk
    calls = []

    def second_chunk_interrupted(*a: object, **kw: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store_import, "write_chunk", second_chunk_interrupted)
    target = str(tmp_path / "bad.csv")
    r = cli("import", "cases", str(path), "--rejects", target, agent="carol")
    assert r.exit_code == 130, r.output
    assert _interrupted_count(r.stderr) == committed(db_path) == CHUNK_ROWS - 1
    assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["history.csv", "policies.toml"]
    monkeypatch.undo()
    r = cli("import", "cases", str(path), "--rejects", target, "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert (as_json(r)["imported"], as_json(r)["skipped"], as_json(r)["rejected"]) == (500, CHUNK_ROWS - 1, 1)
    assert as_json(r)["rejects_file"] == target


def test_ctrl_c_before_any_commit_or_in_a_dry_run_says_so(cli: CliFn, tmp_path: Path, db_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    path = write(tmp_path, HEADER + row("Z-1") + row("Z-2", amount="bad"))

    def interrupted(*a: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_import, "write_chunk", interrupted)
    r = cli("import", "cases", str(path), agent="carol")
    assert r.exit_code == 130, r.output
    assert r.stderr == "error: interrupted: no rows were committed (re-run the same command to import them)\n"
    monkeypatch.setattr(store_import.SeenIds, "lookup", interrupted)
    r = cli("import", "cases", str(path), "--dry-run", "--rejects", str(tmp_path / "dry.csv"), agent="carol")
    assert r.exit_code == 130, r.output
    assert r.stderr == "error: interrupted: a dry run, nothing was written\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["history.csv", "policies.toml"]


def test_ctrl_c_typed_at_a_terminal_stops_the_import_and_its_workers(tmp_path: Path, policy_path: Path,
                                                                     db_path: Path) -> None:  # fmt: skip
    """The real thing: ^C typed on the import's terminal, its progress bar showing."""
    import pexpect

    path = big_history(tmp_path, 40_000)
    env = cli_env(policy_path, db_path, agent="carol")
    child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "import", "cases", str(path)], env=env,
                          encoding="utf-8", timeout=60, dimensions=(24, 120))  # fmt: skip
    workers: Pids = {}
    try:
        deadline = time.monotonic() + 120
        while len(workers) < default_workers(path.stat().st_size) or committed(db_path) == 0:
            assert child.isalive(), "the import ended before ^C"
            assert time.monotonic() < deadline, "no chunk committed within 120 s"
            workers.update(children_of(child.pid))
            time.sleep(0.01)
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        assert gone_within(workers, 2.0) == []
    finally:
        for pid in running(workers):
            os.kill(pid, signal.SIGKILL)
        if child.isalive():
            child.close(force=True)
    screen = child.before or ""
    assert child.exitstatus == 130, screen
    assert "Traceback" not in screen
    found = re.search(r"error: interrupted: ([\d,]+) rows were committed \(re-run the same command", screen)
    assert found, screen
    assert int(found.group(1).replace(",", "")) == committed(db_path) > 0
