"""`empower audit head` and `audit verify`: the chain check catches a modified, a deleted and
a reordered event, and `--expect` catches a truncated or rewritten log. The tampering is
done the way an attacker with write access would: a raw sqlite3 connection that first
drops the append-only triggers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from empower_cli.store import GENESIS, canonical_json, event_hash
from tests.audit_support import Spec, seed
from tests.conftest import CliFn, as_json


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
def logged(db_path: Path) -> Path:
    seed(db_path, [Spec(customer=f"C-{k}", hours_ago=50 - k) for k in range(6)])
    return db_path


def test_head_of_an_empty_log_is_genesis(cli: CliFn) -> None:
    assert head_of(cli) == f"0:{GENESIS}"
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
    assert "checked 0 events" in r.stdout


def test_head_is_the_latest_events_seq_and_hash(cli: CliFn, logged: Path) -> None:
    with sqlite3.connect(logged) as conn:
        seq, digest = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    assert head_of(cli) == f"{seq}:{digest}"
    assert as_json(cli("audit", "head", "--json")) == {"seq": seq, "hash": digest, "head": f"{seq}:{digest}"}


def test_an_untouched_log_verifies_with_and_without_a_kept_head(cli: CliFn, logged: Path) -> None:
    kept = head_of(cli)
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 0, r.output
    assert "checked 6 events" in r.stdout
    assert "ok" in r.stdout
    out = as_json(cli("audit", "verify", "--json"))
    assert out | {"head": None} == {"ok": True, "events_checked": 6, "head": None, "first_bad_seq": None,
                                    "problem": None, "expect": None, "expect_found": None}  # fmt: skip


def test_a_modified_event_is_named(cli: CliFn, logged: Path) -> None:
    tamper(logged, """UPDATE events SET payload = '{"amount":1,"status":"approved"}' WHERE seq = 4""")
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert "checked 3 events" in r.stdout
    assert "event 4 (opened, case 4) does not match its hash: it was modified" in r.stderr
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


def test_a_truncated_log_verifies_alone_but_fails_against_a_kept_head(cli: CliFn, logged: Path) -> None:
    kept = head_of(cli)
    tamper(logged, "DELETE FROM events WHERE seq >= 5")
    assert cli("audit", "verify").exit_code == 0  # what is left is a consistent chain...
    r = cli("audit", "verify", "--expect", kept)  # ...but the kept head is gone
    assert r.exit_code == 6, r.output
    assert "the kept head 6 is no longer in the log, which ends at event 4" in r.stderr
    assert as_json(cli("audit", "verify", "--expect", kept, "--json"))["expect_found"] is False


def test_a_rewritten_history_fails_against_a_kept_head(cli: CliFn, logged: Path) -> None:
    kept = head_of(cli)
    with sqlite3.connect(logged) as conn:
        prev = conn.execute("SELECT hash FROM events WHERE seq = 5").fetchone()[0]
        at, case_id = conn.execute("SELECT at, case_id FROM events WHERE seq = 6").fetchone()
    forged = {"seq": 6, "at": at, "case_id": case_id, "kind": "opened", "actor": "mallory", "os_user": "x",
              "payload": {"status": "denied"}}  # fmt: skip
    digest = event_hash(prev, forged)
    tamper(logged, "DELETE FROM events WHERE seq = 6",
           f"INSERT INTO events VALUES (6, '{at}', {case_id}, 'opened', 'mallory', 'x', "
           f"'{canonical_json(forged['payload'])}', '{prev}', '{digest}')")  # fmt: skip
    assert cli("audit", "verify").exit_code == 0  # a forger with write access can recompute the chain
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 6, r.output
    assert "the history was rewritten" in r.stderr


def test_an_older_kept_head_still_verifies_after_more_events(cli: CliFn, logged: Path, db_path: Path) -> None:
    kept = head_of(cli)
    seed(db_path, [Spec(customer="later")])
    r = cli("audit", "verify", "--expect", kept)
    assert r.exit_code == 0, r.output
    assert "checked 7 events" in r.stdout


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


@pytest.mark.parametrize(
    ("case_id", "actor", "payload"),
    [
        (None, "alice", {}),
        (7, "Zoë \u202e", {"note": "a \"quoted\" \\ line\nnext", "amount": "12.50", "n": [1, 2.5, None, True]}),
        (2**40, "[red]x[/]", {"nested": {"b": 1, "a": {"é": "ü"}}, "emoji": "\U0001f600"}),
    ],
)
def test_the_fast_check_agrees_with_event_hash(case_id: int | None, actor: str, payload: dict[str, Any]) -> None:
    from empower_cli.audit_verify import _spliced_hash

    at = "2026-11-20T12:00:00.000000Z"
    body = {"seq": 3, "at": at, "case_id": case_id, "kind": "opened", "actor": actor, "os_user": "root",
            "payload": payload}  # fmt: skip
    prev = "ab" * 32
    assert _spliced_hash(prev, 3, at, case_id, "opened", actor, "root", canonical_json(payload)) == (
        event_hash(prev, body))  # fmt: skip


def test_an_equivalent_but_reformatted_payload_still_verifies(cli: CliFn, logged: Path) -> None:
    # Same content, other spacing: the fast check misses, event_hash (the judge) accepts.
    tamper(logged, """UPDATE events SET payload = '{ "amount": 5000, "status": "approved" }' WHERE seq = 2""")
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
