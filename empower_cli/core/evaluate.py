"""The decision, SPEC §4: validate a raw proposal, then evaluate it. Pure.

`validate_proposal` is the one validation path (live cases, import, simulation);
`evaluate` never reads the clock or the database: `now` and the budget are passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

from empower_cli.core.errors import InvalidInput
from empower_cli.core.models import (
    REACTIONS,
    BudgetState,
    CaseType,
    Evaluation,
    Fact,
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
from empower_cli.core.text import identifier_problem

MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000_000  # SPEC §9: real complaint narratives run past 15,000 characters
TRUE_WORDS = ("true", "yes", "y", "1")
FALSE_WORDS = ("false", "no", "n", "0")
_YES_NO_WORDS = TRUE_WORDS + FALSE_WORDS
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\n\t]")
_WHOLE_NUMBER = re.compile(r"[+-]?\d{1,18}", flags=re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", flags=re.ASCII)


def clean_text(value: str, *, field: str, max_chars: int = MAX_TEXT_CHARS,
               single_line: bool = False) -> str:  # fmt: skip
    """Refuse text that cannot be stored and shown faithfully; return it unchanged otherwise."""
    if len(value) > max_chars:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {max_chars} are allowed")
    if value.isascii() and value.isprintable():
        return value  # the common case: printable ASCII has no control character and encodes
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid UTF-8 text") from None
    bad = _CONTROL.search(value) or (single_line and _LINE_BREAK.search(value))
    if bad:
        raise InvalidInput(field, f"contains a control character (U+{ord(bad.group(0)):04X})")
    return value


def clean_id(value: str | None, *, field: str) -> str:
    """An identifier (customer, agent, segment, external id): one line of visible text in NFC.

    " C-1", "C-1" + U+2060 and "C-1" must not become three customers with three budgets
    (or three agents): SPEC §9, the rule in text.identifier_problem.
    """
    if value is None or not (stripped := value.strip()):
        raise InvalidInput(field, "is required")
    if value != stripped:
        raise InvalidInput(field, f"{_show(value)} has leading or trailing spaces")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed")
    if value.isascii() and value.isprintable():
        return value  # the import's hot path: printable ASCII is visible and already NFC
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid UTF-8 text") from None
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidInput(field, problem)
    return value


def same_person(a: str | None, b: str | None) -> bool:
    """The four-eyes comparison: "Alice" and "alice" are one person, whatever the source."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def parse_fact_value(fact: Fact, raw: str, *, digits: int = 2) -> FactValue:
    """Parse one fact typed as text (a flag, a prompt answer, a CSV cell)."""
    field = f"fact {fact.name}"
    text = raw.strip()
    value: FactValue
    if fact.type == "int":
        if not _WHOLE_NUMBER.fullmatch(text):
            raise InvalidInput(field, f"expected a whole number, got {_show(text)}")
        value = int(text)
    elif fact.type == "money":
        value = parse_money(text, field=field, digits=digits)
    elif fact.type == "bool":
        word = text.lower()
        if word not in _YES_NO_WORDS:
            raise InvalidInput(field, f"expected yes or no, got {_show(text)}")
        return word in TRUE_WORDS
    elif fact.type == "choice":
        word = text.lower()
        match = [c for c in fact.choices if c.lower() == word]
        if not match:
            raise InvalidInput(field, f"expected one of {', '.join(fact.choices)}, got {_show(text)}")
        return match[0]
    elif fact.type == "date":
        if not _DATE.fullmatch(text):
            raise InvalidInput(field, f"expected a date YYYY-MM-DD, got {_show(text)}")
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, f"{text} is not a real date") from None
    else:
        if not text:  # a required answer left blank is missing, not an answer
            raise InvalidInput(field, f"is required ({fact.ask})")
        return clean_text(raw, field=field, max_chars=2000)
    assert isinstance(value, int)
    if fact.min is not None and value < fact.min:
        least, got = _fact_number(fact, fact.min, digits), _fact_number(fact, value, digits)
        raise InvalidInput(field, f"must be at least {least}, got {got}")
    if fact.max is not None and value > fact.max:
        most, got = _fact_number(fact, fact.max, digits), _fact_number(fact, value, digits)
        raise InvalidInput(field, f"must be at most {most}, got {got}")
    return value


def _fact_number(fact: Fact, value: int, digits: int) -> str:
    """An int or money fact's value (or limit) as an error message shows it."""
    return format_money(value, digits) if fact.type == "money" else str(value)


def fact_to_text(value: FactValue, fact: Fact, digits: int = 2) -> str:
    """The inverse of parse_fact_value: how a fact is stored in JSON and shown."""
    if fact.type == "money" and isinstance(value, int) and not isinstance(value, bool):
        return format_money(value, digits)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def facts_as_text(proposal: Proposal, policy: Policy) -> dict[str, str]:
    """The proposal's facts as text, in the policy's order: as a case stores them."""
    ctype = policy.case_types[proposal.case_type]
    return {f.name: fact_to_text(proposal.facts[f.name], f, policy.digits) for f in ctype.facts}


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


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
