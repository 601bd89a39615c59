"""SPEC §4, rule by rule: validation, rule results, status, reasons and the budget effect.

The pure functions are tested on a small policy written for the purpose; the SPEC §4
examples run through the real CLI on the shipped policy and read the database back.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.errors import InvalidInput
from empower_cli.core.evaluate import check_justification, evaluate, evaluate_rule, validate_proposal
from empower_cli.core.models import BudgetState, Evaluation, Policy, Proposal
from empower_cli.policy.load import parse_policy
from tests.conftest import JUSTIFICATION, CliFn, as_json

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()

EVAL_POLICY = """
[policy]
version = "eval-1"
currency = "USD"
min_justification_chars = 10

[budget]
per_customer = "1000.00"
window_days = 30
max_cases = 3

[roles.agent]
max_discretion = "200.00"
[roles.boss]
max_discretion = "5000.00"
can_approve = true

[agents]
default_role = "agent"

[cosign]
above = "100.00"

[actions.refund]
title = "Refund"
[actions.credit]
title = "Credit"
always_discretionary = true
[actions.big]
title = "Big"
frontline = false

[case_types.t]
title = "Everything"
risk = "low"
actions = ["refund", "credit", "big"]
facts = [
  { name = "days", type = "int", ask = "Days", min = 0 },
  { name = "score", type = "int", ask = "Score" },
  { name = "ok", type = "bool", ask = "OK?" },
  { name = "tier", type = "choice", ask = "Tier", choices = ["gold", "silver", "bronze"] },
  { name = "bought", type = "date", ask = "Bought on" },
  { name = "price", type = "money", ask = "Price", max = "100000.00" },
  { name = "note", type = "text", ask = "Note" },
]
rules = [
  { id = "days", text = "Within 15 days.", fact = "days", max = 15, bend_max = 30 },
  { id = "score", text = "Score at least 50.", fact = "score", min = 50, bend_min = 40 },
  { id = "ok", text = "Must be ok.", fact = "ok", equals = true },
  { id = "tier", text = "Gold or silver.", fact = "tier", one_of = ["gold", "silver"] },
  { id = "age", text = "Bought within 30 days.", fact = "bought", max_age_days = 30, bend_max_age_days = 60 },
  { id = "price", text = "Price up to 100.", fact = "price", max = "100.00", bend_max = "150.00" },
]

[case_types.hard]
title = "Hard and unbendable rules"
risk = "medium"
actions = ["refund", "credit"]
facts = [{ name = "n", type = "int", ask = "N" }, { name = "m", type = "int", ask = "M" }]
rules = [
  { id = "hard-n", text = "N up to 15, hard.", fact = "n", max = 15, bend_max = 30, hard = true },
  { id = "plain-m", text = "M up to 5, no bend.", fact = "m", max = 5 },
]

