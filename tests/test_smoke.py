"""The first thing a new user does: record a case and read it back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import JUSTIFICATION, LATE_RETURN, CliFn, as_json


def test_a_bent_return_within_the_agents_discretion_is_approved_and_spent(cli: CliFn, db_path: Path) -> None:
    r = cli(*LATE_RETURN, "--amount", "89.90", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert out["status"] == "approved"
    assert out["discretionary_amount"] == "89.90"
    assert out["budget"] == {"limit": "2000.00", "spent": "89.90", "held": "0.00", "remaining": "1910.10"}
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT status, discretionary_amount FROM cases").fetchall() == [("approved", 8990)]
        case_events = conn.execute("SELECT kind, actor FROM events WHERE case_id IS NOT NULL").fetchall()
        assert case_events == [("opened", "alice")]
