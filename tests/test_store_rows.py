"""Store.insert_case / update_case: plain parameterised SQL (no sqlite-utils on the hot
path of `case new`), checked by reading the SQLite file back.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.errors import StoreError
from empower_cli.core.evaluate import evaluate
from empower_cli.core.models import BudgetState, Policy
from empower_cli.services.cases import CaseInput, case_row, propose
from empower_cli.services.identity import Identity
from empower_cli.store.sqlite import Store
from tests.conftest import JUSTIFICATION

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def a_row(policy: Policy, customer: str = "C-1") -> dict[str, Any]:
    """The row `case new` would insert for a 20-day late return of 50.00."""
    inputs = CaseInput(customer_id=customer, case_type="late_return", action="refund", amount="50.00",
                       facts={"days_since_purchase": "20", "has_receipt": "yes"}, justification=JUSTIFICATION)
    role = policy.roles["agent"]
    proposal = propose(inputs, policy=policy, identity=Identity(agent="alice", os_user="alice", role=role))
    evaluation = evaluate(proposal, policy, role=role, budget=BudgetState(limit=200_000), now=NOW)
    return case_row(proposal, evaluation, policy=policy, now=NOW, segment=proposal.segment)


def read(db: Path, case_id: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone())
    finally:
        conn.close()


def test_inserted_cases_get_consecutive_ids_and_read_back_equal(tmp_path: Path, policy: Policy) -> None:
    db = tmp_path / "e.db"
    rows = [a_row(policy, "C-1"), a_row(policy, "C-2")]
    with Store(db) as store, store.write():
        ids = [store.insert_case(r) for r in rows]
    assert ids == [1, 2]
    for case_id, row in zip(ids, rows, strict=True):
        back = read(db, case_id)
        assert {k: back[k] for k in row} == row
        assert (back["imported"], back["objections"]) == (0, 0)  # column defaults still apply


def test_update_changes_only_the_named_columns(tmp_path: Path, policy: Policy) -> None:
    db = tmp_path / "e.db"
    with Store(db) as store, store.write():
        case_id = store.insert_case(a_row(policy))
    before = read(db, case_id)
    later = (NOW + dt.timedelta(hours=1)).isoformat()
    with Store(db) as store, store.write():
        store.update_case(case_id, {"status": "denied", "settled_at": later, "supervisor": 'o"hara'})
    after = read(db, case_id)
    assert (after["status"], after["settled_at"], after["supervisor"]) == ("denied", later, 'o"hara')
    assert {k: v for k, v in after.items() if k not in ("status", "settled_at", "supervisor")} == {
        k: v for k, v in before.items() if k not in ("status", "settled_at", "supervisor")
    }


def test_updating_a_missing_case_fails_and_rolls_the_transaction_back(tmp_path: Path, policy: Policy) -> None:
    db = tmp_path / "e.db"
    with Store(db) as store, store.write():
        case_id = store.insert_case(a_row(policy))

    def deny_it_and_a_missing_case(store: Store) -> None:
        with store.write():
            store.update_case(case_id, {"status": "denied"})
            store.update_case(99, {"status": "denied"})

    with Store(db) as store, pytest.raises(StoreError, match="case 99 does not exist"):
        deny_it_and_a_missing_case(store)
    assert read(db, case_id)["status"] == "approved"
