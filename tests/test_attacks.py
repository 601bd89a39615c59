"""Issue 10, from the attacker's side: an ordinary agent with the documented commands, a
policy file of their own and the `sqlite3` shell tries to get past the budget, the four
eyes, the segment grants and the log. Every step runs the real CLI in its own process.

(Real OS identities: tests/test_hardening_shared.py; input and file attacks:
tests/test_hardening_input.py and tests/test_import_rejects_safety.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from empower_cli.services.admin import default_policy_text
from tests.conftest import training_policy_text
from tests.hardening_support import case_new_args, cli_env, run

JUSTIFY = "Loyal customer, item unused, receipt at hand"
SQLITE3 = shutil.which("sqlite3")


class Shop:
    """A policy file, a database, and the real CLI run as a given (claimed) agent."""

    def __init__(self, folder: Path, policy_text: str) -> None:
        self.folder = folder
        self.policy = _write(folder / "policies.toml", policy_text)
        self.db = folder / "data" / "empower.db"

    def __call__(self, *args: str, agent: str = "alice", policy: Path | None = None) -> tuple[int, str, str]:
        env = cli_env(policy or self.policy, self.db, agent=agent)
        return run(list(args), env)

    def json(self, *args: str, agent: str = "alice") -> Any:
        code, out, err = self(*args, "--json", agent=agent)
        assert code == 0, err
        return json.loads(out)

    def sql(self, query: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(query).fetchall()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)
    return path


def sqlite3_shell(db: Path, script: str) -> None:
    """The attacker's tool: the real `sqlite3` command-line shell."""
    if SQLITE3 is None:
        pytest.skip("the sqlite3 shell is not installed (.ci/run installs it: apt-get install sqlite3)")
    subprocess.run([SQLITE3, str(db)], input=script, text=True, check=True, capture_output=True)


@pytest.fixture
def training(tmp_path: Path) -> Shop:
    """Identity override on (EMPOWER_AGENT names the agent), as in a training room."""
    return Shop(tmp_path / "shop", training_policy_text())


@pytest.fixture
def production(tmp_path: Path) -> Shop:
    """The shipped policy: identity override off, this test's OS account has the agent role."""
    return Shop(tmp_path / "shop", default_policy_text())


def attacker_file(shop: Shop, old_new: list[tuple[str, str]]) -> Path:
    """A copy of the policy the agent wrote for themselves, safe mode and all."""
    text = shop.policy.read_text(encoding="utf-8")
    for old, new in old_new:
        assert old in text, old
        text = text.replace(old, new)
    return _write(shop.folder.parent / "mine" / "policies.toml", text)


GENEROUS = [("allow_identity_override = false", "allow_identity_override = true"),
            ('per_customer = "2000.00"', 'per_customer = "50000.00"'),
            ('max_discretion = "200.00"', 'max_discretion = "60000.00"'),
            ('dave = "senior"', 'dave = "supervisor"')]  # fmt: skip


# -- 1. bring your own policy ----------------------------------------------------------------


def test_an_agents_own_policy_file_cannot_let_them_cosign_their_own_case(production: Shop) -> None:
    code, _out, err = production(*case_new_args("C-1", "150.00"))
    assert code == 0, err
    mine = attacker_file(production, GENEROUS)
    code, _, err = production("case", "cosign", "1", agent="dave", policy=mine)
    assert code == 4, err  # EMPOWER_AGENT is ignored: the applied policy has no identity override
    assert "cannot co-sign" in err
    assert f"{mine} (version 2026.11" in err
    assert "is not the applied policy" in err
    assert production.sql("SELECT status FROM cases") == [("pending_cosign",)]


def test_an_agents_own_policy_file_cannot_raise_the_budget_or_their_limit(production: Shop) -> None:
    assert production("case", "list")[0] == 0  # the shop's database, governed by the shop's policy
    mine = attacker_file(production, GENEROUS)
    code, out, err = production(*case_new_args("C-1", "50000.00"), policy=mine)
    assert code == 0, err
    decided = json.loads(out)
    assert decided["status"] == "pending_supervisor"  # beyond the budget and the agent role's 200.00
    assert decided["budget"] == {"limit": "2000.00", "spent": "0.00", "held": "0.00", "remaining": "2000.00"}
    applied = production.json("policy", "log")[0]
    shown = production.json("case", "show", "1")
    assert shown["policy_sha256"] == applied["policy_sha256"]
    assert shown["policy_changed"] is False
    customer = production.json("customer", "show", "C-1")
    assert customer["budget"]["limit"] == "2000.00"


