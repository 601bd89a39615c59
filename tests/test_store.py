"""SPEC §6: the SQLite store — migrations, append-only hash-chained events, BEGIN IMMEDIATE
write transactions, and the budget ledger (rolling window, lazy expiry of holds).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from empower_cli.core.errors import DatabaseBusy, StoreError
from empower_cli.core.models import Policy
from empower_cli.services.cases import CaseInput, customer_budget, open_case
from empower_cli.services.identity import Identity
from empower_cli.store import sqlite as store_module
from empower_cli.store.chain import GENESIS, event_hash
from empower_cli.store.schema import MIGRATIONS, SCHEMA_VERSION
from empower_cli.store.sqlite import Store
from tests.conftest import JUSTIFICATION, LATE_RETURN, CliFn

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)

CASE_COLUMNS = {
    "id", "external_id", "imported", "opened_at", "agent", "customer_id", "segment", "case_type",
    "action", "amount", "discretionary_amount", "held_amount", "in_policy", "status", "expires_at",
    "settled_at", "escalated", "facts", "rules", "reasons", "justification", "reaction", "retained",
    "cosigner", "supervisor", "objections", "policy_version", "policy_sha256", "today_status",
    "today_discretionary", "content_hash", "imported_by",
}  # fmt: skip
EVENT_COLUMNS = {"seq", "at", "case_id", "kind", "actor", "os_user", "payload", "prev_hash", "hash"}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def counts(db: Path) -> tuple[int, int]:
    """Cases and their events (a new database's first policy is an event of no case)."""
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM events WHERE case_id IS NOT NULL").fetchone()[0])  # fmt: skip


def identity(policy: Policy, agent: str = "alice", role: str = "agent") -> Identity:
    return Identity(agent=agent, os_user=agent, role=policy.roles[role])


def late_return(days: int = 20, amount: str = "50.00", customer: str = "C-1", segment: str | None = None) -> CaseInput:
    return CaseInput(
        customer_id=customer, case_type="late_return",
        facts={"days_since_purchase": str(days), "has_receipt": "yes"}, action="refund",
        amount=amount, justification=JUSTIFICATION, segment=segment,
    )  # fmt: skip


# -- migrations -------------------------------------------------------------------------


def test_an_empty_file_is_migrated_to_the_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "empower.db"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"events", "cases", "customers"} <= tables
        assert columns(conn, "events") == EVENT_COLUMNS
        assert columns(conn, "cases") >= CASE_COLUMNS
        assert columns(conn, "customers") >= {"customer_id", "segment", "first_seen"}
        assert {"events_no_update", "events_no_delete"} <= triggers
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_opening_an_older_database_migrates_it_and_keeps_its_events(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        from sqlite_utils import Database

        MIGRATIONS[0](Database(conn))
        conn.execute("PRAGMA user_version = 1")
    with Store(path) as store:
        decision = open_case(late_return(), policy=policy, store=store, identity=identity(policy), now=NOW)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT id FROM cases").fetchall() == [(decision.case_id,)]


def test_reopening_a_current_database_changes_nothing(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "e.db"
    with Store(path) as store:
        open_case(late_return(), policy=policy, store=store, identity=identity(policy), now=NOW)
    before = path.read_bytes()
    Store(path).close()
    assert counts(path) == (1, 1)
    assert len(path.read_bytes()) == len(before)


def test_a_database_with_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 5}, newer than this empower"):
        Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 5,)


def test_the_cli_refuses_a_newer_database_with_one_line_and_exit_1(cli: CliFn, db_path: Path) -> None:
    assert cli("case", "list").exit_code == 0
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 999")
    for args in (("case", "list"), (*LATE_RETURN, "--amount", "10", "--justification", JUSTIFICATION)):
        r = cli(*args)
        assert r.exit_code == 1, r.output
        assert r.stderr.count("\n") == 1, r.stderr
        assert "schema version 999, newer than this empower understands" in r.stderr
        assert "Traceback" not in r.output
    assert counts(db_path) == (0, 0)


