"""SPEC §4 transition table through the real CLI: co-sign, objection, approval, denial,
outcome; the four-eyes rule on every entry point; exit codes 2, 4, 5 and 6."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    BACKENDS,
    CliFn,
    apply_policy,
    as_json,
    backend_db,
    open_db,
    training_policy_text,
    write_policy,
)
from tests.workflow_support import budget, case_row, events, grant_segment, new_case


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_db(request, tmp_path)

# -- pending_cosign ---------------------------------------------------------------------


def test_a_colleagues_cosign_approves_the_case_and_spends_its_hold(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli)
    assert budget(cli) == {"limit": "2000.00", "spent": "0.00", "held": "150.00", "remaining": "1850.00"}
    r = cli("case", "cosign", str(cid), "--note", "Checked the receipt", "--json", agent="bob")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert out["status"] == "approved"
    assert out["event"] == "cosigned"
    assert out["by"] == "bob"
    assert out["note"] == "Checked the receipt"
    assert out["budget"] == {"limit": "2000.00", "spent": "150.00", "held": "0.00", "remaining": "1850.00"}
    row = case_row(db_path, cid)
    assert (row["status"], row["cosigner"], row["supervisor"]) == ("approved", "bob", None)
    assert row["settled_at"] is not None
    assert events(db_path, cid) == [("opened", "alice"), ("cosigned", "bob")]
    assert budget(cli)["spent"] == "150.00"


def test_cosign_without_a_note_is_allowed(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli)
    r = cli("case", "cosign", str(cid), agent="dave")
    assert r.exit_code == 0, r.output
    assert f"co-signed case {cid}" in r.stdout
    assert case_row(db_path, cid)["cosigner"] == "dave"


def test_an_objection_sends_the_case_to_a_supervisor_and_keeps_the_hold(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli)
    r = cli("case", "object", str(cid), "--reason", "Third exception this month", "--json", agent="bob")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert (out["status"], out["escalated"]) == ("pending_supervisor", True)
    assert out["reason"] == "Third exception this month"
    row = case_row(db_path, cid)
    assert (row["status"], row["objections"]) == ("pending_supervisor", 1)
    assert budget(cli)["held"] == "150.00"
    assert events(db_path, cid) == [("opened", "alice"), ("objected", "bob")]
    # now only a supervisor can settle it: a co-sign is refused and says why
    r = cli("case", "cosign", str(cid), agent="dave")
    assert r.exit_code == 6, r.output
    assert "waiting for a supervisor" in r.stderr
    assert "bob objected" in r.stderr
    r = cli("case", "approve", str(cid), "--note", "Fair, loyal customer", agent="carol")
    assert r.exit_code == 0, r.output
    assert budget(cli)["spent"] == "150.00"


def test_without_objection_escalates_the_case_stays_waiting_for_a_cosign(
    cli: CliFn, db_path: Path, tmp_path: Path
) -> None:
    write_policy(tmp_path, training_policy_text().replace("objection_escalates = true", "objection_escalates = false"))
    cid = new_case(cli)
    r = cli("case", "object", str(cid), "--reason", "Not convinced", "--json", agent="bob")
    assert r.exit_code == 0, r.output
    assert as_json(r)["status"] == "pending_cosign"
    assert as_json(r)["escalated"] is False
    row = case_row(db_path, cid)
    assert (row["status"], row["objections"]) == ("pending_cosign", 1)
    assert budget(cli)["held"] == "150.00"
    # the same colleague cannot object twice; another colleague can still co-sign
    r = cli("case", "object", str(cid), "--reason", "Still not convinced", agent="bob")
    assert r.exit_code == 6, r.output
    assert "already objected" in r.stderr
    r = cli("case", "cosign", str(cid), agent="dave")
    assert r.exit_code == 0, r.output
    assert events(db_path, cid) == [("opened", "alice"), ("objected", "bob"), ("cosigned", "dave")]


# -- pending_* -> approved / denied by a supervisor ------------------------------------


def test_a_supervisor_approves_an_escalated_case_and_the_hold_is_spent(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli, amount="80.00", receipt="no")
    assert case_row(db_path, cid)["status"] == "pending_supervisor"
    assert budget(cli)["held"] == "80.00"
    r = cli("case", "approve", str(cid), "--note", "Receipt lost in the mail", "--json", agent="carol")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert (out["status"], out["by"], out["spent"], out["over_budget"]) == ("approved", "carol", "80.00", False)
    row = case_row(db_path, cid)
    assert (row["status"], row["supervisor"], row["cosigner"]) == ("approved", "carol", None)
    assert budget(cli) == {"limit": "2000.00", "spent": "80.00", "held": "0.00", "remaining": "1920.00"}
    assert events(db_path, cid)[-1] == ("approved", "carol")


def test_a_supervisor_may_approve_a_case_waiting_for_a_cosign(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli)
    r = cli("case", "approve", str(cid), "--note", "Fine by me", agent="carol")
    assert r.exit_code == 0, r.output
    assert "approved case" in r.stdout
    assert case_row(db_path, cid)["supervisor"] == "carol"


def test_a_supervisor_denies_a_case_and_its_hold_is_voided(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli, amount="300.00")  # above alice's 200.00: pending_supervisor, held
    assert budget(cli)["held"] == "300.00"
    r = cli("case", "deny", str(cid), "--note", "Offered an exchange instead", "--json", agent="carol")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert (out["status"], out["released"]) == ("denied", "300.00")
    assert out["budget"] == {"limit": "2000.00", "spent": "0.00", "held": "0.00", "remaining": "2000.00"}
    row = case_row(db_path, cid)
    assert (row["status"], row["supervisor"]) == ("denied", "carol")
    assert events(db_path, cid) == [("opened", "alice"), ("denied", "carol")]
    r = cli("case", "list", "--status", "denied", "--json")
    assert [c["case_id"] for c in as_json(r)["rows"]] == [cid]


def test_denying_a_case_waiting_for_a_cosign_voids_the_hold(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli)
    r = cli("case", "deny", str(cid), "--note", "No", agent="carol")
    assert r.exit_code == 0, r.output
    assert budget(cli)["held"] == "0.00"


def test_approval_is_counted_without_this_cases_own_hold(cli: CliFn, db_path: Path) -> None:
    # 2000.00 held by the case itself: remaining is 0, yet its own hold must not block it
    cid = new_case(cli, amount="2000.00")
    assert budget(cli)["remaining"] == "0.00"
    r = cli("case", "approve", str(cid), "--note", "Exceptional circumstances", agent="carol")
    assert r.exit_code == 0, r.output
    assert budget(cli) == {"limit": "2000.00", "spent": "2000.00", "held": "0.00", "remaining": "0.00"}


def test_approval_beyond_the_remaining_budget_is_refused(cli: CliFn, db_path: Path) -> None:
    first = new_case(cli, amount="1500.00")
    second = new_case(cli, amount="600.00")  # does not fit: pending_supervisor, nothing held
    assert case_row(db_path, second)["held_amount"] == 0
    assert cli("case", "approve", str(first), "--note", "Big one", agent="carol").exit_code == 0
    r = cli("case", "approve", str(second), "--note", "Another", agent="carol")
    assert r.exit_code == 6, r.output
    assert "only 500.00" in r.stderr
    assert case_row(db_path, second)["status"] == "pending_supervisor"
    assert budget(cli) == {"limit": "2000.00", "spent": "1500.00", "held": "0.00", "remaining": "500.00"}


def test_supervisor_may_exceed_lets_the_approval_through_and_says_so(
    cli: CliFn, db_path: Path, tmp_path: Path
) -> None:
    write_policy(tmp_path, training_policy_text().replace("supervisor_may_exceed = false",
                                                          "supervisor_may_exceed = true"))  # fmt: skip
    first = new_case(cli, amount="1500.00")
    second = new_case(cli, amount="600.00")
    assert cli("case", "approve", str(first), "--note", "Big one", agent="carol").exit_code == 0
    r = cli("case", "approve", str(second), "--note", "Recorded override", "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert as_json(r)["over_budget"] is True
    assert budget(cli) == {"limit": "2000.00", "spent": "2100.00", "held": "0.00", "remaining": "-100.00"}


def test_approval_beyond_the_approvers_own_role_limit_is_not_allowed(cli: CliFn, db_path: Path) -> None:
    grant_segment(cli, "V-1", "vip")
    cid = new_case(cli, amount="2500.00", customer="V-1")  # vip limit 5000.00
    assert case_row(db_path, cid)["held_amount"] == 250000
    r = cli("case", "approve", str(cid), "--note", "VIP", agent="carol")  # supervisor max 2000.00
    assert r.exit_code == 4, r.output
    assert "2000.00" in r.stderr
    assert case_row(db_path, cid)["status"] == "pending_supervisor"
    # a denial needs no spending authority
    assert cli("case", "deny", str(cid), "--note", "Too much", agent="carol").exit_code == 0


# -- outcome ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["approved", "pending_cosign", "denied"])
def test_an_outcome_is_recorded_by_anyone_in_any_state(cli: CliFn, db_path: Path, state: str) -> None:
    cid = new_case(cli, amount="50.00" if state == "approved" else "150.00")
    if state == "denied":
        assert cli("case", "deny", str(cid), "--note", "No", agent="carol").exit_code == 0
    before = budget(cli)
    r = cli("case", "outcome", str(cid), "--reaction", "dissatisfied", "--lost", "--json", agent="alice")
    assert r.exit_code == 0, r.output
    assert as_json(r)["status"] == state
    row = case_row(db_path, cid)
    assert (row["status"], row["reaction"], row["retained"]) == (state, "dissatisfied", 0)
    assert events(db_path, cid)[-1] == ("outcome", "alice")
    assert budget(cli) == before
    r = cli("case", "outcome", str(cid), "--reaction", "satisfied", "--retained", agent="dave")
    assert r.exit_code == 0, r.output
    assert "satisfied, retained" in r.stdout
    row = case_row(db_path, cid)
    assert (row["reaction"], row["retained"]) == ("satisfied", 1)
    with open_db(db_path) as store:
        payload = json.loads(store.events(cid)[-1]["payload"])
    assert payload == {"reaction": "satisfied", "retained": True}


# -- four eyes: never the case's own agent --------------------------------------------


@pytest.mark.parametrize(("command", "extra"), [("cosign", []), ("object", ["--reason", "I changed my mind"])])
def test_the_cases_agent_cannot_cosign_or_object_to_it(cli: CliFn, db_path: Path, command: str,
                                                       extra: list[str]) -> None:  # fmt: skip
    cid = new_case(cli, agent="bob")
    r = cli("case", command, str(cid), *extra, agent="bob")
    assert r.exit_code == 4, r.output
    assert "your own case" in r.stderr
    assert events(db_path, cid) == [("opened", "bob")]
    assert case_row(db_path, cid)["status"] == "pending_cosign"


@pytest.mark.parametrize("command", ["approve", "deny"])
def test_a_supervisor_cannot_approve_or_deny_their_own_case(cli: CliFn, db_path: Path, command: str) -> None:
    cid = new_case(cli, agent="carol", amount="50.00", receipt="no")
    assert case_row(db_path, cid)["status"] == "pending_supervisor"
    r = cli("case", command, str(cid), "--note", "Looks fine to me", agent="carol")
    assert r.exit_code == 4, r.output
    assert "your own case" in r.stderr
    assert events(db_path, cid) == [("opened", "carol")]


def test_a_supervisor_cannot_cosign_their_own_case_either(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli, agent="carol")
    assert case_row(db_path, cid)["status"] == "pending_cosign"
    assert cli("case", "cosign", str(cid), agent="carol").exit_code == 4


@pytest.mark.parametrize("agent", ["bob", "dave"])
@pytest.mark.parametrize("command", ["approve", "deny"])
def test_a_role_without_can_approve_may_not_approve_or_deny(cli: CliFn, db_path: Path, agent: str,
                                                            command: str) -> None:  # fmt: skip
    cid = new_case(cli, receipt="no")
    r = cli("case", command, str(cid), "--note", "I would allow it", agent=agent)
    assert r.exit_code == 4, r.output
    assert "can_approve" in r.stderr
    assert case_row(db_path, cid)["status"] == "pending_supervisor"


def test_an_unknown_login_is_refused_everywhere(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    cid = new_case(cli)
    apply_policy(cli, tmp_path, training_policy_text().replace('default_role = "agent"', ""))
    for args in (["queue"], ["cosign", str(cid)], ["object", str(cid), "--reason", "x"],
                 ["approve", str(cid), "--note", "x"], ["deny", str(cid), "--note", "x"],
                 ["outcome", str(cid), "--reaction", "neutral", "--retained"]):  # fmt: skip
        r = cli("case", *args, agent="mallory")
        assert r.exit_code == 4, (args, r.output)
    assert events(db_path) == [("opened", "alice")]


# -- exit codes: 5, 2, 6 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["cosign", "99"], ["object", "99", "--reason", "Bad idea"], ["approve", "99", "--note", "ok"],
     ["deny", "99", "--note", "no"], ["outcome", "99", "--reaction", "neutral", "--retained"]],
)  # fmt: skip
def test_an_unknown_case_is_not_found(cli: CliFn, db_path: Path, args: list[str]) -> None:
    new_case(cli)
    r = cli("case", *args, agent="carol")
    assert r.exit_code == 5, r.output
    assert "case 99 does not exist" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["object", "{id}"], ["object", "{id}", "--reason", "   "], ["object", "{id}", "--reason", "bad\x1b[2Jtext"],
     ["approve", "{id}"], ["approve", "{id}", "--note", ""], ["deny", "{id}"],
     ["cosign", "{id}", "--note", "x" * 1_000_001],
     ["outcome", "{id}", "--reaction", "happy", "--retained"], ["outcome", "{id}", "--reaction", "neutral"],
     ["outcome", "{id}", "--retained"], ["outcome", "{id}", "--reaction", "neutral", "--retained", "--lost"],
     ["approve", "abc", "--note", "x"]],
)  # fmt: skip
def test_bad_input_is_exit_2_and_nothing_is_recorded(cli: CliFn, db_path: Path, args: list[str]) -> None:
    cid = new_case(cli)
    agent = "carol" if args[0] in ("approve", "deny") else "bob"
    r = cli("case", *[a.replace("{id}", str(cid)) for a in args], agent=agent)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) <= 6  # one line from us; Click's usage block at most
    assert events(db_path) == [("opened", "alice")]
    row = case_row(db_path, cid)
    assert (row["status"], row["reaction"], row["objections"]) == ("pending_cosign", None, 0)


def test_a_missing_note_names_the_flag_in_one_line(cli: CliFn) -> None:
    cid = new_case(cli, receipt="no")
    r = cli("case", "approve", str(cid), agent="carol")
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == ["error: Missing option '--note'. (see: empower case approve --help)"]
    r = cli("case", "approve", str(cid), "--note", "  ", agent="carol")
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == ["error: --note: is required: say why you approve"]


def test_approving_a_denied_case_says_who_denied_it(cli: CliFn, db_path: Path) -> None:
    cid = new_case(cli, receipt="no")
    assert cli("case", "deny", str(cid), "--note", "No receipt", agent="carol").exit_code == 0
    r = cli("case", "approve", str(cid), "--note", "On second thought", agent="carol")
    assert r.exit_code == 6, r.output
    assert f"case {cid} was already denied by carol at " in r.stderr
    assert case_row(db_path, cid)["status"] == "denied"
    assert [k for k, _ in events(db_path, cid)] == ["opened", "denied"]


@pytest.mark.parametrize(
    ("command", "agent", "extra"),
    [("cosign", "dave", []), ("object", "dave", ["--reason", "Too late"]),
     ("approve", "carol", ["--note", "Again"]), ("deny", "carol", ["--note", "Undo"])],
)  # fmt: skip
def test_no_step_applies_to_a_cosigned_case(cli: CliFn, db_path: Path, command: str, agent: str,
                                            extra: list[str]) -> None:  # fmt: skip
    cid = new_case(cli)
    assert cli("case", "cosign", str(cid), agent="bob").exit_code == 0
    r = cli("case", command, str(cid), *extra, agent=agent)
    assert r.exit_code == 6, r.output
    assert f"case {cid} was already approved (co-signed) by bob at " in r.stderr
    assert budget(cli)["spent"] == "150.00"
    assert [k for k, _ in events(db_path, cid)] == ["opened", "cosigned"]


def test_a_case_approved_when_opened_cannot_be_settled_again(cli: CliFn) -> None:
    cid = new_case(cli, amount="50.00")
    r = cli("case", "deny", str(cid), "--note", "Should not have", agent="carol")
    assert r.exit_code == 6, r.output
    assert "already approved when alice opened it" in r.stderr


def test_objecting_to_a_case_waiting_for_a_supervisor_is_a_conflict(cli: CliFn) -> None:
    cid = new_case(cli, receipt="no")
    r = cli("case", "object", str(cid), "--reason", "Agree it should be checked", agent="bob")
    assert r.exit_code == 6, r.output
    assert "escalated when alice opened it" in r.stderr


# -- the recorded evaluation rules, whatever the policy says now -------------------------


def test_a_pending_case_is_settled_under_its_recorded_evaluation(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    cid = new_case(cli)  # 150.00, return window bent under 2026.11
    changed = (training_policy_text()
               .replace('version = "2026.11"', 'version = "2026.12"')
               .replace("max = 15, bend_max = 30", "max = 30, bend_max = 60")
               .replace('above = "100.00"', 'above = "500.00"'))  # fmt: skip
    apply_policy(cli, tmp_path, changed)
    r = cli("case", "show", str(cid), "--json")
    assert as_json(r)["policy_changed"] is True
    assert as_json(r)["policy_version"] == "2026.11"
    r = cli("case", "show", str(cid))
    assert "the policy has changed since" in r.stdout
    # still a co-sign case with 150.00 of discretion, although today it would be in policy
    r = cli("case", "queue", "--json", agent="bob")
    assert [(q["case_id"], q["waiting_for"], q["discretionary_amount"]) for q in as_json(r)] == [
        (cid, "cosign", "150.00")]  # fmt: skip
    r = cli("case", "cosign", str(cid), agent="bob")
    assert r.exit_code == 0, r.output
    row = case_row(db_path, cid)
    assert (row["status"], row["discretionary_amount"], row["policy_version"]) == ("approved", 15000, "2026.11")
    assert budget(cli)["spent"] == "150.00"


# -- the queue --------------------------------------------------------------------------


def test_the_queue_shows_what_waits_for_me_oldest_first(cli: CliFn) -> None:
    a = new_case(cli, agent="alice")  # co-sign
    b = new_case(cli, agent="bob", customer="C-2")  # bob's own co-sign case
    c = new_case(cli, agent="alice", receipt="no")  # supervisor
    d = new_case(cli, agent="alice", amount="50.00")  # approved at once: waits for nobody
    r = cli("case", "queue", "--json", agent="bob")
    assert r.exit_code == 0, r.output
    assert [(q["case_id"], q["waiting_for"]) for q in as_json(r)] == [(a, "cosign")]
    r = cli("case", "queue", "--json", agent="carol")
    items = as_json(r)
    assert [(q["case_id"], q["waiting_for"]) for q in items] == [(a, "cosign"), (b, "cosign"), (c, "supervisor")]
    assert d not in [q["case_id"] for q in items]
    sup = items[2]
    assert sup["rules_bent"] == ["return-window"]
    assert sup["rules_blocked"] == ["receipt"]
    assert (sup["amount"], sup["customer_id"], sup["agent"]) == ("150.00", "C-1", "alice")
    assert sup["time_left"] in ("23h", "24h")
    r = cli("case", "queue", "--json", agent="alice")
    assert [q["case_id"] for q in as_json(r)] == [b]


def test_the_queue_table_names_the_case_and_its_bent_rules(cli: CliFn) -> None:
    cid = new_case(cli, receipt="no")
    r = cli("case", "queue", "--format", "table", agent="carol")
    assert r.exit_code == 0, r.output
    assert "waiting for carol (supervisor)" in r.stdout
    assert "return-window" in r.stdout
    assert "receipt!" in r.stdout
    assert f"{cid} supervisor" in r.stdout
    r = cli("case", "queue", "--format", "table", agent="bob")
    assert "nothing waits for bob" in r.stdout


def test_a_settled_case_leaves_the_queue(cli: CliFn) -> None:
    cid = new_case(cli)
    assert cli("case", "cosign", str(cid), agent="bob").exit_code == 0
    assert as_json(cli("case", "queue", "--json", agent="carol")) == []


def test_json_before_the_command_works_for_workflow_steps(cli: CliFn) -> None:
    cid = new_case(cli)
    r = cli("--json", "case", "cosign", str(cid), agent="bob")
    assert r.exit_code == 0, r.output
    assert as_json(r)["status"] == "approved"
