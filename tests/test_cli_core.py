"""The core commands through the real CLI (CliRunner) on a real database file.

case new / show / list, customer show, policy check / show, init, --version, identity,
and bad input on every flag: exit 2, one line naming the field, nothing recorded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from empower_cli import __version__
from empower_cli.cli.app import app
from empower_cli.services.identity import os_account
from tests.conftest import JUSTIFICATION, LATE_RETURN, CliFn, as_json, training_policy_text, write_policy
from tests.errors_support import said

SPEC_KEYS = {
    "case_id", "status", "in_policy", "discretionary_amount", "rules", "reasons", "budget",
    "policy_version", "policy_sha256",
}  # fmt: skip


def new(cli: CliFn, amount: str = "89.90", *extra: str, agent: str = "alice") -> Result:
    return cli(*LATE_RETURN, "--amount", amount, "--justification", JUSTIFICATION, *extra, agent=agent)


def snapshot(db: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """Cases, their events and customers (the first use of a database applies its policy:
    that event belongs to no case)."""
    if not db.exists():
        return [], [], []
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT * FROM cases ORDER BY id").fetchall(),
                conn.execute("SELECT * FROM events WHERE case_id IS NOT NULL ORDER BY seq").fetchall(),
                conn.execute("SELECT * FROM customers ORDER BY customer_id").fetchall())  # fmt: skip


# -- case new ---------------------------------------------------------------------------


def test_case_new_json_has_exactly_the_spec_keys_plus_the_next_step(cli: CliFn, policy: Any) -> None:
    r = new(cli)
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert set(out) == SPEC_KEYS | {"next_step"}
    assert isinstance(out["case_id"], int)
    assert out["discretionary_amount"] == "89.90"
    assert out["policy_version"] == "2026.11"
    assert out["policy_sha256"] == policy.sha256
    assert all({"id", "result", "text"} <= set(rule) for rule in out["rules"])  # SPEC §5: at least these
    assert out["rules"][0] == {"id": "return-window", "result": "bent", "text": "Returns are accepted within 15 days.",
                               "fact": "days_since_purchase", "value": 20, "op": "max", "limit": 15,
                               "bend_limit": 30}  # issue 14: the numbers behind the result  # fmt: skip
    assert out["rules"][1] == {"id": "receipt", "result": "pass", "text": "A receipt is required.",
                               "fact": "has_receipt", "value": True, "op": "equals", "limit": True}  # fmt: skip
    assert all(isinstance(reason, str) for reason in out["reasons"])
    assert set(out["budget"]) == {"limit", "spent", "held", "remaining"}
    assert all(isinstance(v, str) for v in out["budget"].values())
    assert r.stderr == ""


def test_json_works_before_the_command_and_after_it(cli: CliFn) -> None:
    args = [a for a in LATE_RETURN if a != "--json"]
    before = cli("--json", *args, "--amount", "10", "--justification", JUSTIFICATION)
    after = cli(*args, "--amount", "10", "--justification", JUSTIFICATION, "--json")
    assert before.exit_code == 0, before.output
    assert after.exit_code == 0, after.output
    assert as_json(before)["case_id"] == 1
    assert as_json(after)["case_id"] == 2
    for command in (("case", "show", "1"), ("case", "list"), ("customer", "show", "C-1"), ("policy", "show"),
                    ("policy", "check")):  # fmt: skip
        first, last = cli("--json", *command), cli(*command, "--json")
        assert first.exit_code == last.exit_code == 0, first.output + last.output
        assert json.loads(first.stdout) == json.loads(last.stdout)


def test_case_new_without_json_prints_the_verdict_and_the_next_step(cli: CliFn) -> None:
    args = [a for a in LATE_RETURN if a != "--json"]
    r = cli(*args, "--amount", "150.00", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    assert "return-window" in r.stderr  # the evaluation is for the person: stderr (issue 14)
    assert "bent" in r.stderr
    assert "recorded case 1" in r.stdout
    assert "empower case cosign 1" in r.stdout


# -- case show / list --------------------------------------------------------------------


def test_case_show_gives_facts_rules_history_and_budget(cli: CliFn) -> None:
    assert new(cli, "150.00").exit_code == 0
    r = cli("case", "show", "1", "--json")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert out["case_id"] == 1
    assert out["status"] == "pending_cosign"
    assert out["facts"] == {"days_since_purchase": 20, "has_receipt": True}
    assert out["rules"][0]["result"] == "bent"
    assert out["held"] == "150.00"
    assert out["justification"] == JUSTIFICATION
    assert [e["kind"] for e in out["events"]] == ["opened"]
    assert out["budget"] == {"limit": "2000.00", "spent": "0.00", "held": "150.00", "remaining": "1850.00"}
    human = cli("case", "show", "1")
    assert human.exit_code == 0, human.output
    assert "Returns are accepted within 15 days." in human.stdout
    assert "pending_cosign" in human.stdout


def test_case_show_prints_user_text_literally(cli: CliFn) -> None:
    args = [a for a in LATE_RETURN if a != "--json"]
    text = "[red]not red[/] and [bold]plain[/bold] text"
    assert cli(*args, "--amount", "20", "--justification", text).exit_code == 0
    r = cli("case", "show", "1")
    assert r.exit_code == 0, r.output
    assert "[red]not red[/]" in r.stdout


def test_case_show_of_an_unknown_case_exits_5_and_a_bad_id_exits_2(cli: CliFn) -> None:
    r = cli("case", "show", "42")
    assert r.exit_code == 5, r.output
    assert r.stderr.strip() == "error: case 42 does not exist"
    for bad in ("abc", "0", "-1", "1.5"):
        r = cli("case", "show", bad)
        assert r.exit_code == 2, (bad, r.output)


def test_case_list_filters_by_customer_agent_status_and_time(cli: CliFn) -> None:
    assert new(cli, "10.00").exit_code == 0
    assert new(cli, "150.00", agent="bob").exit_code == 0
    other = [a if a != "C-1" else "C-2" for a in LATE_RETURN]
    assert cli(*other, "--amount", "10.00", "--justification", JUSTIFICATION).exit_code == 0

    def ids(*args: str) -> list[int]:
        r = cli("case", "list", *args, "--json")
        assert r.exit_code == 0, r.output
        listed = as_json(r)
        assert listed["truncated"] is (args == ("--limit", "1"))
        return [c["case_id"] for c in listed["rows"]]

    assert ids() == [3, 2, 1]
    assert ids("--customer", "C-2") == [3]
    assert ids("--agent", "bob") == [2]
    assert ids("--status", "pending_cosign") == [2]
    assert ids("--status", "approved", "--customer", "C-1") == [1]
    assert ids("--since", "1d") == [3, 2, 1]
    assert ids("--since", "2999-01-01") == []
    assert ids("--limit", "1") == [3]
    assert ids("--limit", "0") == [3, 2, 1]  # 0: all
    assert ids("--status", "denied") == []


@pytest.mark.parametrize(
    ("args", "field"),
    [(("--status", "aproved"), "--status"), (("--since", "yesterday"), "--since"),
     (("--since", "2026-13-01"), "--since"), (("--limit", "-1"), "--limit"), (("--limit", "x"), "--limit")],
)  # fmt: skip
def test_case_list_refuses_bad_filters_with_exit_2(cli: CliFn, args: tuple[str, ...], field: str) -> None:
    r = cli("case", "list", *args)
    assert r.exit_code == 2, r.output
    assert field in r.output


# -- customer show ----------------------------------------------------------------------------


def test_customer_show_adds_up_limit_spent_held_remaining(cli: CliFn) -> None:
    for amount in ("10.00", "150.00", "20.00", "250.00"):
        assert new(cli, amount).exit_code == 0
    r = cli("customer", "show", "C-1", "--json")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    b = {k: int(v.replace(".", "")) for k, v in out["budget"].items()}
    assert b["limit"] == b["spent"] + b["held"] + b["remaining"]
    assert out["budget"] == {"limit": "2000.00", "spent": "30.00", "held": "400.00", "remaining": "1570.00"}
    assert out["discretionary_cases"] == 4
    assert [c["case_id"] for c in out["cases"]] == [4, 3, 2, 1]
    human = cli("customer", "show", "C-1")
    assert human.exit_code == 0, human.output
    assert "1570.00" in human.stdout


def test_customer_show_for_an_unknown_customer_shows_the_full_budget(cli: CliFn) -> None:
    r = cli("customer", "show", "nobody", "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["budget"]["remaining"] == "2000.00"


# -- policy check / show ---------------------------------------------------------------------


def test_policy_show_describes_the_policy(cli: CliFn) -> None:
    r = cli("policy", "show", "--json")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert out["budget"]["per_customer"] == "2000.00"
    assert out["case_types"]["late_return"]["rules"][0]["bend"] == 30
    human = cli("policy", "show")
    assert human.exit_code == 0, human.output
    assert "late_return" in human.stdout
    assert "return-window" in human.stdout


def test_policy_check_uses_the_policy_in_use_by_default(cli: CliFn, policy_path: Path) -> None:
    r = cli("policy", "check")
    assert r.exit_code == 0, r.output
    assert str(policy_path) in r.stdout


# -- init and --version -------------------------------------------------------------------------


def run(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {"EMPOWER_POLICY": None, "EMPOWER_DB": None, "EMPOWER_AGENT": None}
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), env={**base, **(env or {})})
    finally:
        os.chdir(old)


def test_init_writes_a_private_policy_and_creates_the_database(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        r = run("init", str(tmp_path / "shop"))
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    policy = tmp_path / "shop" / "policies.toml"
    assert stat.S_IMODE(policy.stat().st_mode) == 0o644
    db = tmp_path / "shop" / "data" / "empower.db"
    with sqlite3.connect(db) as conn:  # the file now governs the new database, applied by this account
        assert conn.execute("SELECT kind, actor FROM events").fetchall() == [("policy_applied", os_account())]
        assert conn.execute("SELECT text FROM policies").fetchall() == [(policy.read_text(encoding="utf-8"),)]
    assert "applied policy version 2026.11 as #1" in r.stdout
    assert r.stdout.endswith(f"next: cd {tmp_path / 'shop'} && empower case new\n")  # where the commands find it
    assert run("init", cwd=tmp_path / "shop").stdout.endswith("next: empower case new\n")
    assert run("policy", "check", cwd=tmp_path / "shop").exit_code == 0
    again = run("--json", "init", str(tmp_path / "shop"))
    assert again.exit_code == 0, again.output
    assert as_json(again)["policy_created"] is False
    assert as_json(again)["policy_applied"] is False
    assert as_json(again)["applied"]["number"] == 1


def test_init_with_a_database_elsewhere_names_it_in_the_next_step(tmp_path: Path) -> None:
    """Found in review: `--db X init shop` said `cd shop && empower case new`, which, followed,
    records into shop/data/empower.db, a second database. The step now names X, and
    following it records into X."""
    import shlex
    import subprocess
    import sys

    db = tmp_path / "elsewhere.db"
    r = run("--db", str(db), "init", "shop", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    step = r.stdout.splitlines()[-1]
    assert step == f"next: cd shop && empower --db {db} case new"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    args = shlex.split(step.removeprefix("next: cd shop && empower "))
    done = subprocess.run([sys.executable, "-m", "empower_cli", *args, "--customer", "C-1", "--type", "late_return",
                           "--fact", "days_since_purchase=3", "--fact", "has_receipt=yes", "--action", "refund",
                           "--amount", "5.00", "--json"], cwd=tmp_path / "shop", env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (1,)
    assert not (tmp_path / "shop" / "data").exists()  # no second database
    with_env = run("init", "shop", cwd=tmp_path, env={"EMPOWER_DB": str(db)})
    assert with_env.stdout.splitlines()[-1] == "next: cd shop && empower case new"  # the shell keeps EMPOWER_DB


def test_init_refuses_to_keep_an_unsafe_existing_policy(tmp_path: Path) -> None:
    path = write_policy(tmp_path)
    os.chmod(path, 0o666)
    r = run("init", str(tmp_path))
    assert r.exit_code == 3, r.output
    assert "group- or world-writable" in r.stderr


def test_init_accepts_json_after_the_command(tmp_path: Path) -> None:
    r = run("init", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["policy_created"] is True


def test_version_needs_no_policy(tmp_path: Path) -> None:
    r = run("--version", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"empower {__version__}"


def test_every_command_in_a_fresh_directory_with_no_policy_exits_3(tmp_path: Path) -> None:
    for args in (("case", "list"), ("customer", "show", "C"), ("policy", "show"), ("policy", "check")):
        r = run(*args, cwd=tmp_path)
        assert r.exit_code == 3, (args, r.output)
        assert r.stderr.count("\n") == 1


# -- identity -----------------------------------------------------------------------------------


def identity_policy(tmp_path: Path, *, override: bool, default_role: bool = True) -> Path:
    text = training_policy_text()
    if not override:
        text = text.replace("allow_identity_override = true", "allow_identity_override = false")
    if not default_role:
        text = text.replace('default_role = "agent"', "")
    return write_policy(tmp_path, text)


def open_as(tmp_path: Path, policy: Path, env: dict[str, str | None]) -> Result:
    return run("--policy", str(policy), "--db", str(tmp_path / "e.db"), *LATE_RETURN, "--amount", "10",
               "--justification", JUSTIFICATION, env=env)  # fmt: skip


def test_empower_agent_is_ignored_without_identity_override(tmp_path: Path) -> None:
    policy = identity_policy(tmp_path, override=False)
    r = open_as(tmp_path, policy, {"EMPOWER_AGENT": "carol", "USER": "mallory", "LOGNAME": "mallory"})
    assert r.exit_code == 0, r.output
    with sqlite3.connect(tmp_path / "e.db") as conn:
        actors = conn.execute("SELECT actor, os_user FROM events WHERE case_id = 1").fetchall()
        assert actors == [(os_account(), os_account())]
        assert conn.execute("SELECT agent FROM cases").fetchall() == [(os_account(),)]


def test_user_and_logname_do_not_change_the_agent(tmp_path: Path) -> None:
    policy = identity_policy(tmp_path, override=True)
    r = open_as(tmp_path, policy, {"USER": "carol", "LOGNAME": "carol"})
    assert r.exit_code == 0, r.output
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("SELECT actor FROM events WHERE case_id = 1").fetchall() == [(os_account(),)]


def test_identity_override_records_the_claimed_agent_and_the_real_account(tmp_path: Path) -> None:
    policy = identity_policy(tmp_path, override=True)
    r = open_as(tmp_path, policy, {"EMPOWER_AGENT": "carol"})
    assert r.exit_code == 0, r.output
    with sqlite3.connect(tmp_path / "e.db") as conn:
        actors = conn.execute("SELECT actor, os_user FROM events WHERE case_id = 1").fetchall()
        assert actors == [("carol", os_account())]


def test_an_unknown_login_without_a_default_role_is_refused_with_exit_4(tmp_path: Path) -> None:
    policy = identity_policy(tmp_path, override=False, default_role=False)
    r = open_as(tmp_path, policy, {"EMPOWER_AGENT": "carol"})
    assert r.exit_code == 4, r.output
    assert f"login {os_account()!r} has no role" in r.stderr
    assert snapshot(tmp_path / "e.db")[:2] == ([], [])
    other = tmp_path / "claimed"
    other.mkdir()
    claimed = identity_policy(other, override=True, default_role=False)
    r = open_as(other, claimed, {"EMPOWER_AGENT": "zed"})
    assert r.exit_code == 4, r.output
    assert "login 'zed' has no role" in r.stderr


def test_a_bad_empower_agent_is_refused_with_exit_2(tmp_path: Path) -> None:
    policy = identity_policy(tmp_path, override=True)
    r = open_as(tmp_path, policy, {"EMPOWER_AGENT": "bob\x1b[2J"})
    assert r.exit_code == 2, r.output
    assert "EMPOWER_AGENT" in r.stderr


# -- bad input on every flag: exit 2, one line naming the field, nothing recorded ------------------

BASE = {
    "--customer": "C-1", "--type": "late_return", "--action": "refund", "--amount": "89.90",
    "--justification": JUSTIFICATION,
}  # fmt: skip
FACTS = ["days_since_purchase=20", "has_receipt=yes"]


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--customer", "", "customer"), ("--customer", "C\x1b]0;pwned\x07", "customer"),
        ("--customer", "x" * 5000, "customer"), ("--segment", "vip\n", "segment"),
        ("--type", "late_retrun", "type"), ("--type", "", "type"),
        ("--action", "free_repair", "action"), ("--action", "", "action"),
        ("--amount", "-5", "amount"), ("--amount", "1e3", "amount"), ("--amount", "12.345", "amount"),
        ("--amount", "1,000.00", "amount"), ("--amount", "NaN", "amount"), ("--amount", "inf", "amount"),
        ("--amount", "9" * 400, "amount"), ("--amount", "", "amount"), ("--amount", "$5", "amount"),
        ("--justification", "short", "justification"), ("--justification", "x" * 20 + "\x00", "justification"),
        ("--reaction", "furious", "Invalid value for '--reaction'"),  # a declared choice: Click names it
        ("--fact", "days_since_purchase", "--fact"), ("--fact", "=3", "--fact"),
        ("--fact", "colour=red", "fact 'colour'"), ("--fact", "days_since_purchase=soon", "fact days_since_purchase"),
        ("--fact", "days_since_purchase=-3", "fact days_since_purchase"),
        ("--fact", "days_since_purchase=99999999999999999999", "fact days_since_purchase"),
        ("--fact", "has_receipt=perhaps", "fact has_receipt"), ("--fact", "days_since_purchase=4", "--fact"),
    ],
)  # fmt: skip
def test_bad_input_on_each_flag_exits_2_naming_the_field_and_records_nothing(
    cli: CliFn, db_path: Path, flag: str, value: str, field: str
) -> None:
    assert new(cli).exit_code == 0  # something already recorded, which must not change
    before = snapshot(db_path)
    options = {**BASE}
    facts = list(FACTS)
    if flag == "--fact":
        if value == "days_since_purchase=4":
            facts.append(value)  # the same fact twice
        elif value.startswith(("days_since_purchase=", "has_receipt=")):
            facts = [f for f in facts if f.split("=")[0] != value.split("=")[0]] + [value]
        else:
            facts.append(value)
    else:
        options[flag] = value
    args = ["case", "new", "--json"]
    for k, v in options.items():
        args += [k, v]
    for f in facts:
        args += ["--fact", f]
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    lines = said(r).splitlines()  # under --json: one line of JSON, {"error": {"code", "message", ...}}
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {field}"), lines[0]
    assert json.loads(r.stderr)["error"]["code"] in ("invalid_input", "usage")
    assert "Traceback" not in r.stderr
    assert snapshot(db_path) == before


@pytest.mark.parametrize("missing", ["--customer", "--type", "--action", "--amount"])
def test_a_missing_value_of_case_new_exits_2_naming_it(cli: CliFn, db_path: Path, missing: str) -> None:
    args = ["case", "new", "--json", *(x for k, v in BASE.items() if k != missing for x in (k, v))]
    for f in FACTS:
        args += ["--fact", f]
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert f"error: {missing.lstrip('-')}: is required" in said(r)
    assert snapshot(db_path)[:2] == ([], [])


def test_a_missing_fact_exits_2_naming_it(cli: CliFn, db_path: Path) -> None:
    args = ["case", "new", "--json", *(x for k, v in BASE.items() for x in (k, v)), "--fact", FACTS[0]]
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert "error: fact has_receipt: is required" in said(r)


@pytest.mark.parametrize(
    "args",
    [("case", "show"), ("customer", "show"), ("case", "list", "--limit"), ("case", "new", "--amount"),
     ("case", "list", "--no-such-flag"), ("case", "frobnicate"), ("--db",)],
)  # fmt: skip
def test_usage_errors_and_missing_required_options_exit_2_not_1(cli: CliFn, args: tuple[str, ...]) -> None:
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_an_object_without_its_required_reason_exits_2(cli: CliFn) -> None:
    assert new(cli, "150.00").exit_code == 0
    r = cli("case", "object", "1", agent="bob")
    assert r.exit_code == 2, r.output


def test_global_json_on_a_terminal_never_starts_the_walk_through(tmp_path: Path) -> None:
    import sys

    import pexpect

    policy = write_policy(tmp_path)
    env = {**os.environ, "EMPOWER_POLICY": str(policy), "EMPOWER_DB": str(tmp_path / "e.db"), "EMPOWER_AGENT": "alice"}
    child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "--json", "case", "new"], env=env,
                          cwd=str(tmp_path), encoding="utf-8", timeout=30)  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2, child.before
    assert "customer: is required" in (child.before or "")


def test_case_list_since_an_early_year_or_far_back_behaves(cli: CliFn) -> None:
    assert new(cli, "10.00").exit_code == 0
    r = cli("case", "list", "--since", "0500-01-01", "--json")
    assert r.exit_code == 0, r.output
    assert [c["case_id"] for c in as_json(r)["rows"]] == [1]
    r = cli("case", "list", "--since", "999999d")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --since:")


def test_an_unknown_segment_is_refused_rather_than_silently_given_the_base_limit(cli: CliFn, db_path: Path) -> None:
    r = cli(*LATE_RETURN, "--amount", "10", "--segment", "vpi", "--justification", JUSTIFICATION)
    assert r.exit_code == 2, r.output
    assert "segment" in r.stderr
    assert "vip" in r.stderr
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0


def test_a_segment_given_by_a_supervisor_gets_its_larger_limit_and_is_remembered(cli: CliFn) -> None:
    r = cli(*LATE_RETURN, "--amount", "10", "--segment", "vip", "--justification", JUSTIFICATION, agent="carol")
    assert r.exit_code == 0, r.output
    assert as_json(r)["budget"]["limit"] == "5000.00"
    shown = cli("customer", "show", "C-1", "--json")
    assert as_json(shown)["budget"]["limit"] == "5000.00"
