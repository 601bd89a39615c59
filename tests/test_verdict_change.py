"""What the walk-through tells an agent when the recorded verdict differs from the preview.

Every evaluation here is a real `evaluate()` on the shipped policy (plus one case type with
a rule that counts days, which the shipped policy lacks); only the budget and the clock move.
"""

from __future__ import annotations

import datetime as dt

import pytest

from empower_cli.core.evaluate import evaluate, validate_proposal
from empower_cli.core.models import BudgetState, Evaluation, Policy
from empower_cli.core.verdict import budget_effect, differences, why_it_changed
from empower_cli.policy.load import parse_policy
from tests.conftest import JUSTIFICATION, training_policy_text

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
FRESH = BudgetState(limit=200000)
DATED_CLAIM = """
[case_types.dated_claim]
title = "Claim on a dated purchase"
risk = "low"
actions = ["refund"]
facts = [{ name = "bought", type = "date", ask = "Bought on" }]
[[case_types.dated_claim.rules]]
id = "claim-window"
text = "Claims within 30 days of purchase."
fact = "bought"
max_age_days = 30
bend_max_age_days = 60
"""
COSIGN_REASON = "discretion 150.00 is above the co-sign threshold of 100.00: a colleague must co-sign"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(training_policy_text(DATED_CLAIM).encode(), "policies.toml")


def late_return(policy: Policy, amount: str, budget: BudgetState, *, now: dt.datetime = NOW) -> Evaluation:
    """A return 20 days after purchase (the window rule bends), refunded by a plain agent."""
    proposal = validate_proposal(policy, agent="alice", customer_id="C-1", case_type="late_return",
                                 facts={"days_since_purchase": "20", "has_receipt": "yes"},
                                 action="refund", amount=amount, justification=JUSTIFICATION)  # fmt: skip
    return evaluate(proposal, policy, role=policy.roles["agent"], budget=budget, now=now)


def dated_claim(policy: Policy, *, now: dt.datetime) -> Evaluation:
    """A 50.00 refund on a purchase made exactly 30 days before NOW: in policy today, bent tomorrow."""
    bought = (NOW.date() - dt.timedelta(days=30)).isoformat()
    proposal = validate_proposal(policy, agent="alice", customer_id="C-1", case_type="dated_claim",
                                 facts={"bought": bought}, action="refund", amount="50.00",
                                 justification=JUSTIFICATION)  # fmt: skip
    return evaluate(proposal, policy, role=policy.roles["agent"], budget=FRESH, now=now)


def test_the_same_verdict_recorded_has_no_differences(policy: Policy) -> None:
    preview = late_return(policy, "150.00", FRESH)
    recorded = late_return(policy, "150.00", FRESH, now=NOW + dt.timedelta(seconds=40))
    assert differences(preview, recorded, policy.digits) == []


def test_a_budget_spent_meanwhile_shows_status_effect_figures_and_reasons(policy: Policy) -> None:
    preview = late_return(policy, "150.00", FRESH)
    recorded = late_return(policy, "150.00", BudgetState(limit=200000, spent=195000, count=1))
    assert differences(preview, recorded, policy.digits) == [
        "status: pending_cosign → pending_supervisor",
        "budget effect: holds 150.00 → does not touch the budget",
        "budget spent after: 0.00 → 1950.00",
        "budget held after: 150.00 → 0.00",
        "remaining budget after: 1850.00 → 50.00",
        f"- reason: {COSIGN_REASON}",
        "+ reason: discretion 150.00 exceeds the customer's remaining budget of 50.00",
    ]


def test_a_smaller_remaining_budget_under_the_same_status_is_still_a_difference(policy: Policy) -> None:
    preview = late_return(policy, "150.00", FRESH)
    recorded = late_return(policy, "150.00", BudgetState(limit=200000, held=50000, count=1))
    assert preview.status == recorded.status == "pending_cosign"
    assert differences(preview, recorded, policy.digits) == [
        "budget held after: 150.00 → 650.00",
        "remaining budget after: 1850.00 → 1350.00",
    ]


