"""The decision, SPEC §4: validate a raw proposal, then evaluate it. Pure. (Text and
identifiers: core.text; facts typed and written back: core.facts.)

`validate_proposal` is the one validation path (live cases, import, simulation);
`evaluate` never reads the clock or the database: `now` and the budget are passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from empower_cli.core.errors import InvalidInput
from empower_cli.core.facts import parse_fact_value
from empower_cli.core.models import (
    REACTIONS,
    BudgetState,
    CaseType,
    Evaluation,
    FactValue,
    Policy,
    Proposal,
    Reaction,
    Role,
    Rule,
    RuleResult,
    RuleResultKind,
    Status,
)
from empower_cli.core.money import format_money, parse_money
from empower_cli.core.text import clean_id, clean_text, show


def validate_proposal(
    policy: Policy,
    *,
    agent: str,
    customer_id: str | None,
    case_type: str | None,
    facts: Mapping[str, str],
    action: str | None,
    amount: str | None,
    segment: str | None = None,
    justification: str | None = None,
    reaction: str | None = None,
    escalate: bool = False,
) -> Proposal:
    """Step 1 of SPEC §4: turn text inputs into a typed Proposal or raise InvalidInput."""
    customer = clean_id(customer_id, field="customer")
    ctype = _case_type(policy, case_type)
    typed = _typed_facts(ctype, facts, policy.digits)
    if not action:
        raise InvalidInput("action", f"is required; one of {', '.join(ctype.actions)}")
    if action not in ctype.actions:
        choices = ", ".join(ctype.actions)
        raise InvalidInput("action", f"{_show(action)} is not an action for {ctype.id}; one of {choices}")
    if amount is None:
        raise InvalidInput("amount", "is required")
    cents = parse_money(amount, field="amount", digits=policy.digits)
    if segment is not None:
        segment = check_segment(policy, segment)
    text = clean_text(justification or "", field="justification")
    return Proposal(
        agent=clean_id(agent, field="agent"),
        customer_id=customer,
        case_type=ctype.id,
        facts=typed,
        action=action,
        amount=cents,
        segment=segment,
        justification=text,
        reaction=None if reaction is None else parse_reaction(reaction, field="reaction"),
        escalate=escalate,
    )


def _case_type(policy: Policy, case_type: str | None) -> CaseType:
    if not case_type:
        raise InvalidInput("type", f"is required; one of {', '.join(policy.case_types)}")
    ctype = policy.case_types.get(case_type)
    if ctype is None:
        raise InvalidInput("type", f"unknown case type {_show(case_type)}; one of {', '.join(policy.case_types)}")
    return ctype


def _typed_facts(ctype: CaseType, facts: Mapping[str, str], digits: int) -> dict[str, FactValue]:
    """Every fact of the case type, typed; an unknown or missing one is refused, naming it."""
    names = [f.name for f in ctype.facts]
    for name in facts:
        if name not in names:
            known = ", ".join(names) or "none"
            raise InvalidInput(f"fact {_show(name)}", f"is not a fact of {ctype.id} (facts: {known})")
    typed: dict[str, FactValue] = {}
    for fact in ctype.facts:
        if fact.name not in facts:
            raise InvalidInput(f"fact {fact.name}", f"is required ({fact.ask})")
        typed[fact.name] = parse_fact_value(fact, facts[fact.name], digits=digits)
    return typed


def parse_reaction(text: str | None, *, field: str) -> Reaction:
    """satisfied, neutral or dissatisfied, in any case and with spaces around."""
    value = (text or "").strip().lower()
    if value not in REACTIONS:
        got = "nothing" if text is None else _show(text.strip())
        raise InvalidInput(field, f"expected one of {', '.join(REACTIONS)}, got {got}")
    return value  # type: ignore[return-value]  # one of REACTIONS, the Literal's values


def check_segment(policy: Policy, segment: str | None) -> str:
    """A segment name that [budget.segments] defines (a typo must not change a budget)."""
    name = clean_id(segment, field="segment")
    if name not in policy.budget.segments:
        known = ", ".join(policy.budget.segments) or "none are defined in [budget.segments]"
        raise InvalidInput("segment", f"unknown segment {_show(name)}; known segments: {known}")
    return name


def evaluate_rule(rule: Rule, value: FactValue, *, now: dt.datetime) -> RuleResultKind:
    """pass (within the standard), bent (within the bend limit) or blocked."""
    op = rule.op
    if op == "equals":
        return "pass" if value == rule.standard else "blocked"
    if op == "one_of":
        assert isinstance(rule.standard, tuple)
        return "pass" if value in rule.standard else "blocked"
    if op == "max_age_days":
        assert isinstance(value, dt.date)
        measured: object = (now.date() - value).days
    else:
        measured = value
    assert isinstance(measured, int)
    assert isinstance(rule.standard, int)
    if not _beyond(op, measured, rule.standard):
        return "pass"
    if rule.bendable and isinstance(rule.bend, int) and not _beyond(op, measured, rule.bend):
        return "bent"
    return "blocked"


def _beyond(op: str, measured: int, limit: int) -> bool:
    """Is the measured value past the limit: below it for a `min` rule, above it otherwise."""
    return measured < limit if op == "min" else measured > limit


def supervisor_reasons(proposal: Proposal, policy: Policy, *, role: Role, budget: BudgetState,
                       results: Sequence[RuleResult], in_policy: bool, discretion: int) -> list[str]:  # fmt: skip
    """Step 4 of SPEC §4: every reason the case must wait for a supervisor (none: it need not)."""
    ctype = policy.case_types[proposal.case_type]
    action = policy.actions[proposal.action]
    digits = policy.digits
    supervisor: list[str] = []
    for r in results:
        if r.result == "blocked":
            supervisor.append("a rule is blocked: only a supervisor can approve")
            break
    if ctype.risk == "high" and not in_policy:
        supervisor.append(f"case type {ctype.id} is high risk and the case is out of policy")
    if not action.frontline:
        supervisor.append(f"action {action.id} may only be granted by a supervisor")
    if discretion > role.max_discretion:
        supervisor.append(
            f"discretion {format_money(discretion, digits)} exceeds the {role.name} role's limit of "
            f"{format_money(role.max_discretion, digits)}"
        )
    remaining = budget.remaining
    if discretion > remaining:
        supervisor.append(
            f"discretion {format_money(discretion, digits)} exceeds the customer's remaining budget of "
            f"{format_money(remaining, digits)}"
        )
    max_cases = policy.budget.max_cases
    if discretion > 0 and max_cases is not None and budget.count >= max_cases:
        supervisor.append(
            f"the customer already had {budget.count} discretionary cases in "
            f"{policy.budget.window_days} days (limit {max_cases})"
        )
    if proposal.escalate:
        supervisor.append("the agent asked to escalate to a supervisor")
    return supervisor


def evaluate(
    proposal: Proposal, policy: Policy, *, role: Role, budget: BudgetState, now: dt.datetime
) -> Evaluation:
    """Steps 2-6 of SPEC §4: rule results, status, reasons and the budget effect."""
    action = policy.actions[proposal.action]
    results = [RuleResult(rule.id, evaluate_rule(rule, proposal.facts[rule.fact], now=now), rule.text)
               for rule in policy.case_types[proposal.case_type].rules]  # fmt: skip
    reasons = [f"rule {r.id} {r.result}: {r.text}" for r in results if r.result != "pass"]
    in_policy = not reasons and not action.always_discretionary and action.frontline
    discretion = 0 if in_policy else proposal.amount
    if action.always_discretionary:
        reasons.append(f"action {action.id} is always discretionary")
    supervisor = supervisor_reasons(
        proposal, policy, role=role, budget=budget, results=results, in_policy=in_policy, discretion=discretion
    )
    status, held, spent, why = _verdict(policy, supervisor, discretion, budget, in_policy=in_policy)
    return Evaluation(
        status=status,
        in_policy=in_policy,
        discretionary_amount=discretion,
        rules=tuple(results),
        reasons=(*reasons, *why),
        held=held,
        spent=spent,
        budget_before=budget,
        budget_after=_budget_after(budget, held=held, spent=spent, discretion=discretion),
        justification_required=discretion > 0 or status == "pending_supervisor",
    )


def _verdict(policy: Policy, supervisor: list[str], discretion: int, budget: BudgetState, *,
             in_policy: bool) -> tuple[Status, int, int, list[str]]:  # fmt: skip
    """Steps 4-6: the status, what it holds and spends, and the reasons it adds."""
    if supervisor:  # held only when it fits what is left
        return "pending_supervisor", discretion if discretion <= budget.remaining else 0, 0, supervisor
    if discretion > policy.cosign.above:
        why = (f"discretion {format_money(discretion, policy.digits)} is above the co-sign threshold of "
               f"{format_money(policy.cosign.above, policy.digits)}: a colleague must co-sign")  # fmt: skip
        return "pending_cosign", discretion, 0, [why]
    return "approved", 0, discretion, ["in policy" if in_policy else "within the agent's discretion"]


def _budget_after(budget: BudgetState, *, held: int, spent: int, discretion: int) -> BudgetState:
    """The budget once the decision holds or spends (unchanged when it does neither)."""
    if not (held or spent):
        return budget
    return BudgetState(limit=budget.limit, spent=budget.spent + spent, held=budget.held + held,
                       count=budget.count + (1 if discretion else 0))  # fmt: skip


def check_justification(proposal: Proposal, evaluation: Evaluation, policy: Policy) -> None:
    """Refuse a decision that needs a justification and has too short a one."""
    if not evaluation.justification_required:
        return
    need = policy.min_justification_chars
    have = len(proposal.justification.strip())
    if have < need:
        raise InvalidInput(
            "justification",
            f"this case uses discretion or escalates, so it needs a justification of at "
            f"least {need} characters (got {have})",
        )


_show = show