def test_an_agent_cannot_apply_a_policy_even_one_that_makes_them_a_supervisor(training: Shop) -> None:
    assert training("case", "list")[0] == 0  # the first use applies the shipped file
    mine = attacker_file(training, [('dave = "senior"', 'dave = "supervisor"\nalice = "supervisor"')])
    code, _, err = training("policy", "apply", "--note", "mine now", agent="alice", policy=mine)
    assert code == 4, err
    assert "may not apply a policy" in err
    assert training.sql("SELECT COUNT(*) FROM policies") == [(1,)]
    code, out, err = training("policy", "apply", "--note", "reviewed", "--json", agent="carol", policy=mine)
    assert code == 0, err
    assert json.loads(out)["number"] == 2
    code, _, err = training("customer", "segment", "C-1", "vip", "--note", "now I can", agent="alice")
    assert code == 0, err  # alice is a supervisor once carol applied it: the database decided


def test_a_currency_change_is_refused_while_the_database_holds_cases(training: Shop) -> None:
    assert training(*case_new_args("C-1", "50.00"))[0] == 0
    kwd = attacker_file(training, [('currency = "USD"', 'currency = "KWD"')])
    code, _, err = training("policy", "apply", agent="carol", policy=kwd)
    assert code == 3, err
    assert "currency KWD (3 minor digits) differs" in err
    assert training.sql("SELECT currency FROM policies") == [("USD",)]
    assert training.json("customer", "show", "C-1")["budget"]["spent"] == "50.00"


# -- 2. import as a supervisor -----------------------------------------------------------------


def test_an_agent_cannot_import_an_approved_supervisor_only_case(training: Shop, tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text(
        "external_id,customer_id,agent,opened_at,case_type,action,amount,status,justification,supervisor,"
        "fact.nights\nX-1,C-1,alice,2026-01-05,hotel_complaint,full_stay_refund,1900.00,approved,"
        f'"{JUSTIFY}",carol,3\n', encoding="utf-8")  # fmt: skip
    for extra in ((), ("--dry-run",)):
        code, _, err = training("import", "cases", str(history), *extra, agent="alice")
        assert code == 4, err
        assert "may not import cases" in err
    assert training.sql("SELECT COUNT(*) FROM cases") == [(0,)]
    code, _out, err = training("import", "cases", str(history), "--json", agent="carol")
    assert code == 0, err
    assert training.sql("SELECT imported_by, supervisor FROM cases") == [("carol", "carol")]


# -- 3. promote a customer ---------------------------------------------------------------------


def test_an_agent_cannot_claim_a_segment_but_a_supervisor_can_grant_one(training: Shop) -> None:
    code, _, err = training(*case_new_args("C-5", "10.00"), "--segment", "vip", agent="alice")
    assert code == 4, err
    assert "only a role with can_approve may put them in 'vip'" in err
    assert training.sql("SELECT COUNT(*) FROM cases") == [(0,)]
    assert training.json("customer", "show", "C-5")["budget"]["limit"] == "2000.00"
    code, _, err = training("customer", "segment", "C-5", "vip", "--note", "please", agent="alice")
    assert code == 4, err
    granted = training.json("customer", "segment", "C-5", "vip", "--note", "Gold card since 2019", agent="carol")
    assert granted["previous"] is None
    assert granted["changed"] is True
    assert training.sql("SELECT kind, actor FROM events WHERE kind = 'segment_set'") == [("segment_set", "carol")]
    code, out, err = training(*case_new_args("C-5", "10.00"), "--segment", "vip", agent="alice")
    assert code == 0, err  # naming the segment the customer has changes nothing: allowed
    assert json.loads(out)["budget"]["limit"] == "5000.00"
    assert training.sql("SELECT segment FROM cases") == [("vip",)]


# -- 4. edit the table, keep the log ------------------------------------------------------------


def _kept_head(shop: Shop) -> str:
    code, out, err = shop("audit", "head")
    assert code == 0, err
    return out.strip()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE cases SET status = 'denied' WHERE id = 1;", "case 1: status is 'denied'"),
        ("UPDATE cases SET discretionary_amount = 1, held_amount = 1 WHERE id = 1;", "case 1: discretionary_amount"),
        ("UPDATE cases SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = 1;", "case 1: expires_at"),
        ("UPDATE cases SET agent = 'dave' WHERE id = 2;", "case 2: agent"),
        ("UPDATE cases SET in_policy = 1 WHERE id = 2;", "case 2: in_policy"),
        ("DELETE FROM cases WHERE id = 1;", "case 1 is in the log but not in the cases table"),
        ("INSERT INTO cases (id, opened_at, agent, customer_id, case_type, action, amount, discretionary_amount,"
         " held_amount, in_policy, status, facts, rules, reasons) SELECT 9, opened_at, agent, customer_id,"
         " case_type, action, amount, 0, 0, 1, 'approved', facts, rules, reasons FROM cases WHERE id = 2;",
         "case 9 has no events"),
        ("UPDATE customers SET segment = 'vip' WHERE customer_id = 'C-1';", "customer 'C-1' is in segment 'vip'"),
        ("INSERT INTO customers VALUES ('C-ghost', 'vip', '2026-01-01');", "customer 'C-ghost' has no case"),
        ("UPDATE policies SET text = replace(text, '2000.00', '9000.00');", "policy #1: text differs"),
        ("DELETE FROM policies;", "has no row in the policies table"),
    ],
)  # fmt: skip
def test_a_direct_edit_of_the_tables_is_named_by_verify(training: Shop, edit: str, named: str) -> None:
    assert training(*case_new_args("C-1", "150.00"))[0] == 0  # pending_cosign, 150.00 held
    assert training(*case_new_args("C-2", "40.00"))[0] == 0  # approved at once
    head = _kept_head(training)
    assert training("audit", "verify", "--expect", head)[0] == 0
    sqlite3_shell(training.db, edit)
    code, out, err = training("audit", "verify", "--expect", head, "--json")
    assert code == 6, (edit, out, err)
    assert named in json.loads(out)["problem"], out
    assert err.count("\n") == 1
    assert named in err


