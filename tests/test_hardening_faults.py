"""Fault injection: the database fails at each statement of a command, and at commit.

Two real mechanisms:
- in-process, every `sqlite3.connect` the CLI makes to the database returns a proxy that
  raises `sqlite3.OperationalError("disk I/O error")` at the Nth execute / executemany /
  commit (once, or from then on), for every N the command issues;
- through real processes, a size-limited tmpfs mounted for the test gives a genuine
  "database or disk is full" (skipped, with the reason, where mounting is not possible).
After each fault: a non-zero exit with one clear line, nothing partial in the file, the
chain intact, and "approved" never printed unless the commit happened.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from empower_cli.cli.app import app
from empower_cli.policy.load import load_policy
from tests.conftest import write_policy
from tests.errors_support import said
from tests.hardening_support import case_new_args, check_invariants, cli_env, run

FAULT_MODES = ("once", "sticky")  # fail one call only / fail that call and every later one
_real_connect = sqlite3.connect


class Fault(Exception):
    pass


class FailingConnection:
    """Forwards to a real connection; the Nth statement (or commit) raises."""

    def __init__(self, conn: sqlite3.Connection, fail_at: int | None, mode: str, counter: list[int]) -> None:
        self._conn, self._fail_at, self._mode, self._counter = conn, fail_at, mode, counter

    def _tick(self) -> None:
        self._counter[0] += 1
        n = self._counter[0]
        if self._fail_at is not None and (n == self._fail_at or (self._mode == "sticky" and n > self._fail_at)):
            raise sqlite3.OperationalError("disk I/O error")

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self._tick()
        return self._conn.execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self._tick()
        return self._conn.executemany(*args)

    def executescript(self, *args: Any) -> sqlite3.Cursor:
        self._tick()
        return self._conn.executescript(*args)

    def commit(self) -> None:
        self._tick()
        self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@contextmanager
def faulty_database(db: Path, fail_at: int | None, mode: str = "once") -> Iterator[list[int]]:
    """While active, connections to DB (any path spelling) fail at statement FAIL_AT."""
    counter = [0]
    target = db.resolve()

    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        conn = _real_connect(database, *args, **kwargs)
        name = str(database).removeprefix("file:").split("?")[0]
        if name and Path(name).resolve() == target:
            return FailingConnection(conn, fail_at, mode, counter)
        return conn

    sqlite3.connect = connect
    try:
        yield counter
    finally:
        sqlite3.connect = _real_connect


def snapshot(db: Path | sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    conn = db if isinstance(db, sqlite3.Connection) else _real_connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("cases", "events", "customers")}
    finally:
        if conn is not db:
            conn.close()


class Harness:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.policy_path = write_policy(tmp)
        self.policy = load_policy(self.policy_path)
        self.runner = CliRunner()
        self.faults = 0

    def invoke(self, db: Path, args: tuple[str, ...], agent: str) -> Result:
        env = {"EMPOWER_AGENT": agent, "EMPOWER_POLICY": str(self.policy_path), "EMPOWER_DB": str(db),
               "NO_COLOR": "1", "EMPOWER_DEBUG": ""}  # fmt: skip
        return self.runner.invoke(app, list(args), env=env)

    def check(self, db: Path) -> list[str]:
        return check_invariants(db, limit_for=self.policy.budget.limit_for, window_days=self.policy.budget.window_days,
                                now=dt.datetime.now(dt.timezone.utc))  # fmt: skip

    def sweep(self, baseline: Path, args: tuple[str, ...], agent: str, success_word: str) -> list[str]:
        """Fail every statement of ARGS in turn, each on a fresh copy of BASELINE."""
        clean = self.tmp / "clean.db"
        shutil.copy(baseline, clean)
        with faulty_database(clean, None) as counter:
            ok = self.invoke(clean, args, agent)
        assert ok.exit_code == 0, ok.output
        assert success_word in ok.stdout, ok.stdout  # so its absence after a fault means something
        total = counter[0]
        after_success = snapshot(clean)
        before = snapshot(baseline)
        violations: list[str] = []
        for mode in FAULT_MODES:
            for n in range(1, total + 1):
                db = self.tmp / f"fault-{mode}-{n}.db"
                shutil.copy(baseline, db)
                with faulty_database(db, n, mode):
                    r = self.invoke(db, args, agent)
                self.faults += 1
                where = f"{' '.join(args[:3])} fault {mode} at statement {n}/{total}"
                violations += [f"{where}: {v}" for v in self._judge(db, r, before, after_success, success_word)]
                db.unlink()
        return violations

    def _judge(self, db: Path, r: Result, before: Any, after_success: Any, success_word: str) -> list[str]:
        problems = self.check(db)
        state = snapshot(db)
        committed = len(state["events"]) == len(after_success["events"])
        if not committed and len(state["events"]) != len(before["events"]):
            problems.append("partial state: neither the old nor the new number of events")
        if not committed and state["cases"] != before["cases"]:
            problems.append("partial state: cases changed without their event")
        if r.exit_code == 0 and not committed:
            problems.append("exit 0 but nothing was committed")
        if r.exit_code != 0:
            lines = said(r).strip().splitlines()  # under --json the one line is JSON
            if len(lines) != 1 or "Traceback" in r.output or not lines[0].startswith("error: "):
                problems.append(f"not a one-line error: {r.stderr[-300:]!r}")
            elif "internal error" in lines[0]:
                problems.append(f"an I/O failure reported as an internal error: {lines[0]}")
        if success_word in r.stdout and not committed:
            problems.append(f"{success_word!r} printed but the commit did not happen")
        return problems


def _baseline(h: Harness) -> Path:
    """A database with one case of each pending kind and one approved, ready to be acted on."""
    db = h.tmp / "baseline" / "empower.db"
    for amount in ("40.00", "150.00", "150.00", "150.00", "350.00", "350.00"):
        r = h.invoke(db, tuple(case_new_args("C-1", amount)), "alice")
        assert r.exit_code == 0, r.output
    assert h.invoke(db, ("case", "object", "4", "--reason", "Not convinced this is fair"), "bob").exit_code == 0
    return db


def test_a_failure_at_any_statement_or_commit_leaves_no_trace_and_says_so(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    baseline = _baseline(h)
    history = tmp_path / "history.csv"
    history.write_text(
        "external_id,customer_id,agent,opened_at,case_type,action,amount,status,justification,"
        "fact.days_since_purchase,fact.has_receipt\n"
        + "".join(f"H-{i},C-{i % 3},erin,2026-0{1 + i % 8}-10T10:00:00,late_return,refund,{20 + i}.00,approved,"
                  f"Old case number {i} from the previous system,{10 + i},yes\n" for i in range(6)),
        encoding="utf-8",
    )  # fmt: skip
    steps: list[tuple[tuple[str, ...], str, str]] = [
        (tuple(case_new_args("C-2", "40.00")), "alice", '"approved"'),
        (tuple(case_new_args("C-2", "150.00")), "alice", '"pending_cosign"'),
        (("case", "cosign", "2", "--json"), "bob", '"approved"'),
        (("case", "object", "3", "--reason", "Receipt looks altered", "--json"), "bob", '"pending_supervisor"'),
        (("case", "approve", "4", "--note", "Checked the receipt", "--json"), "carol", '"approved"'),
        (("case", "deny", "5", "--note", "Outside any reasonable window", "--json"), "carol", '"denied"'),
        (("case", "outcome", "1", "--reaction", "satisfied", "--retained", "--json"), "alice", '"satisfied"'),
        (("import", "cases", str(history), "--json"), "carol", '"imported": 6'),
        # The human output too: "approved" must not be shown for a decision that was not saved.
        (tuple(case_new_args("C-2", "40.00")[:-1]), "alice", "approved"),
        (("case", "approve", "4", "--note", "Checked the receipt"), "carol", "approved"),
    ]
    violations: list[str] = []
    for args, agent, word in steps:
        violations += h.sweep(baseline, args, agent, word)
    print(f"\nfault injection (I/O error at each statement/commit, {len(FAULT_MODES)} modes, {len(steps)} commands): "
          f"{h.faults} faults injected, violations {len(violations)}")  # fmt: skip
    assert h.faults > 100
    assert violations == [], "\n".join(violations[:20])


# -- a real full disk --------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    # 2 MiB: schema 7's search index and precedent keys add pages to the file and to each commit's
    # WAL frames; in 1 MiB the space the filler freed no longer held one more commit's WAL frames.
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root and mount rights): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_refuses_with_one_line_and_records_nothing(tiny_fs: Path, tmp_path: Path) -> None:
    policy_path = write_policy(tmp_path)
    policy = load_policy(policy_path)
    db = tiny_fs / "data" / "empower.db"
    env = cli_env(policy_path, db)
    code, _out, err = run(case_new_args("C-1", "40.00"), env)
    assert code == 0, err
    # Keep a reader open so the -wal and -shm files stay (a new reader on a full disk cannot create them).
    keeper = _real_connect(db)
    keeper.execute("SELECT COUNT(*) FROM events").fetchone()
    # Fill the disk to the last byte.
    with open(tiny_fs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    refused = 0
    for i in range(8):  # WAL space left by earlier commits may take a small write; larger ones cannot fit
        before = snapshot(keeper)
        text = f"Justification number {i}: " + "x" * (1000 * 2**i if i < 4 else 9000)
        code, out, err = run(case_new_args(f"C-{i}", "150.00", justification=text), env)
        assert "Traceback" not in err
        if code == 0:
            assert '"pending_cosign"' in out
            continue
        refused += 1
        assert code == 1, (code, out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "full" in err, err
        assert '"pending_cosign"' not in out
        assert snapshot(keeper) == before
    keeper.close()
    assert refused > 0
    assert check_invariants(db, limit_for=policy.budget.limit_for, window_days=policy.budget.window_days,
                            now=dt.datetime.now(dt.timezone.utc)) == []  # fmt: skip
    (tiny_fs / "filler").unlink()
    code, _out, err = run(case_new_args("C-9", "40.00"), env)
    assert code == 0, err
    print(f"\nfull disk (real tmpfs of 2 MiB): {refused} writes refused with a one-line message, violations 0")
