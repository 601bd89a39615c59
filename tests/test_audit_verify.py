"""`empower audit head` and `audit verify`: the chain check catches a modified, a deleted and
a reordered event, and `--expect` catches a truncated or rewritten log. The tampering is
done the way an attacker with write access would: a raw sqlite3 connection that first
drops the append-only triggers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from empower_cli.store.chain import GENESIS, canonical_json, event_hash
from tests.conftest import CliFn, as_json
from tests.workflow_support import new_case


def tamper(db_path: Path, *statements: str) -> None:
    with sqlite3.connect(db_path, isolation_level=None) as conn:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        for sql in statements:
            conn.execute(sql)
    conn.close()


def head_of(cli: CliFn) -> str:
    r = cli("audit", "head")
    assert r.exit_code == 0, r.output
    return r.stdout.strip()


@pytest.fixture
def logged(cli: CliFn, db_path: Path) -> Path:
    """Event 1 applies the policy (the database's first use); events 2-7 open cases 1-6."""
    for k in range(6):
        new_case(cli, customer=f"C-{k}", amount="50.00")
    return db_path


def test_a_new_log_starts_with_the_applied_policy_after_genesis(cli: CliFn, db_path: Path) -> None:
    assert cli("audit", "verify").stdout.startswith("checked 0 events")  # verify applies nothing
    assert cli("case", "list").exit_code == 0  # the first command that decides or reads does
    r = cli("audit", "verify", "--expect", f"0:{GENESIS}")
    assert r.exit_code == 0, r.output
    assert "checked 1 events" in r.stdout
    with sqlite3.connect(db_path) as conn:
        kind, prev = conn.execute("SELECT kind, prev_hash FROM events WHERE seq = 1").fetchone()
    assert (kind, prev) == ("policy_applied", GENESIS)
    assert head_of(cli).startswith("1:")


def test_head_is_the_latest_events_seq_and_hash(cli: CliFn, logged: Path) -> None:
    with sqlite3.connect(logged) as conn:
        seq, digest = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    assert head_of(cli) == f"{seq}:{digest}"
    assert as_json(cli("audit", "head", "--json")) == {"seq": seq, "hash": digest, "head": f"{seq}:{digest}"}


def test_an_untouched_log_verifies_with_and_without_a_kept_head(cli: CliFn, logged: Path) -> None:
    kept = head_of(cli)
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 0, r.output
    assert "checked 7 events, 6 cases, 0 customer segments and 1 applied policies" in r.stdout
    assert "ok" in r.stdout
    out = as_json(cli("audit", "verify", "--json"))
    assert out | {"head": None} == {"ok": True, "events_checked": 7, "head": None, "first_bad_seq": None,
                                    "problem": None, "expect": None, "expect_found": None, "cases_checked": 6,
                                    "customers_checked": 0, "policies_checked": 1, "first_bad_case": None,
                                    "bad_customer": None}  # fmt: skip


def test_a_modified_event_is_named(cli: CliFn, logged: Path) -> None:
    tamper(logged, """UPDATE events SET payload = '{"amount":1,"status":"approved"}' WHERE seq = 4""")
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert "checked 3 events" in r.stdout
    assert "event 4 (opened, case 3) does not match its hash: it was modified" in r.stderr
    assert as_json(cli("audit", "verify", "--json"))["first_bad_seq"] == 4


def test_a_modified_actor_is_caught_too(cli: CliFn, logged: Path) -> None:
    tamper(logged, "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    r = cli("audit", "verify", "--json")
    assert r.exit_code == 6, r.output
    assert as_json(r)["first_bad_seq"] == 2


def test_a_deleted_event_is_named(cli: CliFn, logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq = 3")
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert "event 3 is missing (the next event is 4): an event was deleted" in r.stderr


def test_reordered_events_are_caught(cli: CliFn, logged: Path) -> None:
    # Swap the places of events 2 and 3, each keeping its own content and hash.
    tamper(logged, "UPDATE events SET seq = -2 WHERE seq = 2", "UPDATE events SET seq = 2 WHERE seq = 3",
           "UPDATE events SET seq = 3 WHERE seq = -2")  # fmt: skip
    r = cli("audit", "verify", "--json")
    assert r.exit_code == 6, r.output
    out = as_json(r)
    assert out["ok"] is False
    assert out["first_bad_seq"] == 2
    assert out["events_checked"] == 1


def test_a_deleted_and_relinked_event_is_caught_at_its_successor(cli: CliFn, logged: Path) -> None:
    # Removing an event and renumbering the rest keeps seq contiguous but breaks the links.
    tamper(logged, "DELETE FROM events WHERE seq = 5", "UPDATE events SET seq = 5 WHERE seq = 6")
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert "event 5" in r.stderr


def test_a_truncated_log_leaves_cases_without_events(cli: CliFn, logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq >= 5")  # the chain that is left is consistent...
    r = cli("audit", "verify", "--json")  # ...but cases 4-6 are still in the table
    assert r.exit_code == 6, r.output
    assert as_json(r)["first_bad_case"] == 4
    assert "case 4 has no events: the row was added outside empower" in r.stderr


def test_a_log_truncated_with_its_rows_verifies_alone_but_fails_against_a_kept_head(cli: CliFn,
                                                                                     logged: Path) -> None:  # fmt: skip
    kept = head_of(cli)
    tamper(logged, "DELETE FROM events WHERE seq >= 5", "DELETE FROM cases WHERE id >= 4",
           "DELETE FROM customers WHERE customer_id IN ('C-3', 'C-4', 'C-5')")  # fmt: skip
    assert cli("audit", "verify").exit_code == 0  # what is left is consistent...
    r = cli("audit", "verify", "--expect", kept)  # ...but the kept head is gone
    assert r.exit_code == 6, r.output
    assert "the kept head 7 is no longer in the log, which ends at event 4" in r.stderr
    assert as_json(cli("audit", "verify", "--expect", kept, "--json"))["expect_found"] is False


def test_a_rewritten_history_fails_against_a_kept_head(cli: CliFn, logged: Path) -> None:
    kept = head_of(cli)
    with sqlite3.connect(logged) as conn:
        prev = conn.execute("SELECT hash FROM events WHERE seq = 6").fetchone()[0]
        sql = "SELECT at, case_id, os_user, payload FROM events WHERE seq = 7"
        at, case_id, os_user, payload = conn.execute(sql).fetchone()
    # A forger with write access rewrites the last decision, its row and the chain consistently.
    content = {**json.loads(payload), "justification": "forged after the fact"}
    forged = {"seq": 7, "at": at, "case_id": case_id, "kind": "opened", "actor": "alice", "os_user": os_user,
              "payload": content}  # fmt: skip
    digest = event_hash(prev, forged)
    text = canonical_json(content).replace("'", "''")
    tamper(logged, "DELETE FROM events WHERE seq = 7",
           f"INSERT INTO events VALUES (7, '{at}', {case_id}, 'opened', 'alice', '{os_user}', "
           f"'{text}', '{prev}', '{digest}')",
           f"UPDATE cases SET justification = 'forged after the fact' WHERE id = {case_id}")  # fmt: skip
    assert cli("audit", "verify").exit_code == 0  # a consistent forgery verifies alone
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 6, r.output
    assert "the history was rewritten" in r.stderr


def test_an_older_kept_head_still_verifies_after_more_events(cli: CliFn, logged: Path, db_path: Path) -> None:
    kept = head_of(cli)
    new_case(cli, customer="later", amount="10.00")
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 0, r.output
    assert "checked 8 events" in r.stdout


@pytest.mark.parametrize("bad", ["12", "x:abc", f"-1:{GENESIS}", "3:" + "g" * 64, "3:" + "a" * 63])
def test_a_malformed_expect_exits_2(cli: CliFn, bad: str) -> None:
    r = cli("audit", "verify", "--expect", bad)
    assert r.exit_code == 2, r.output
    assert "--expect" in r.stderr


def test_a_payload_that_is_not_json_is_reported_as_modified(cli: CliFn, logged: Path) -> None:
    tamper(logged, "UPDATE events SET payload = 'not json' WHERE seq = 1")
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert "event 1" in r.stderr
    assert json.loads(cli("audit", "verify", "--json").stdout)["events_checked"] == 0


def test_an_equivalent_but_reformatted_payload_still_verifies(cli: CliFn, logged: Path) -> None:
    # Same content, other spacing: the fast check misses, event_hash (the judge) accepts.
    with sqlite3.connect(logged) as conn:
        payload = conn.execute("SELECT payload FROM events WHERE seq = 2").fetchone()[0]
    spaced = json.dumps(json.loads(payload), indent=1).replace("'", "''")
    tamper(logged, f"UPDATE events SET payload = '{spaced}' WHERE seq = 2")
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
