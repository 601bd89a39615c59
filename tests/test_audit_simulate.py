"""`empower policy simulate NEW.toml`: recorded cases replayed under the policy in use and
under a new file; the counts are worked out here from the seeded history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import Spec, seed
from tests.conftest import JUSTIFICATION, CliFn, as_json, training_policy_text, write_policy

WINDOW = "max = 15, bend_max = 30"


def new_policy(tmp_path: Path, old: str, new: str, name: str = "new.toml") -> Path:
    text = training_policy_text()
    assert old in text
    return write_policy(tmp_path, text.replace(old, new), name=name)


def late_return(cli: CliFn, days: int, customer: str = "C-1", amount: str = "50.00", agent: str = "bob") -> int:
    r = cli("case", "new", "--customer", customer, "--type", "late_return", "--fact", f"days_since_purchase={days}",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", amount,
            "--justification", JUSTIFICATION, "--json", agent=agent)  # fmt: skip
    assert r.exit_code == 0, r.output
    return int(as_json(r)["case_id"])


def simulate(cli: CliFn, path: Path, *args: str) -> Any:
    r = cli("policy", "simulate", str(path), "--json", *args)
    assert r.exit_code == 0, r.output
    return as_json(r)


def test_a_wider_return_window_brings_bent_returns_into_policy(cli: CliFn, tmp_path: Path) -> None:
    ids = {days: late_return(cli, days) for days in (10, 20, 25, 40)}
    out = simulate(cli, new_policy(tmp_path, WINDOW, "max = 30, bend_max = 45"))
    assert out["cases"] == 4
    assert out["became_in_policy"] == 2  # 20 and 25 days
    assert out["left_policy"] == 0
    assert out["changed"] == 3  # and 40 days: blocked (supervisor) before, bent (approved) after
    assert out["transitions"] == [{"from": "pending_supervisor", "to": "approved", "count": 1}]
    assert out["discretion_before"] == "100.00"  # 20 and 25 days approved; 40 still waits for a supervisor
    assert out["discretion_after"] == "50.00"  # only 40 days is an exception now
    assert {r["id"]: r for r in out["rules"]} == {
        "return-window": {"id": "return-window", "bent_before": 2, "bent_after": 1,
                          "blocked_before": 1, "blocked_after": 0},
        "receipt": {"id": "receipt", "bent_before": 0, "bent_after": 0, "blocked_before": 0, "blocked_after": 0},
    }  # fmt: skip
    assert out["examples"] == {"became_in_policy": [ids[20], ids[25]], "pending_supervisor->approved": [ids[40]]}
    assert out["not_replayable"] == 0


def test_a_stricter_window_takes_cases_out_of_policy(cli: CliFn, tmp_path: Path) -> None:
    ids = [late_return(cli, days) for days in (3, 10, 12)]
    out = simulate(cli, new_policy(tmp_path, WINDOW, "max = 5, bend_max = 30"))
    assert (out["cases"], out["changed"], out["left_policy"], out["became_in_policy"]) == (3, 2, 2, 0)
    assert out["examples"]["left_policy"] == ids[1:]
    assert out["discretion_before"] == "0.00"
    assert out["discretion_after"] == "100.00"


def test_the_same_policy_changes_nothing(cli: CliFn, policy_path: Path) -> None:
    for days in (10, 20, 40):
        late_return(cli, days)
    out = simulate(cli, policy_path)
    assert (out["cases"], out["changed"], out["became_in_policy"], out["left_policy"]) == (3, 0, 0, 0)
    assert out["discretion_before"] == out["discretion_after"] == "50.00"
    assert out["examples"] == {}


def test_cases_the_new_policy_cannot_express_are_counted_not_replayed(cli: CliFn, tmp_path: Path) -> None:
    ids = [late_return(cli, days) for days in (10, 20)]
    out = simulate(cli, new_policy(tmp_path, 'actions = ["refund", "exchange", "goodwill_credit"]',
                                   'actions = ["exchange", "goodwill_credit"]'))  # fmt: skip
    assert out["cases"] == 0
    assert out["not_replayable"] == 2
    [reason] = out["not_replayable_reasons"]
    assert reason.startswith("after: action: 'refund' is not an action for late_return")
    assert out["examples"] == {"not_replayable_after": ids}


def test_since_replays_recent_cases_and_counts_earlier_spend_in_the_budget(cli: CliFn, db_path: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    days = {"days_since_purchase": "20", "has_receipt": "yes"}
    rules = [("return-window", "bent"), ("receipt", "pass")]
    seed(db_path, [
        Spec(agent="bob", customer="C-9", amount=195_000, hours_ago=24 * 40, facts=days, rules=rules),
        Spec(agent="bob", customer="C-9", amount=10_000, hours_ago=24 * 2, facts=days, rules=rules),
    ])  # fmt: skip
    bigger = new_policy(tmp_path, 'per_customer = "2000.00"', 'per_customer = "5000.00"')
    out = simulate(cli, bigger, "--since", "30d")
    assert out["cases"] == 1  # only the recent case is replayed...
    # ...but the 1950.00 approved 40 days ago leaves 50.00 of the 2000.00 budget: a supervisor
    # must approve the 100.00 under today's file, while the 5000.00 budget lets it through.
    assert out["transitions"] == [{"from": "pending_supervisor", "to": "approved", "count": 1}]
    assert out["discretion_after"] == "100.00"
    everything = simulate(cli, bigger)
    assert everything["cases"] == 2


def test_the_table_output_summarises_the_changes(cli: CliFn, tmp_path: Path) -> None:
    for days in (20, 40):
        late_return(cli, days)
    r = cli("policy", "simulate", str(new_policy(tmp_path, WINDOW, "max = 30, bend_max = 45")))
    assert r.exit_code == 0, r.output
    assert "replayed 2 cases" in r.stdout
    assert "became in policy 1" in r.stdout
    assert "pending_supervisor" in r.stdout


@pytest.mark.parametrize(("text", "code"), [("[policy]\nname = 1\n", 3), (None, 3)])
def test_a_bad_or_missing_new_policy_exits_3(cli: CliFn, tmp_path: Path, text: str | None, code: int) -> None:
    path = tmp_path / "bad.toml"
    if text is not None:
        write_policy(tmp_path, text, name="bad.toml")
    r = cli("policy", "simulate", str(path))
    assert r.exit_code == code, r.output


def test_a_bad_since_exits_2(cli: CliFn, policy_path: Path) -> None:
    r = cli("policy", "simulate", str(policy_path), "--since", "soon")
    assert r.exit_code == 2, r.output
    assert "--since" in r.stderr


def test_progress_is_reported_while_replaying_a_long_history(db_path: Path, policy: Any) -> None:
    from empower_cli.services.simulate import count_cases
    from empower_cli.services.simulate import simulate as replay
    from empower_cli.store.sqlite import Store

    rules = [("return-window", "bent"), ("receipt", "pass")]
    seed(db_path, [Spec(customer=f"P-{k}", rules=rules, facts={"days_since_purchase": "20", "has_receipt": "yes"})
                   for k in range(2_500)])  # fmt: skip
    seen: list[int] = []
    with Store(db_path) as store:
        result = replay(store, current=policy, new=policy, on_progress=seen.append)
        assert count_cases(store, None) == 2_500
    assert seen == [1_000, 2_000]
    assert result.cases == 2_500
    assert result.changed == 0


def test_simulate_on_a_terminal_shows_the_result(tmp_path: Path, db_path: Path, policy_path: Path) -> None:
    import os
    import sys

    import pexpect

    seed(db_path, [Spec(agent="bob", facts={"days_since_purchase": "20", "has_receipt": "yes"},
                        rules=[("return-window", "bent"), ("receipt", "pass")])])  # fmt: skip
    wider = new_policy(tmp_path, WINDOW, "max = 30, bend_max = 45")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(EMPOWER_POLICY=str(policy_path), EMPOWER_DB=str(db_path), NO_COLOR="1", TERM="dumb", COLUMNS="100")
    child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "policy", "simulate", str(wider)], env=env,
                          encoding="utf-8", timeout=60)  # fmt: skip
    child.expect_exact("became in policy 1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