[case_types.risky]
title = "High risk"
risk = "high"
actions = ["refund", "credit"]
facts = [{ name = "n", type = "int", ask = "N" }]
rules = [{ id = "risky-n", text = "N up to 1.", fact = "n", max = 1, bend_max = 10 }]
"""

GOOD_FACTS = {
    "days": "10", "score": "60", "ok": "yes", "tier": "gold",
    "bought": (TODAY - dt.timedelta(days=5)).isoformat(), "price": "80.00", "note": "fine",
}  # fmt: skip


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(EVAL_POLICY.encode(), "eval.toml")


def propose(policy: Policy, *, case_type: str = "t", action: str = "refund", amount: str = "50.00",
            escalate: bool = False, justification: str = "A fair reason here", **facts: str) -> Proposal:  # fmt: skip
    base = GOOD_FACTS if case_type == "t" else {"n": "0", "m": "0"} if case_type == "hard" else {"n": "0"}
    return validate_proposal(
        policy, agent="alice", customer_id="C-1", case_type=case_type, facts={**base, **facts},
        action=action, amount=amount, justification=justification, escalate=escalate,
    )  # fmt: skip


def decide(policy: Policy, *, role: str = "agent", budget: BudgetState | None = None, **kw: Any) -> Evaluation:
    return evaluate(
        propose(policy, **kw), policy, role=policy.roles[role],
        budget=budget or BudgetState(limit=100000), now=NOW,
    )  # fmt: skip


def results(ev: Evaluation) -> dict[str, str]:
    return {r.id: r.result for r in ev.rules}


# -- step 2: each rule operator, at its boundaries --------------------------------


@pytest.mark.parametrize(
    ("fact", "value", "expected"),
    [
        ("days", "15", "pass"), ("days", "16", "bent"), ("days", "30", "bent"), ("days", "31", "blocked"),
        ("score", "50", "pass"), ("score", "49", "bent"), ("score", "40", "bent"), ("score", "39", "blocked"),
        ("ok", "yes", "pass"), ("ok", "no", "blocked"),
        ("tier", "gold", "pass"), ("tier", "SILVER", "pass"), ("tier", "bronze", "blocked"),
        ("bought", (TODAY - dt.timedelta(days=30)).isoformat(), "pass"),
        ("bought", (TODAY - dt.timedelta(days=31)).isoformat(), "bent"),
        ("bought", (TODAY - dt.timedelta(days=60)).isoformat(), "bent"),
        ("bought", (TODAY - dt.timedelta(days=61)).isoformat(), "blocked"),
        ("bought", (TODAY + dt.timedelta(days=3)).isoformat(), "pass"),
        ("price", "100.00", "pass"), ("price", "100.01", "bent"), ("price", "150", "bent"),
        ("price", "150.01", "blocked"),
    ],
)  # fmt: skip
def test_each_rule_operator_passes_bends_or_blocks_at_its_limits(
    policy: Policy, fact: str, value: str, expected: str
) -> None:
    facts: dict[str, Any] = {fact: value}
    ev = decide(policy, **facts)
    assert results(ev)[fact if fact not in ("bought",) else "age"] == expected
    others = {k: v for k, v in results(ev).items() if k != (fact if fact != "bought" else "age")}
    assert set(others.values()) == {"pass"}


def test_a_hard_rule_blocks_even_within_its_bend_limit(policy: Policy) -> None:
    ev = decide(policy, case_type="hard", n="16")
    assert results(ev) == {"hard-n": "blocked", "plain-m": "pass"}
    assert ev.status == "pending_supervisor"


def test_a_rule_without_a_bend_limit_blocks_beyond_its_standard(policy: Policy) -> None:
    ev = decide(policy, case_type="hard", m="6")
    assert results(ev) == {"hard-n": "pass", "plain-m": "blocked"}
    assert ev.status == "pending_supervisor"
    assert "rule plain-m blocked: M up to 5, no bend." in ev.reasons


def test_max_age_days_counts_from_the_now_passed_in(policy: Policy) -> None:
    rule = policy.case_types["t"].rules[4]
    bought = dt.date(2026, 1, 1)
    assert evaluate_rule(rule, bought, now=dt.datetime(2026, 1, 31, tzinfo=dt.timezone.utc)) == "pass"
    assert evaluate_rule(rule, bought, now=dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)) == "bent"


# -- steps 3 to 6 ------------------------------------------------------------------


def test_an_in_policy_case_is_approved_with_no_discretion_and_no_budget_effect(policy: Policy) -> None:
    budget = BudgetState(limit=100000, spent=5000, held=2000, count=1)
    ev = decide(policy, amount="900.00", budget=budget)
    assert (ev.status, ev.in_policy, ev.discretionary_amount, ev.held, ev.spent) == ("approved", True, 0, 0, 0)
    assert ev.budget_after == budget
    assert ev.reasons == ("in policy",)
    assert ev.justification_required is False


def test_a_bent_rule_within_the_agents_discretion_and_below_the_cosign_threshold_is_approved_and_spent(
    policy: Policy,
) -> None:
    ev = decide(policy, days="20", amount="100.00")
    assert (ev.status, ev.in_policy, ev.discretionary_amount, ev.spent, ev.held) == ("approved", False, 10000, 10000, 0)
    assert ev.budget_after == BudgetState(limit=100000, spent=10000, held=0, count=1)
    assert ev.justification_required
    assert "rule days bent: Within 15 days." in ev.reasons


def test_discretion_strictly_above_the_cosign_threshold_waits_for_a_cosign_and_is_held(policy: Policy) -> None:
    ev = decide(policy, days="20", amount="100.01")
    assert (ev.status, ev.held, ev.spent) == ("pending_cosign", 10001, 0)
    assert ev.budget_after == BudgetState(limit=100000, spent=0, held=10001, count=1)
    assert any("co-sign threshold of 100.00" in r for r in ev.reasons)


def test_a_blocked_rule_goes_to_a_supervisor_and_holds_what_fits(policy: Policy) -> None:
    ev = decide(policy, ok="no", amount="20.00")
    assert (ev.status, ev.in_policy, ev.discretionary_amount, ev.held, ev.spent) == (
        "pending_supervisor", False, 2000, 2000, 0,
    )  # fmt: skip
    assert "a rule is blocked: only a supervisor can approve" in ev.reasons


def test_an_always_discretionary_action_is_out_of_policy_even_when_every_rule_passes(policy: Policy) -> None:
    ev = decide(policy, action="credit", amount="30.00")
    assert set(results(ev).values()) == {"pass"}
    assert (ev.status, ev.in_policy, ev.discretionary_amount, ev.spent) == ("approved", False, 3000, 3000)
    assert "action credit is always discretionary" in ev.reasons


def test_an_action_not_for_frontline_goes_to_a_supervisor(policy: Policy) -> None:
    ev = decide(policy, action="big", amount="10.00")
    assert (ev.status, ev.in_policy, ev.discretionary_amount, ev.held) == ("pending_supervisor", False, 1000, 1000)
    assert "action big may only be granted by a supervisor" in ev.reasons


def test_a_high_risk_case_out_of_policy_goes_to_a_supervisor(policy: Policy) -> None:
    ev = decide(policy, case_type="risky", n="2", amount="5.00")
    assert results(ev) == {"risky-n": "bent"}
    assert ev.status == "pending_supervisor"
    assert "case type risky is high risk and the case is out of policy" in ev.reasons


def test_a_high_risk_case_in_policy_is_approved(policy: Policy) -> None:
    ev = decide(policy, case_type="risky", n="1", amount="500.00")
    assert (ev.status, ev.in_policy, ev.discretionary_amount) == ("approved", True, 0)


def test_discretion_above_the_roles_maximum_goes_to_a_supervisor(policy: Policy) -> None:
    ev = decide(policy, days="20", amount="200.01")
    assert ev.status == "pending_supervisor"
    assert ev.held == 20001
    assert "discretion 200.01 exceeds the agent role's limit of 200.00" in ev.reasons
    assert decide(policy, days="20", amount="200.00").status == "pending_cosign"


def test_a_role_with_a_higher_maximum_only_needs_a_cosign(policy: Policy) -> None:
    assert decide(policy, role="boss", days="20", amount="900.00").status == "pending_cosign"


def test_discretion_beyond_the_remaining_budget_goes_to_a_supervisor_and_holds_nothing(policy: Policy) -> None:
    budget = BudgetState(limit=100000, spent=90000, held=5000, count=2)
    over = decide(policy, days="20", amount="50.01", budget=budget)
    assert (over.status, over.held, over.spent) == ("pending_supervisor", 0, 0)
    assert "discretion 50.01 exceeds the customer's remaining budget of 50.00" in over.reasons
    assert over.budget_after == budget
    exact = decide(policy, days="20", amount="50.00", budget=budget)
    assert (exact.status, exact.spent) == ("approved", 5000)
    assert exact.budget_after.remaining == 0


def test_the_max_cases_limit_sends_further_discretion_to_a_supervisor(policy: Policy) -> None:
    full = BudgetState(limit=100000, spent=3000, count=3)
    ev = decide(policy, days="20", amount="10.00", budget=full)
    assert ev.status == "pending_supervisor"
    assert "the customer already had 3 discretionary cases in 30 days (limit 3)" in ev.reasons
    assert decide(policy, days="20", amount="10.00", budget=BudgetState(limit=100000, count=2)).status == "approved"
    assert decide(policy, amount="10.00", budget=full).status == "approved"  # in policy: no discretion


def test_an_agent_may_escalate_an_in_policy_case(policy: Policy) -> None:
    ev = decide(policy, escalate=True, amount="10.00")
    assert (ev.status, ev.in_policy, ev.held) == ("pending_supervisor", True, 0)
    assert "the agent asked to escalate to a supervisor" in ev.reasons
    assert ev.justification_required


def test_every_reason_that_applies_is_reported(policy: Policy) -> None:
    ev = decide(policy, ok="no", days="20", amount="300.00", escalate=True, action="credit")
    assert ev.status == "pending_supervisor"
    for expected in ("rule ok blocked: Must be ok.", "rule days bent: Within 15 days.",
                     "action credit is always discretionary",
                     "a rule is blocked: only a supervisor can approve",
                     "discretion 300.00 exceeds the agent role's limit of 200.00",
                     "the agent asked to escalate to a supervisor"):  # fmt: skip
        assert expected in ev.reasons


def test_the_supervisor_reasons_win_over_the_cosign_threshold(policy: Policy) -> None:
    ev = decide(policy, ok="no", amount="150.00")
    assert ev.status == "pending_supervisor"
    assert not any("co-sign" in r for r in ev.reasons)


def test_a_zero_amount_out_of_policy_needs_no_budget(policy: Policy) -> None:
    ev = decide(policy, days="20", amount="0")
    assert (ev.status, ev.in_policy, ev.discretionary_amount) == ("approved", False, 0)
    assert ev.budget_after.count == 0


# -- the justification ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "needed"),
    [({"days": "20"}, True), ({"escalate": True}, True), ({"ok": "no"}, True), ({}, False),
     ({"days": "20", "amount": "0"}, False)],
)  # fmt: skip
def test_a_justification_is_required_when_discretion_is_used_or_the_case_escalates(
    policy: Policy, kw: dict[str, Any], needed: bool
) -> None:
    short = propose(policy, justification="   too short   ", **kw)
    ev = evaluate(short, policy, role=policy.roles["agent"], budget=BudgetState(limit=100000), now=NOW)
    if needed:
        with pytest.raises(InvalidInput, match=r"justification: .*at least 10 characters \(got 9\)"):
            check_justification(short, ev, policy)
    else:
        check_justification(short, ev, policy)
    check_justification(propose(policy, justification="Ten chars!", **kw), ev, policy)


# -- step 1: validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"customer_id": ""}, "customer", "is required"),
        ({"customer_id": "C\x1b[31m"}, "customer", "contains U+001B (control character)"),
        ({"customer_id": "C-5\u2060"}, "customer", "contains U+2060 (WORD JOINER, format character); identifiers"),
        ({"customer_id": "Ce\u0301"}, "customer", "not in Unicode NFC form (U+0065 U+0301 should be written U+00E9)"),
        ({"segment": "vip\u200b"}, "segment", "contains U+200B (ZERO WIDTH SPACE, format character)"),
        ({"customer_id": "C" * 201}, "customer", "at most 200"),
        ({"case_type": None}, "type", "is required"),
        ({"case_type": "nope"}, "type", "unknown case type 'nope'"),
        ({"facts": {**GOOD_FACTS, "colour": "red"}}, "fact 'colour'", "is not a fact of t"),
        ({"facts": {k: v for k, v in GOOD_FACTS.items() if k != "days"}}, "fact days", "is required"),
        ({"facts": {**GOOD_FACTS, "days": "ten"}}, "fact days", "expected a whole number"),
        ({"facts": {**GOOD_FACTS, "days": "-1"}}, "fact days", "must be at least 0"),
        ({"facts": {**GOOD_FACTS, "days": "1e3"}}, "fact days", "expected a whole number"),
        ({"facts": {**GOOD_FACTS, "ok": "maybe"}}, "fact ok", "expected yes or no"),
        ({"facts": {**GOOD_FACTS, "tier": "platinum"}}, "fact tier", "expected one of gold, silver, bronze"),
        ({"facts": {**GOOD_FACTS, "bought": "23/11/2026"}}, "fact bought", "expected a date YYYY-MM-DD"),
        ({"facts": {**GOOD_FACTS, "bought": "2026-02-30"}}, "fact bought", "is not a real date"),
        ({"facts": {**GOOD_FACTS, "price": "1.005"}}, "fact price", "at most 2 decimals"),
        ({"facts": {**GOOD_FACTS, "price": "100000.01"}}, "fact price", "must be at most 100000.00"),
        ({"facts": {**GOOD_FACTS, "note": "a\x00b"}}, "fact note", "control character"),
        ({"facts": {**GOOD_FACTS, "note": "  "}}, "fact note", "is required (Note)"),
        ({"facts": {**GOOD_FACTS, "note": "x" * 2001}}, "fact note", "at most 2000"),
        ({"action": None}, "action", "is required"),
        ({"action": "rebook"}, "action", "'rebook' is not an action for t"),
        ({"amount": None}, "amount", "is required"),
        ({"amount": "-5"}, "amount", "at most 2 decimals"),
        ({"amount": "1e3"}, "amount", "at most 2 decimals"),
        ({"amount": "12.345"}, "amount", "at most 2 decimals"),
        ({"amount": "1,000"}, "amount", "at most 2 decimals"),
        ({"amount": "NaN"}, "amount", "at most 2 decimals"),
        ({"amount": "Infinity"}, "amount", "at most 2 decimals"),
        ({"amount": "99999999999999999"}, "amount", "at most 2 decimals"),
        ({"amount": "9999999999999999"}, "amount", "at most 100000000.00, got 9999999999999999"),
        ({"amount": "100000000.01"}, "amount", "at most 100000000.00, got 100000000.01"),
        ({"amount": "١٢"}, "amount", "at most 2 decimals"),
        ({"segment": " "}, "segment", "is required"),
        ({"reaction": "angry"}, "reaction", "expected one of satisfied, neutral, dissatisfied"),
        ({"justification": "x" * 1_000_001}, "justification", "is 1000001 characters long; at most 1000000"),
        ({"justification": "bad\x07bell"}, "justification", "control character"),
    ],
)  # fmt: skip
def test_invalid_input_names_the_field_and_the_problem(
    policy: Policy, change: dict[str, Any], field: str, problem: str
) -> None:
    args: dict[str, Any] = {
        "agent": "alice", "customer_id": "C-1", "case_type": "t", "facts": GOOD_FACTS,
        "action": "refund", "amount": "10.00", **change,
    }  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        validate_proposal(policy, **args)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value)


def test_valid_input_is_typed_and_text_is_kept_exactly(policy: Policy) -> None:
    p = validate_proposal(
        policy, agent="alice", customer_id="C'1; DROP TABLE cases; --", case_type="t",
        facts={**GOOD_FACTS, "tier": "Silver", "ok": "No", "note": "  «naïve» 😀 [red]x[/]  "},
        action="refund", amount=" 12.5 ", justification="line one\nline two", reaction="neutral",
    )  # fmt: skip
    assert p.customer_id == "C'1; DROP TABLE cases; --"
    assert p.facts["tier"] == "silver"
    assert p.facts["ok"] is False
    assert p.facts["note"] == "  «naïve» 😀 [red]x[/]  "
    assert p.facts["bought"] == TODAY - dt.timedelta(days=5)
    assert p.facts["price"] == 8000
    assert p.amount == 1250
    assert p.justification == "line one\nline two"


@pytest.mark.parametrize("customer", [" C-1", "C-1 ", "\tC-1"])
def test_a_customer_id_with_surrounding_spaces_is_refused_not_made_a_second_customer(
    policy: Policy, customer: str
) -> None:
    with pytest.raises(InvalidInput, match="customer"):
        validate_proposal(policy, agent="alice", customer_id=customer, case_type="t", facts=GOOD_FACTS,
                          action="refund", amount="1")  # fmt: skip


# -- the SPEC §4 examples, through the CLI on the shipped policy ----------------------


def new_case(cli: CliFn, *args: str, agent: str = "alice", customer: str = "C-1") -> dict[str, Any]:
    r = cli("case", "new", "--customer", customer, *args, "--json", agent=agent)
    assert r.exit_code == 0, r.output
    return dict(as_json(r))


def late_return(days: int, receipt: str = "yes", amount: str = "89.90", action: str = "refund") -> tuple[str, ...]:
    return ("--type", "late_return", "--fact", f"days_since_purchase={days}", "--fact", f"has_receipt={receipt}",
            "--action", action, "--amount", amount, "--justification", JUSTIFICATION)  # fmt: skip


def test_a_return_inside_the_window_is_in_policy(cli: CliFn) -> None:
    out = new_case(cli, *late_return(10, amount="500.00"))
    assert (out["status"], out["in_policy"], out["discretionary_amount"]) == ("approved", True, "0.00")
    assert out["budget"]["spent"] == "0.00"


def test_a_return_a_few_days_late_is_bent_and_approved_within_discretion(cli: CliFn) -> None:
    out = new_case(cli, *late_return(20))
    assert [{k: r[k] for k in ("id", "result", "text")} for r in out["rules"]] == [
        {"id": "return-window", "result": "bent", "text": "Returns are accepted within 15 days."},
        {"id": "receipt", "result": "pass", "text": "A receipt is required."},
    ]
    assert (out["status"], out["discretionary_amount"], out["budget"]["spent"]) == ("approved", "89.90", "89.90")


def test_a_return_beyond_the_bend_limit_or_without_receipt_goes_to_a_supervisor(cli: CliFn) -> None:
    late = new_case(cli, *late_return(31))
    assert late["status"] == "pending_supervisor"
    assert late["budget"]["held"] == "89.90"
    no_receipt = new_case(cli, *late_return(3, receipt="no"), customer="C-2")
    assert no_receipt["status"] == "pending_supervisor"
    assert {"id": "receipt", "result": "blocked", "text": "A receipt is required.", "fact": "has_receipt",
            "value": False, "op": "equals", "limit": True} in no_receipt["rules"]  # fmt: skip


def test_a_goodwill_credit_above_the_cosign_threshold_waits_for_a_colleague(cli: CliFn) -> None:
    out = new_case(cli, *late_return(5, amount="150.00", action="goodwill_credit"))
    assert (out["status"], out["in_policy"], out["budget"]["held"]) == ("pending_cosign", False, "150.00")
    assert out["next_step"] == f"ask a colleague to run: empower case cosign {out['case_id']}"


def test_discretion_above_the_agents_maximum_needs_a_supervisor_but_a_senior_only_a_cosign(cli: CliFn) -> None:
    assert new_case(cli, *late_return(20, amount="250.00"))["status"] == "pending_supervisor"
    assert new_case(cli, *late_return(20, amount="250.00"), agent="dave", customer="C-2")["status"] == "pending_cosign"


def test_a_full_stay_refund_is_for_supervisors_only(cli: CliFn) -> None:
    out = new_case(cli, "--type", "hotel_complaint", "--fact", "nights=2", "--action", "full_stay_refund",
                   "--amount", "120.00", "--justification", JUSTIFICATION)  # fmt: skip
    assert (out["status"], out["in_policy"]) == ("pending_supervisor", False)


def test_high_risk_advice_goes_to_a_supervisor_once_out_of_policy(cli: CliFn) -> None:
    base = ("--type", "financial_advice", "--fact", "topic=pension", "--amount", "20.00",
            "--justification", JUSTIFICATION)  # fmt: skip
    assert new_case(cli, *base, "--action", "fee_waiver")["status"] == "approved"
    assert new_case(cli, *base, "--action", "goodwill_credit")["status"] == "pending_supervisor"


def test_a_vip_segment_has_the_larger_budget(cli: CliFn) -> None:
    from tests.workflow_support import grant_segment

    grant_segment(cli, "C-1", "vip")
    out = new_case(cli, *late_return(20))
    assert out["budget"]["limit"] == "5000.00"


def test_the_seventh_discretionary_case_in_the_window_goes_to_a_supervisor(cli: CliFn, db_path: Path) -> None:
    for _ in range(6):
        assert new_case(cli, *late_return(20, amount="10.00"))["status"] == "approved"
    seventh = new_case(cli, *late_return(20, amount="10.00"))
    assert seventh["status"] == "pending_supervisor"
    assert any("already had 6 discretionary cases" in r for r in seventh["reasons"])
    assert new_case(cli, *late_return(3, amount="10.00"))["status"] == "approved"  # in policy
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases WHERE status = 'approved'").fetchone() == (7,)


def test_a_customer_asking_for_a_manager_escalates(cli: CliFn) -> None:
    out = new_case(cli, *late_return(3), "--escalate", "--reaction", "dissatisfied")
    assert (out["status"], out["in_policy"], out["budget"]["held"]) == ("pending_supervisor", True, "0.00")


def test_a_missing_justification_is_refused_and_nothing_is_recorded(cli: CliFn, db_path: Path) -> None:
    args = [a for a in late_return(20) if a not in ("--justification", JUSTIFICATION)]
    r = cli("case", "new", "--customer", "C-1", *args, "--justification", "because", "--json")
    assert r.exit_code == 2, r.output
    assert "justification" in r.stderr
    assert "at least 20 characters (got 7)" in r.stderr
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM events WHERE case_id IS NOT NULL").fetchone() == (0,)


def test_held_discretion_counts_against_the_remaining_budget(cli: CliFn, db_path: Path) -> None:
    first = new_case(cli, *late_return(20, amount="1500.00", action="goodwill_credit"), agent="carol")
    assert first["status"] == "pending_cosign"
    assert (first["budget"]["held"], first["budget"]["remaining"]) == ("1500.00", "500.00")
    second = new_case(cli, *late_return(20, amount="500.01", action="goodwill_credit"), agent="carol")
    assert second["status"] == "pending_supervisor"
    assert "discretion 500.01 exceeds the customer's remaining budget of 500.00" in second["reasons"]
    assert second["budget"] == {"limit": "2000.00", "spent": "0.00", "held": "1500.00", "remaining": "500.00"}
    with sqlite3.connect(db_path) as conn:
        held = conn.execute("SELECT id, held_amount FROM cases ORDER BY id").fetchall()
    assert held == [(first["case_id"], 150000), (second["case_id"], 0)]