def test_a_denial_written_in_sqlite3_frees_the_budget_but_verify_says_so(training: Shop) -> None:
    assert training(*case_new_args("C-1", "1900.00"))[0] == 0  # to a supervisor, held
    before = training.json("customer", "show", "C-1")["budget"]
    assert before["held"] == "1900.00"
    sqlite3_shell(training.db, "UPDATE cases SET status = 'denied', settled_at = opened_at WHERE id = 1;")
    assert training.json("customer", "show", "C-1")["budget"]["held"] == "0.00"
    code, _, err = training("audit", "verify")
    assert code == 6
    assert "case 1: status is 'denied' in the table but 'pending_supervisor' by its events" in err


def test_a_raised_limit_written_into_the_policies_table_decides_nothing(training: Shop) -> None:
    assert training("case", "list")[0] == 0
    sqlite3_shell(training.db, "UPDATE policies SET text = replace(text, '\"2000.00\"', '\"90000.00\"');")
    code, out, err = training(*case_new_args("C-1", "5000.00"))
    assert code == 0, err
    assert json.loads(out)["budget"]["limit"] == "2000.00"  # the log's policy governs, not the copy


def test_a_policy_event_edited_in_place_is_refused_by_every_command(training: Shop) -> None:
    assert training(*case_new_args("C-1", "40.00"))[0] == 0
    sqlite3_shell(training.db, "DROP TRIGGER events_no_update;\n"
                  "UPDATE events SET payload = replace(payload, '\\\"2000.00\\\"', '\\\"90000.00\\\"')"
                  " WHERE kind = 'policy_applied';")  # fmt: skip
    assert "90000.00" in str(training.sql("SELECT payload FROM events WHERE kind = 'policy_applied'"))
    code, _, err = training(*case_new_args("C-1", "5000.00"))
    assert code == 1, err
    assert "does not match its SHA-256" in err
    code, _, err = training("audit", "verify")
    assert code == 6, err


# -- the first policy of a database that already holds history ----------------------------------


def test_a_database_with_history_gets_its_first_policy_only_from_its_owner(training: Shop) -> None:
    """A database from before policies were applied (schema 5 and older): whoever opens it
    first would otherwise make their own file govern it."""
    import datetime as dt

    from empower_cli.policy.load import load_policy
    from empower_cli.services.cases import CaseInput, open_case
    from empower_cli.services.identity import Identity
    from empower_cli.store.sqlite import Store

    policy = load_policy(training.policy)
    with Store(training.db) as store:  # history recorded without an applied policy, as before schema 6
        inputs = CaseInput(customer_id="C-1", case_type="hotel_complaint", facts={"nights": "2"},
                           action="goodwill_credit", amount="20.00", justification=JUSTIFY)  # fmt: skip
        open_case(inputs, policy=policy, store=store, identity=Identity("alice", "alice", policy.roles["agent"]),
                  now=dt.datetime.now(dt.timezone.utc))  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("handing the database file to another account needs root")
    owner = os.stat(training.db).st_uid
    os.chown(training.db, 65534, -1)  # nobody's: this account is no longer its owner
    try:
        code, _, err = training("case", "list")
        assert code == 4, err
        assert "its owner must apply the first one" in err
        assert training.sql("SELECT COUNT(*) FROM policies") == [(0,)]
    finally:
        os.chown(training.db, owner, -1)
    code, _, err = training("case", "list")
    assert code == 0, err
    assert training.sql("SELECT number, note FROM policies") == [(1, "first policy")]
    assert training("audit", "verify")[0] == 0