def test_a_corrupt_database_file_is_refused_with_one_line(cli: CliFn, db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite\x00" * 300)
    r = cli("case", "list")
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1
    assert "not an empower database or is corrupt" in r.stderr


# -- the append-only, hash-chained log -------------------------------------------------


def test_update_and_delete_on_events_are_refused_by_triggers(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "e.db"
    with Store(path) as store:
        open_case(late_return(), policy=policy, store=store, identity=identity(policy), now=NOW)
    with sqlite3.connect(path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
            conn.execute("UPDATE events SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
            conn.execute("DELETE FROM events")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT actor FROM events").fetchall() == [("alice",)]


def test_every_event_links_to_the_previous_hash_and_its_hash_recomputes(cli: CliFn, db_path: Path) -> None:
    for amount in ("10.00", "150.00", "300.00"):
        r = cli(*LATE_RETURN, "--amount", amount, "--justification", JUSTIFICATION)
        assert r.exit_code == 0, r.output
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        events = [dict(row) for row in conn.execute("SELECT * FROM events ORDER BY seq")]
    # The first use of the database applied its policy (event 1), then three cases.
    assert [(e["seq"], e["kind"]) for e in events] == [(1, "policy_applied"), (2, "opened"), (3, "opened"),
                                                        (4, "opened")]
    prev = GENESIS
    for event in events:
        assert event["prev_hash"] == prev
        body = {**event, "payload": json.loads(event["payload"])}
        assert event_hash(prev, body) == event["hash"]
        prev = event["hash"]
    tampered = {**events[1], "payload": {**json.loads(events[1]["payload"]), "amount": "1.00"}}
    assert event_hash(events[0]["hash"], tampered) != events[1]["hash"]


def test_the_decision_event_stores_what_is_needed_to_replay_it(cli: CliFn, db_path: Path, policy: Policy) -> None:
    r = cli(*LATE_RETURN, "--amount", "89.90", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    with sqlite3.connect(db_path) as conn:
        kind, actor, os_user, payload = conn.execute(
            "SELECT kind, actor, os_user, payload FROM events WHERE case_id IS NOT NULL"
        ).fetchone()
    data = json.loads(payload)
    assert kind == "opened"
    assert actor == "alice"
    from empower_cli.services.identity import os_account

    assert os_user == os_account()
    assert data["facts"] == {"days_since_purchase": "20", "has_receipt": "yes"}
    assert data["amount"] == "89.90"
    assert data["policy_sha256"] == policy.sha256
    assert data["policy_version"] == "2026.11"
    assert data["rules"][0] == {"id": "return-window", "result": "bent", "text": "Returns are accepted within 15 days."}
    assert data["budget_seen"] == {"limit": "2000.00", "spent": "0.00", "held": "0.00", "remaining": "2000.00"}


# -- transactions --------------------------------------------------------------------------


def test_a_write_transaction_takes_the_write_lock_when_it_begins(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with Store(path) as store, store.write():
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()


def test_a_write_waits_for_another_writer_then_succeeds(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "e.db"
    Store(path).close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO customers (customer_id, segment, first_seen) VALUES ('C-0', NULL, 'x')")
    release = threading.Timer(0.6, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    with Store(path) as store:
        decision = open_case(late_return(), policy=policy, store=store, identity=identity(policy), now=NOW)
    waited = time.monotonic() - started
    release.join()
    other.close()
    assert waited >= 0.5
    assert decision.evaluation.status == "approved"
    assert counts(path) == (1, 1)


def test_a_read_then_write_transaction_under_contention_never_fails_at_once(tmp_path: Path, policy: Policy) -> None:
    """Two stores read the budget and write; the second waits for the first, never 'locked'."""
    path = tmp_path / "e.db"
    Store(path).close()
    errors: list[BaseException] = []

    def spend(customer: str) -> None:
        try:
            with Store(path) as store:
                for _ in range(10):
                    open_case(late_return(amount="1.00", customer=customer), policy=policy, store=store,
                              identity=identity(policy), now=NOW)  # fmt: skip
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=spend, args=(f"C-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counts(path) == (40, 40)


def test_a_database_busy_past_the_retry_limit_exits_6_and_records_nothing(
    cli: CliFn, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("case", "list").exit_code == 0
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(store_module, "BUSY_RETRIES", 2)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        r = cli(*LATE_RETURN, "--amount", "10", "--justification", JUSTIFICATION)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.exit_code == 6, r.output
    assert "stayed busy" in r.stderr
    assert "database is locked" not in r.output
    assert counts(db_path) == (0, 0)


def test_busy_raises_database_busy_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.db"
    Store(path).close()
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 20)
    monkeypatch.setattr(store_module, "BUSY_RETRIES", 1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with Store(path) as store, pytest.raises(DatabaseBusy), store.write():
        pass
    other.close()


def test_an_error_inside_a_write_rolls_everything_back(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "e.db"

    def fail_half_way(store: Store) -> None:
        with store.write():
            store.append_event(kind="opened", case_id=None, actor="a", os_user="a", payload={}, at=NOW)
            store.remember_customer("C-1", None, NOW)
            raise RuntimeError("boom")

    with Store(path) as store:
        with pytest.raises(RuntimeError):
            fail_half_way(store)
        assert not store.conn.in_transaction
    assert counts(path) == (0, 0)


# -- the budget ledger ------------------------------------------------------------------------


def test_spent_counts_approved_discretion_inside_the_rolling_window_only(tmp_path: Path, policy: Policy) -> None:
    with Store(tmp_path / "e.db") as store:
        for days_ago, amount in ((400, "90.00"), (364, "40.00"), (1, "10.00")):
            open_case(late_return(amount=amount), policy=policy, store=store, identity=identity(policy),
                      now=NOW - dt.timedelta(days=days_ago))  # fmt: skip
        open_case(late_return(days=3, amount="500.00"), policy=policy, store=store, identity=identity(policy),
                  now=NOW)  # in policy: no discretion  # fmt: skip
        budget = customer_budget("C-1", policy=policy, store=store, now=NOW)
    assert (budget.limit, budget.spent, budget.held, budget.count) == (200000, 5000, 0, 2)


def test_a_pending_hold_counts_until_it_expires_then_frees_the_budget(tmp_path: Path, policy: Policy) -> None:
    with Store(tmp_path / "e.db") as store:
        opened = NOW - dt.timedelta(hours=23)
        decision = open_case(late_return(amount="150.00"), policy=policy, store=store,
                             identity=identity(policy), now=opened)  # fmt: skip
        assert decision.evaluation.status == "pending_cosign"
        live = customer_budget("C-1", policy=policy, store=store, now=NOW)
        assert (live.held, live.remaining, live.count) == (15000, 185000, 1)
        later = NOW + dt.timedelta(hours=1)
        expired = customer_budget("C-1", policy=policy, store=store, now=later)
        assert (expired.held, expired.remaining, expired.count) == (0, 200000, 0)
        case = store.get_case(decision.case_id, now=later)
        assert case is not None
        assert (case["status"], case["effective_status"]) == ("pending_cosign", "expired")
        assert [c["id"] for c in store.list_cases(now=later, status="expired")] == [decision.case_id]
        assert store.list_cases(now=NOW, status="expired") == []


def test_the_segment_recorded_for_a_customer_sets_their_limit(tmp_path: Path, policy: Policy) -> None:
    with Store(tmp_path / "e.db") as store:
        supervisor = identity(policy, "carol", "supervisor")  # agents cannot claim a segment
        open_case(late_return(segment="vip"), policy=policy, store=store, identity=supervisor, now=NOW)
        open_case(late_return(), policy=policy, store=store, identity=identity(policy), now=NOW)
        assert store.customer_segment("C-1") == "vip"
        assert customer_budget("C-1", policy=policy, store=store, now=NOW).limit == 500000


def test_a_database_locked_while_opening_is_busy_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")  # a rollback-journal file, locked by another writer
    other.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    try:
        with pytest.raises(DatabaseBusy):
            Store(path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    Store(path).close()


def test_a_lock_error_inside_a_write_is_busy_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "e.db"

    def locked_half_way(store: Store) -> None:
        with store.write():
            store.remember_customer("C-1", None, NOW)
            raise sqlite3.OperationalError("database is locked")

    with Store(path) as store:
        with pytest.raises(DatabaseBusy):
            locked_half_way(store)
        assert store.conn.execute("SELECT COUNT(*) FROM customers").fetchone() == (0,)
