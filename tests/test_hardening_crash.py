"""Crash consistency: real `empower` processes SIGKILLed at seeded random moments;
after every kill an independent oracle checks the database file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import statistics
import time
from pathlib import Path

import pytest

from empower_cli.policy import load_policy
from tests.conftest import write_policy
from tests.hardening_support import case_new_args, check_invariants, cli_env, run, spawn

SEED = 20261123
KILL_ITERATIONS = 45  # rounds of concurrent `case new` processes, each round ends in SIGKILL
PROCS_PER_ROUND = 3
FRESH_DB_EVERY = 9  # every Nth round starts on a missing database (kills land in creation/migration)
AMOUNTS = ("40.00", "90.00", "150.00", "180.00", "350.00")  # approved, co-sign, supervisor
CUSTOMERS = ("C-1", "C-2", "C-3")


def _calibrate(policy: Path, db: Path) -> float:
    """Median wall time of one unkilled `case new` on this machine."""
    env = cli_env(policy, db)
    times = []
    for i in range(3):
        start = time.perf_counter()
        code, _out, err = run(case_new_args(f"CAL-{i}", "10.00"), env)
        times.append(time.perf_counter() - start)
        assert code == 0, err
    return statistics.median(times)


@pytest.mark.slow
def test_sigkill_at_random_moments_during_case_new_leaves_a_consistent_database(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    policy_path = write_policy(tmp_path)
    policy = load_policy(policy_path)
    median = _calibrate(policy_path, tmp_path / "calibrate" / "empower.db")
    killed = finished = rounds = 0
    violations: list[str] = []
    db = tmp_path / "db0" / "empower.db"
    acknowledged: dict[Path, set[int]] = {}
    for round_no in range(KILL_ITERATIONS):
        if round_no % FRESH_DB_EVERY == 0:
            db = tmp_path / f"db{round_no}" / "empower.db"
        env = cli_env(policy_path, db, agent=rng.choice(("alice", "bob", "dave")))
        procs = [spawn(case_new_args(rng.choice(CUSTOMERS), rng.choice(AMOUNTS)), env) for _ in range(PROCS_PER_ROUND)]
        # Most of a run is start-up; aim the kills at the last part, where the write happens.
        time.sleep(rng.uniform(0.9, 2.6) * median)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            out, err = p.communicate()
            if p.returncode == -signal.SIGKILL:
                killed += 1
            elif p.returncode == 0:
                finished += 1
                acknowledged.setdefault(db, set()).add(json.loads(out)["case_id"])
            else:
                violations.append(f"round {round_no}: exit {p.returncode}: {err.decode()[-300:]}")
        rounds += 1
        found = check_invariants(db, limit_for=policy.budget.limit_for, window_days=policy.budget.window_days,
                                 now=dt.datetime.now(dt.timezone.utc))  # fmt: skip
        violations += [f"round {round_no} (seed {SEED}): {v}" for v in found]
    violations += _acknowledged_cases_are_recorded(acknowledged)
    violations += _every_database_is_still_usable(policy_path, {d for d in acknowledged} | {db})
    print(f"\ncrash consistency (case new): seed {SEED}, {rounds} rounds, {killed} processes SIGKILLed, "
          f"{finished} finished before the kill, violations {len(violations)}")  # fmt: skip
    assert killed > 0, "no process was killed: the delays are too long for this machine"
    assert violations == []


def _acknowledged_cases_are_recorded(acknowledged: dict[Path, set[int]]) -> list[str]:
    """A case whose id was printed before the kill must be in the file (nothing lost)."""
    import sqlite3

    lost = []
    for db, ids in acknowledged.items():
        with sqlite3.connect(db) as conn:
            have = {r[0] for r in conn.execute("SELECT id FROM cases")}
        lost += [f"{db}: case {i} was printed as recorded but is missing" for i in sorted(ids - have)]
    return lost


def _every_database_is_still_usable(policy: Path, dbs: set[Path]) -> list[str]:
    """After the kills, a normal run on each file succeeds (no stale lock, no half migration)."""
    problems = []
    for db in sorted(dbs):
        code, _out, err = run(case_new_args("AFTER", "10.00"), cli_env(policy, db))
        if code != 0:
            problems.append(f"{db}: case new after the kills exited {code}: {err.strip()}")
    return problems


def test_the_oracle_catches_each_kind_of_damage(tmp_path: Path) -> None:
    """The checker above must be able to fail: damage a real database four ways."""
    import sqlite3

    policy_path = write_policy(tmp_path)
    policy = load_policy(policy_path)
    db = tmp_path / "data" / "empower.db"
    env = cli_env(policy_path, db)
    for amount in ("40.00", "150.00"):
        assert run(case_new_args("C-1", amount), env)[0] == 0

    def check() -> list[str]:
        return check_invariants(db, limit_for=policy.budget.limit_for, window_days=policy.budget.window_days,
                                now=dt.datetime.now(dt.timezone.utc))  # fmt: skip

    assert check() == []
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("DROP TRIGGER events_no_delete")
        conn.execute("UPDATE events SET actor = 'mallory' WHERE seq = 1")
    assert any("hash does not match" in v for v in check())
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM events WHERE seq = 1")
    assert any("case 1 has no events" in v for v in check())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE cases SET status = 'approved', discretionary_amount = 999999, settled_at = opened_at")
    assert any("customer C-1: limit" in v for v in check())
