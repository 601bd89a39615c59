"""Holds that nobody settles expire after `cosign.hold_hours`, at the moment of any read:
cases opened in the past (through the service, with an old clock) are expired in
budgets, queues and lists, and can no longer be co-signed, approved or denied."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.timeutil import utcnow
from tests.conftest import BACKENDS, CliFn, as_json, backend_db
from tests.workflow_support import budget, case_row, events, new_case, open_in_past


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_db(request, tmp_path)

TWO_DAYS_AGO = utcnow() - dt.timedelta(days=2)


@pytest.fixture
def stale(db_path: Path, policy: Any) -> int:
    """A co-sign case opened two days ago: its 24 h hold has passed."""
    return open_in_past(db_path, policy, when=TWO_DAYS_AGO)


def test_an_old_hold_no_longer_counts_against_the_budget(cli: CliFn, stale: int, db_path: Path) -> None:
    assert case_row(db_path, stale)["status"] == "pending_cosign"  # nothing rewrote the row
    assert budget(cli) == {"limit": "2000.00", "spent": "0.00", "held": "0.00", "remaining": "2000.00"}


def test_case_list_status_expired_finds_it(cli: CliFn, stale: int) -> None:
    fresh = new_case(cli)
    r = cli("case", "list", "--status", "expired", "--json")
    assert r.exit_code == 0, r.output
    assert [c["case_id"] for c in as_json(r)["rows"]] == [stale]
    r = cli("case", "list", "--status", "pending_cosign", "--json")
    assert [c["case_id"] for c in as_json(r)["rows"]] == [fresh]
    assert as_json(cli("case", "show", str(stale), "--json"))["status"] == "expired"


def test_an_expired_case_is_not_in_anyones_queue(cli: CliFn, stale: int) -> None:
    assert as_json(cli("case", "queue", "--json", agent="bob")) == []
    assert as_json(cli("case", "queue", "--json", agent="carol")) == []


@pytest.mark.parametrize(
    ("command", "agent", "extra"),
    [("cosign", "bob", []), ("object", "bob", ["--reason", "Too late now"]),
     ("approve", "carol", ["--note", "Late approval"]), ("deny", "carol", ["--note", "Late denial"])],
)  # fmt: skip
def test_an_expired_case_can_no_longer_be_settled(cli: CliFn, stale: int, db_path: Path, command: str,
                                                  agent: str, extra: list[str]) -> None:  # fmt: skip
    r = cli("case", command, str(stale), *extra, agent=agent)
    assert r.exit_code == 6, r.output
    assert f"case {stale} expired at " in r.stderr
    # A refused command records nothing: the expiry is computed at every read, so no report moves.
    row = case_row(db_path, stale)
    assert (row["status"], row["cosigner"], row["supervisor"], row["settled_at"]) == (
        "pending_cosign", None, None, None)  # fmt: skip
    assert events(db_path, stale) == [("opened", "alice")]
    assert budget(cli)["held"] == "0.00"
    assert as_json(cli("case", "show", str(stale), "--json"))["status"] == "expired"


def test_the_four_eyes_check_comes_before_the_expiry(cli: CliFn, stale: int, db_path: Path) -> None:
    r = cli("case", "cosign", str(stale), agent="alice")
    assert r.exit_code == 4, r.output
    assert events(db_path, stale) == [("opened", "alice")]


def test_an_outcome_can_still_be_recorded_on_an_expired_case(cli: CliFn, stale: int, db_path: Path) -> None:
    r = cli("case", "outcome", str(stale), "--reaction", "dissatisfied", "--lost", "--json", agent="bob")
    assert r.exit_code == 0, r.output
    assert as_json(r)["status"] == "expired"
    assert case_row(db_path, stale)["reaction"] == "dissatisfied"


def test_a_case_inside_its_hold_time_can_still_be_cosigned(cli: CliFn, db_path: Path, policy: Any) -> None:
    cid = open_in_past(db_path, policy, when=utcnow() - dt.timedelta(hours=23))
    r = cli("case", "queue", "--json", agent="bob")
    assert [(q["case_id"], q["age"], q["time_left"]) for q in as_json(r)] == [(cid, "23h", "59m")]
    r = cli("case", "cosign", str(cid), agent="bob")
    assert r.exit_code == 0, r.output
    assert budget(cli)["spent"] == "150.00"


def test_an_expired_hold_frees_budget_for_a_new_case(cli: CliFn, db_path: Path, policy: Any) -> None:
    old = open_in_past(db_path, policy, when=TWO_DAYS_AGO, amount="1950.00")  # pending_supervisor, held
    assert case_row(db_path, old)["held_amount"] == 195000
    cid = new_case(cli, amount="180.00")  # would not fit if the old hold still counted
    assert case_row(db_path, cid)["status"] == "pending_cosign"
    assert budget(cli)["held"] == "180.00"


def test_approved_discretion_leaves_the_window_after_window_days(cli: CliFn, db_path: Path, policy: Any) -> None:
    open_in_past(db_path, policy, when=utcnow() - dt.timedelta(days=366), amount="90.00")
    open_in_past(db_path, policy, when=utcnow() - dt.timedelta(days=364), amount="80.00")
    assert budget(cli)["spent"] == "80.00"