def test_spending_at_once_turning_into_a_hold_is_a_budget_effect_difference(policy: Policy) -> None:
    preview = late_return(policy, "60.00", BudgetState(limit=200000, spent=10000, count=5))
    recorded = late_return(policy, "60.00", BudgetState(limit=200000, spent=12000, count=6))
    assert differences(preview, recorded, policy.digits) == [
        "status: approved → pending_supervisor",
        "budget effect: spends 60.00 → holds 60.00",
        "budget spent after: 160.00 → 120.00",
        "budget held after: 0.00 → 60.00",
        "remaining budget after: 1840.00 → 1820.00",
        "- reason: within the agent's discretion",
        "+ reason: the customer already had 6 discretionary cases in 365 days (limit 6)",
    ]


def test_a_new_limit_is_a_budget_limit_difference(policy: Policy) -> None:
    preview = late_return(policy, "150.00", FRESH)
    recorded = late_return(policy, "150.00", BudgetState(limit=500000))  # put in the vip segment
    assert differences(preview, recorded, policy.digits) == [
        "budget limit after: 2000.00 → 5000.00",
        "remaining budget after: 1850.00 → 4850.00",
    ]


def test_a_rule_checked_on_a_later_date_changes_rule_policy_discretion_and_reasons(policy: Policy) -> None:
    preview = dated_claim(policy, now=NOW)
    recorded = dated_claim(policy, now=NOW + dt.timedelta(days=1))
    assert differences(preview, recorded, policy.digits) == [
        "in policy: yes → no",
        "discretionary amount: 0.00 → 50.00",
        "budget effect: does not touch the budget → spends 50.00",
        "budget spent after: 0.00 → 50.00",
        "remaining budget after: 2000.00 → 1950.00",
        "rule claim-window: pass → bent",
        "- reason: in policy",
        "+ reason: rule claim-window bent: Claims within 30 days of purchase.",
        "+ reason: within the agent's discretion",
    ]


def test_the_header_names_a_budget_used_meanwhile_with_its_figures(policy: Policy) -> None:
    preview = late_return(policy, "150.00", FRESH)
    recorded = late_return(policy, "150.00", BudgetState(limit=200000, spent=195000, count=1))
    assert why_it_changed(preview, recorded, policy.digits) == (
        "the customer's budget changed between the preview and recording (before this case: "
        "spent 0.00 → 1950.00, remaining 2000.00 → 50.00, discretionary cases in the window 0 → 1; "
        "another agent may have used it meanwhile)"
    )


def test_the_header_does_not_blame_another_agent_for_a_budget_that_grew(policy: Policy) -> None:
    preview = late_return(policy, "150.00", BudgetState(limit=200000, held=195000, count=1))
    recorded = late_return(policy, "150.00", FRESH)  # the other hold was denied or expired
    header = why_it_changed(preview, recorded, policy.digits)
    assert header == ("the customer's budget changed between the preview and recording (before this case: "
                      "held 1950.00 → 0.00, remaining 50.00 → 2000.00, discretionary cases in the window 1 → 0)")
    assert "another agent" not in header


def test_the_header_names_the_date_when_the_budget_did_not_change(policy: Policy) -> None:
    preview = dated_claim(policy, now=NOW)
    recorded = dated_claim(policy, now=NOW + dt.timedelta(days=1))
    header = why_it_changed(preview, recorded, policy.digits)
    assert header.startswith("the verdict changed between the preview and recording although the customer's "
                             "budget did not: the date moved on")
    assert "another agent" not in header


def test_the_budget_effect_is_worded_as_the_evaluation_panel_shows_it(policy: Policy) -> None:
    assert budget_effect(late_return(policy, "150.00", FRESH), policy.digits) == "holds 150.00"
    assert budget_effect(late_return(policy, "60.00", FRESH), policy.digits) == "spends 60.00"
    assert budget_effect(dated_claim(policy, now=NOW), policy.digits) == "does not touch the budget"
