"""Several real processes co-sign, object, approve and deny the same cases at the same
moment: each case settles exactly once, the losers get exit 6 and a sentence naming who
got there first, and the ledger balances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.timeutil import utcnow
from empower_cli.policy.load import load_policy
from empower_cli.services.cases import CaseInput, open_case
from empower_cli.store.chain import GENESIS, event_hash
from tests.conftest import BACKENDS, JUSTIFICATION, backend_db, open_db, training_policy_text, write_policy
from tests.workflow_support import identity

SETTLING = ("cosigned", "approved", "denied")


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The race runs on a SQLite file and on a PostgreSQL database."""
    return backend_db(request, tmp_path)


def _env(policy: Path, db: Path | str, agent: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(EMPOWER_AGENT=agent, EMPOWER_POLICY=str(policy), EMPOWER_DB=str(db), NO_COLOR="1")
    return env


def _run(policy: Path, db: Path | str, agent: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "empower_cli", *args], env=_env(policy, db, agent),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def _spawn(policy: Path, db: Path | str, agent: str, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "empower_cli", "case", *args], env=_env(policy, db, agent),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _open(policy: Path, db: Path | str, customer: str, receipt: str, amount: str) -> int:
    """Opened in this process (the race is about the steps that follow)."""
    loaded = load_policy(policy)
    inputs = CaseInput(customer_id=customer, case_type="late_return", action="refund", amount=amount,
                       facts={"days_since_purchase": "20", "has_receipt": receipt}, justification=JUSTIFICATION)
    with open_db(db) as store:
        return open_case(inputs, policy=loaded, store=store, identity=identity(loaded, "alice"), now=utcnow()).case_id


def test_concurrent_steps_settle_each_case_exactly_once_and_the_ledger_balances(tmp_path: Path, db_path: Any) -> None:
    policy = write_policy(tmp_path, training_policy_text().replace('dave = "senior"',
                                                                   'dave = "senior"\nerin = "supervisor"'))  # fmt: skip
    db = db_path
    supervisor_cases = [_open(policy, db, "C-1", "no", "300.00") for _ in range(4)]  # blocked: supervisor
    cosign_cases = [_open(policy, db, "C-2", "yes", "150.00") for _ in range(4)]  # bent: co-sign
    contenders: list[tuple[int, str, list[str]]] = []
    for cid in supervisor_cases:
        contenders += [(cid, "carol", ["approve", str(cid), "--note", "ok by carol"]),
                       (cid, "erin", ["deny", str(cid), "--note", "no by erin"]),
                       (cid, "erin", ["approve", str(cid), "--note", "ok by erin"]),
                       (cid, "carol", ["deny", str(cid), "--note", "no by carol"])]  # fmt: skip
    for cid in cosign_cases:
        contenders += [(cid, "bob", ["cosign", str(cid)]), (cid, "dave", ["cosign", str(cid)]),
                       (cid, "frank", ["object", str(cid), "--reason", "I disagree"]),
                       (cid, "carol", ["approve", str(cid), "--note", "fine"]),
                       (cid, "erin", ["deny", str(cid), "--note", "not fine"])]  # fmt: skip

    procs = [(cid, agent, args, _spawn(policy, db, agent, args)) for cid, agent, args in contenders]
    results = []
    for cid, agent, args, p in procs:
        _, err = p.communicate(timeout=120)
        results.append((cid, agent, args[0], p.returncode, err))
    print(*(r[:4] for r in results), sep="\n")  # who won, shown when the test fails

    store = open_db(db)
    conn = store.conn
    for code_cid, agent, command, code, err in results:
        assert code in (0, 6), (code_cid, agent, command, code, err)
        assert "locked" not in err, err
        assert "Traceback" not in err, err
    for cid in supervisor_cases + cosign_cases:
        settled = conn.execute(
            f"SELECT kind, actor FROM events WHERE case_id = ? AND kind IN {SETTLING!r}", (cid,)
        ).fetchall()
        assert len(settled) == 1, (cid, settled)
        kind, winner = settled[0]
        status = conn.execute("SELECT status FROM cases WHERE id = ?", (cid,)).fetchone()[0]
        assert status == ("denied" if kind == "denied" else "approved")
        mine = [r for r in results if r[0] == cid and r[2] != "object"]
        assert [r[1] for r in mine if r[3] == 0] == [winner], mine
        for _, _, _, code, err in mine:
            if code == 6:
                assert f"by {winner} at " in err or "waiting for a supervisor" in err, err
        objections = conn.execute("SELECT COUNT(*) FROM events WHERE case_id = ? AND kind = 'objected'",
                                  (cid,)).fetchone()[0]  # fmt: skip
        assert objections == sum(1 for r in results if r[0] == cid and r[2] == "object" and r[3] == 0) <= 1

    for customer, cases in (("C-1", supervisor_cases), ("C-2", cosign_cases)):
        r = _run(policy, db, "alice", "customer", "show", customer, "--json")
        budget = {k: int(v.replace(".", "")) for k, v in json.loads(r.stdout)["budget"].items()}
        spent = conn.execute(
            f"SELECT COALESCE(SUM(discretionary_amount), 0) FROM cases WHERE status = 'approved' "
            f"AND id IN ({','.join(map(str, cases))})"
        ).fetchone()[0]
        assert (budget["spent"], budget["held"]) == (spent, 0)
        assert budget["limit"] == budget["spent"] + budget["held"] + budget["remaining"]

    prev = GENESIS
    for seq, at, case_id, kind, actor, os_user, payload, prev_hash, digest in conn.execute(
        "SELECT seq, at, case_id, kind, actor, os_user, payload, prev_hash, hash FROM events ORDER BY seq"
    ):
        event = {"seq": seq, "at": at, "case_id": case_id, "kind": kind, "actor": actor, "os_user": os_user,
                 "payload": json.loads(payload)}  # fmt: skip
        assert prev_hash == prev
        assert digest == event_hash(prev, event)
        prev = digest
    store.close()
