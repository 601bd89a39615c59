"""Crash consistency: real `empower` processes SIGKILLed at seeded random moments;
after every kill an independent oracle checks the database file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import signal
import statistics
import time
from pathlib import Path

import pytest

from empower_cli.core.models import Policy
from empower_cli.policy.load import load_policy
from tests.conftest import write_policy
from tests.hardening_support import case_new_args, check_invariants, cli_env, run, spawn

SEED = 20261123
KILL_ITERATIONS = 30  # rounds of concurrent `case new` processes, each round ends in SIGKILL
WORKFLOW_ROUNDS = 16  # rounds of 4 processes racing pairwise: cosign/object, approve/deny
IMPORT_KILLS = 4  # the import of IMPORT_ROWS rows (chunks of 10,000) killed at random moments, then re-run
IMPORT_ROWS = 16_000
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
        conn.execute("UPDATE events SET actor = 'mallory' WHERE case_id = 1 AND kind = 'opened'")
    assert any("hash does not match" in v for v in check())
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM events WHERE case_id = 1 AND kind = 'opened'")
    assert any("case 1 has no events" in v for v in check())
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE cases SET status = 'approved', discretionary_amount = 999999, settled_at = opened_at")
    assert any("customer C-1: limit" in v for v in check())


def _oracle(db: Path, policy: Policy, now: dt.datetime) -> list[str]:
    """The independent checks, plus `empower audit verify` where that command exists."""
    found = check_invariants(db, limit_for=policy.budget.limit_for, window_days=policy.budget.window_days,
                             now=now, may_exceed=True)  # imported history may exceed a limit  # fmt: skip
    found += _settled_once(db)
    code, out = audit_verify(db, policy)
    if code not in (0, None):
        found.append(f"empower audit verify exited {code}: {out[-300:]}")
    return found


def audit_verify(db: Path, policy: Policy) -> tuple[int | None, str]:
    """Run the real `empower audit verify` (in-process CLI); None when it does not exist yet."""
    from typer.testing import CliRunner

    from empower_cli.cli.app import app

    env = {"EMPOWER_POLICY": policy.path, "EMPOWER_DB": str(db), "EMPOWER_AGENT": "carol"}
    r = CliRunner().invoke(app, ["audit", "verify"], env=env)
    if r.exit_code == 2 and "No such command" in r.output:
        return None, r.output
    return r.exit_code, r.output


def _settled_once(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT case_id, COUNT(*) FROM events WHERE kind IN ('cosigned', 'approved', 'denied') "
            "GROUP BY case_id HAVING COUNT(*) > 1"
        ).fetchall()
    return [f"case {cid} was settled {n} times" for cid, n in rows]


def _seed_pending(db: Path, policy: Policy, count: int) -> tuple[list[int], list[int]]:
    """COUNT cases waiting for a co-sign and COUNT waiting for a supervisor, one customer each."""
    from empower_cli.services.cases import CaseInput, open_case
    from empower_cli.services.identity import Identity
    from empower_cli.store.sqlite import Store

    role = policy.role_of("alice")
    assert role is not None
    who = Identity("alice", "test", role)
    now = dt.datetime.now(dt.timezone.utc)
    cosign: list[int] = []
    supervisor: list[int] = []
    with Store(db) as store:
        for i in range(count):
            for amount, bucket, esc in (("150.00", cosign, False), ("90.00", supervisor, True)):
                inputs = CaseInput(customer_id=f"P-{i}-{esc}", case_type="late_return",
                                   facts={"days_since_purchase": "20", "has_receipt": "yes"}, action="refund",
                                   amount=amount, justification="Loyal customer, unused item",
                                   escalate=esc)  # fmt: skip
                bucket.append(open_case(inputs, policy=policy, store=store, identity=who, now=now).case_id)
    return cosign, supervisor


@pytest.mark.slow
def test_sigkill_during_cosign_object_approve_deny_leaves_a_consistent_database(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    policy_path = write_policy(tmp_path)
    policy = load_policy(policy_path)
    db = tmp_path / "data" / "empower.db"
    cosign_ids, supervisor_ids = _seed_pending(db, policy, WORKFLOW_ROUNDS)
    median = _calibrate(policy_path, tmp_path / "calibrate" / "empower.db")
    killed = finished = refused = 0
    violations: list[str] = []
    for round_no in range(WORKFLOW_ROUNDS):
        c, s = cosign_ids[round_no], supervisor_ids[round_no]
        jobs = [  # two steps racing on each case, plus a new case
            (rng.choice([("case", "cosign", str(c), "--json"), ("case", "object", str(c), "--reason", "No receipt")]),
             rng.choice(["bob", "dave"])),
            (("case", "cosign", str(c), "--json"), "carol"),
            (rng.choice([("case", "approve", str(s), "--note", "Fair"), ("case", "deny", str(s), "--note", "No")]),
             "carol"),
            (("case", "approve", str(s), "--note", "Fine by me"), "carol"),
        ]  # fmt: skip
        procs = [spawn(list(args), cli_env(policy_path, db, agent=agent)) for args, agent in jobs]
        time.sleep(rng.uniform(1.0, 3.5) * median)  # four processes share two cores
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            _out, err = p.communicate()
            if p.returncode == -signal.SIGKILL:
                killed += 1
            elif p.returncode == 0:
                finished += 1
            elif p.returncode == 6:
                refused += 1  # lost the race: the case was already settled
            else:
                violations.append(f"round {round_no}: exit {p.returncode}: {err.decode()[-300:]}")
        found = _oracle(db, policy, dt.datetime.now(dt.timezone.utc))
        violations += [f"round {round_no} (seed {SEED + 1}): {v}" for v in found]
    print(f"\ncrash consistency (cosign/object/approve/deny): {WORKFLOW_ROUNDS} rounds, {killed} processes "
          f"SIGKILLed, {finished} finished, {refused} lost a race (exit 6), audit verify "
          f"{'run' if audit_verify(db, policy)[0] is not None else 'not available'} after each, "
          f"violations {len(violations)}")  # fmt: skip
    assert killed > 0
    assert violations == []


def _history(path: Path, rows: int) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
                    "justification", "fact.days_since_purchase", "fact.has_receipt"])  # fmt: skip
        for i in range(rows):
            w.writerow([f"H-{i}", f"C-{i % 97}", "erin", f"2026-0{1 + i % 9}-1{i % 10}T10:00:00", "late_return",
                        "refund", f"{10 + i % 50}.00", "approved" if i % 7 else "denied",
                        "Old case from the previous system", str(10 + i % 15), "yes"])  # fmt: skip


@pytest.mark.slow
def test_sigkill_during_import_then_a_rerun_completes_it_exactly(tmp_path: Path) -> None:
    import json as _json
    import os
    import sqlite3

    rng = random.Random(SEED + 2)
    policy_path = write_policy(tmp_path)
    policy = load_policy(policy_path)
    db = tmp_path / "data" / "empower.db"
    history = tmp_path / "history.csv"
    _history(history, IMPORT_ROWS)
    env = cli_env(policy_path, db, agent="carol")
    args = ["import", "cases", str(history), "--json", "--rejects", str(tmp_path / "rejects.csv")]
    started = time.perf_counter()
    code, out, err = run(args, cli_env(policy_path, tmp_path / "timing" / "empower.db", agent="carol"))
    full = time.perf_counter() - started
    assert code == 0, err
    killed = completed_early = 0
    violations: list[str] = []
    progress = []
    for round_no in range(IMPORT_KILLS):
        p = spawn(args, env, start_new_session=True)
        time.sleep(rng.uniform(0.1, 0.9) * full)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # any validating worker it left behind
        killed += p.returncode == -signal.SIGKILL
        completed_early += p.returncode == 0
        found = _oracle(db, policy, dt.datetime.now(dt.timezone.utc)) if db.exists() else []
        violations += [f"import kill {round_no} (seed {SEED + 2}): {v}" for v in found]
        if db.exists():
            with sqlite3.connect(db) as conn:
                progress.append(conn.execute("SELECT COUNT(*) FROM cases WHERE imported = 1").fetchone()[0])
    code, out, err = run(args, env)  # the re-run completes it
    assert code == 0, err
    summary = _json.loads(out)
    with sqlite3.connect(db) as conn:
        imported, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT external_id) FROM cases").fetchone()
    if (imported, distinct) != (IMPORT_ROWS, IMPORT_ROWS):
        violations.append(f"after the re-run: {imported} cases, {distinct} distinct external ids, not {IMPORT_ROWS}")
    if summary["imported"] + summary["skipped"] != IMPORT_ROWS or summary["rejected"]:
        violations.append(f"re-run summary does not add up: {summary}")
    code, out, err = run(args, env)  # and a further re-run changes nothing
    again = _json.loads(out)
    if (again["imported"], again["skipped"]) != (0, IMPORT_ROWS):
        violations.append(f"a third run imported again: {again}")
    violations += _oracle(db, policy, dt.datetime.now(dt.timezone.utc))
    print(f"\ncrash consistency (import of {IMPORT_ROWS} rows): {killed} SIGKILLs mid-import "
          f"(imported after each: {progress}), {completed_early} runs finished first; the re-run imported "
          f"{summary['imported']} and skipped {summary['skipped']}: exactly {IMPORT_ROWS}; "
          f"violations {len(violations)}")
    assert killed > 0
    assert violations == []
