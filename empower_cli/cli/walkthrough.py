"""The interactive walk-through of `empower case new` (SPEC §5), for a live call.

Questions, menus and the evaluation go to stderr; the recorded case id and the next
step go to stdout. Ctrl-C or EOF before the confirmation records nothing (exit 130).
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from empower_cli.core.errors import EmpowerError, InvalidInput
from empower_cli.render.terminal import safe

if TYPE_CHECKING:
    from rich.console import Console

    from empower_cli.cli.common import Session
    from empower_cli.core.models import CaseType, Evaluation, Fact, Proposal, Reaction
    from empower_cli.services.identity import Identity

CANCELLED = 130
T = TypeVar("T")
FACT_HINTS = {"int": "whole number", "money": "amount, e.g. 12.50", "bool": "yes/no",
              "date": "YYYY-MM-DD", "text": "", "choice": "number or name"}  # fmt: skip


@dataclass
class Talk:
    """What every question needs: the session, the terminal and who is acting."""

    s: Session
    out: Console
    identity: Identity


def walk_through(s: Session, *, segment: str | None, escalate: bool) -> int:
    """Ask, show the verdict, confirm, record; return the exit code."""
    from rich.console import Console

    # emoji off: a customer id such as ":smile:" must show as typed
    out = Console(stderr=True, highlight=False, emoji=False, soft_wrap=False)
    talk = Talk(s, out, s.identity())  # an unknown login is refused before any question
    # What the dialogue shows later is imported now, before the first question: a Ctrl-C that
    # lands while a dataclass is being created (its __init__ is made by exec()) leaves
    # CPython 3.11 marking the interrupt unhandled, and the process then ends by SIGINT
    # instead of exit 130, although the walk-through caught it and said so.
    import empower_cli.cli.precedents_cmd
    import empower_cli.render.precedents
    import empower_cli.services.precedents  # noqa: F401
    previous = signal.getsignal(signal.SIGINT)
    try:
        answer = dialogue(talk, segment=segment, escalate=escalate)
        if answer is None:
            out.print("not recorded: nothing was saved")
            return 0
        # From here on the case is being recorded: finish it rather than leave the agent unsure.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (KeyboardInterrupt, EOFError):
        out.print()
        out.print("cancelled: nothing was recorded")
        return CANCELLED
    try:
        return record(talk, *answer)
    finally:
        signal.signal(signal.SIGINT, previous)


def dialogue(t: Talk, *, segment: str | None, escalate: bool) -> tuple[Proposal, Evaluation] | None:
    """Every question in the order of SPEC §5; None when the agent declines to record."""
    from empower_cli.services.cases import CaseInput, propose

    t.out.print("[bold]New case[/] (Ctrl-C or Ctrl-D cancels; nothing is recorded until you confirm)")
    t.out.print(recording_as(t))
    customer = ask_customer(t, segment)
    ctype = ask_case_type(t)
    facts = {f.name: ask_fact(t, f) for f in ctype.facts}
    action = ask_action(t, ctype)
    amount = ask_amount(t)
    inputs = CaseInput(customer_id=customer, case_type=ctype.id, facts=facts, action=action,
                       amount=amount, segment=segment, escalate=escalate)  # fmt: skip
    proposal = propose(inputs, policy=t.s.policy, identity=t.identity)
    evaluation = show_evaluation(t, proposal)
    proposal = ask_justification(t, proposal, evaluation)
    proposal, evaluation = ask_reaction(t, proposal, evaluation)
    if not ask_yes_no(t, "Record this case?"):
        return None
    return proposal, evaluation


# --- asking --------------------------------------------------------------------------


def ask(t: Talk, label: str) -> str:
    """One line from the terminal; undecodable bytes are re-asked, not a crash."""
    while True:
        try:
            return t.out.input(f"[bold]{label}[/] ", emoji=False)
        except UnicodeDecodeError:
            say_error(t, "answer: is not valid UTF-8 text")


def ask_until(t: Talk, label: str, parse: Callable[[str], T]) -> T:
    """Ask until `parse` accepts the answer; each refusal is shown as its one-line error."""
    while True:
        try:
            return parse(ask(t, label))
        except InvalidInput as e:
            say_error(t, str(e))


def say_error(t: Talk, message: str) -> None:
    t.out.print(f"[red]error:[/] {safe(message)}")


def ask_yes_no(t: Talk, label: str) -> bool:
    def parse(text: str) -> bool:
        answer = text.strip().lower()
        if answer not in ("y", "yes", "n", "no"):
            raise InvalidInput("answer", f"expected y or n, got {text.strip()[:40]!r}")
        return answer.startswith("y")

    return ask_until(t, f"{label} (y/n)", parse)


def choose(t: Talk, label: str, field: str, options: Sequence[tuple[str, str]]) -> str:
    """A numbered menu; the answer may be the number, the id in any case, or the start of one id."""
    for number, (key, title) in enumerate(options, 1):
        t.out.print(f"  {number:>2}. {safe(key)}" + (f" [dim]— {safe(title)}[/]" if title else ""))
    keys = [key for key, _ in options]

    def parse(text: str) -> str:
        answer = text.strip()
        if answer.isdecimal() and 1 <= int(answer) <= len(keys):
            return keys[int(answer) - 1]
        found = match_choice(answer, keys)
        if found is not None:
            return found
        raise InvalidInput(field, f"expected a number from 1 to {len(keys)} or one of "
                                  f"{', '.join(keys)}, got {answer[:40]!r}")  # fmt: skip

    return ask_until(t, label, parse)


def match_choice(answer: str, keys: Sequence[str]) -> str | None:
    """The one key ANSWER names: exactly, then ignoring case, then as the start of exactly one
    key (`late` for late_return); None when it names none or several (`m` for two choices)."""
    if answer in keys:
        return answer
    folded = answer.casefold()
    same = [k for k in keys if k.casefold() == folded]
    if len(same) == 1:
        return same[0]
    starting = [k for k in keys if folded and k.casefold().startswith(folded)]
    return starting[0] if len(starting) == 1 else None


# --- the questions ---------------------------------------------------------------------


def recording_as(t: Talk) -> str:
    """Who is recording, and how far their role reaches without a supervisor."""
    from empower_cli.core.money import format_money

    p, role = t.s.policy, t.identity.role
    reach = f"up to {format_money(role.max_discretion, p.digits)} {p.currency} without a supervisor"
    return f"recording as [bold]{safe(t.identity.agent)}[/] · {safe(role.name)} · {reach}" + (
        " · may approve" if role.can_approve else "")  # fmt: skip


def ask_customer(t: Talk, segment: str | None) -> str:
    """The customer id, then at once the customer's budget and discretionary cases in the window."""
    from empower_cli.core.text import clean_id
    from empower_cli.core.timeutil import utcnow
    from empower_cli.render.terminal import money_line
    from empower_cli.services.cases import customer_budget

    customer = ask_until(t, "Customer id:", lambda text: clean_id(text.strip(), field="customer"))
    p = t.s.policy
    budget = customer_budget(customer, policy=p, store=t.s.store, now=utcnow(), segment=segment)
    t.out.print(f"budget of {safe(customer)}: " + money_line(budget, p.digits, p.currency))
    cap = f" of {p.budget.max_cases}" if p.budget.max_cases else ""
    t.out.print(f"discretionary cases in the last {p.budget.window_days} days: {budget.count}{cap}")
    return customer


def ask_case_type(t: Talk) -> CaseType:
    types = t.s.policy.case_types
    t.out.print("[bold]Case type[/]")
    chosen = choose(t, "Case type (number or id):", "type", [(c.id, c.title) for c in types.values()])
    return types[chosen]


def ask_fact(t: Talk, fact: Fact) -> str:
    """One fact, typed per the policy; returns its canonical text."""
    from empower_cli.core.facts import fact_to_text, parse_fact_value

    digits = t.s.policy.digits
    if fact.type == "choice":
        t.out.print(f"[bold]{safe(fact.ask)}[/]")
        return choose(t, f"{safe(fact.ask)} (number or name):", f"fact {fact.name}",
                      [(c, "") for c in fact.choices])  # fmt: skip
    hint = FACT_HINTS.get(fact.type, "")
    label = safe(fact.ask) + (f" ({hint})" if hint else "") + ":"
    return ask_until(t, label, lambda text: fact_to_text(parse_fact_value(fact, text, digits=digits), fact, digits))


def ask_action(t: Talk, ctype: CaseType) -> str:
    actions = t.s.policy.actions
    t.out.print("[bold]Action[/]")
    options = [(a, actions[a].title + ("" if actions[a].frontline else " (supervisor only)")) for a in ctype.actions]
    return choose(t, "Action (number or id):", "action", options)


def ask_amount(t: Talk) -> str:
    from empower_cli.core.money import format_money, parse_money

    p = t.s.policy
    label = f"Amount in {p.currency} (e.g. {format_money(1250, p.digits)}):"
    return ask_until(t, label, lambda text: format_money(parse_money(text, field="amount", digits=p.digits), p.digits))


def ask_justification(t: Talk, proposal: Proposal, evaluation: Evaluation) -> Proposal:
    """Ask until the justification is long enough, when the verdict needs one."""
    from empower_cli.core.text import clean_text

    need = t.s.policy.min_justification_chars
    if not evaluation.justification_required or len(proposal.justification.strip()) >= need:
        return proposal

    def parse(text: str) -> str:
        text = clean_text(text, field="justification")
        if len(text.strip()) < need:
            raise InvalidInput("justification", f"needs at least {need} characters (got {len(text.strip())})")
        return text

    text = ask_until(t, f"Justification (at least {need} characters):", parse)
    return dataclasses.replace(proposal, justification=text)


def ask_reaction(t: Talk, proposal: Proposal, evaluation: Evaluation) -> tuple[Proposal, Evaluation]:
    """The customer's reaction (Enter skips); a dissatisfied customer may go to a supervisor."""
    from empower_cli.core.models import REACTIONS

    def parse(text: str) -> str | None:
        answer = text.strip().lower()
        if not answer:
            return None
        if answer.isdecimal() and 1 <= int(answer) <= len(REACTIONS):
            return REACTIONS[int(answer) - 1]
        found = match_choice(answer, REACTIONS)
        if found is not None:
            return found
        raise InvalidInput("reaction", f"expected 1-3, {', '.join(REACTIONS)} or Enter, got {answer[:40]!r}")

    menu = ", ".join(f"{n} {r}" for n, r in enumerate(REACTIONS, 1))
    reaction = ask_until(t, f"Customer's reaction ({menu}; Enter to skip):", parse)
    proposal = dataclasses.replace(proposal, reaction=cast("Reaction | None", reaction))
    if reaction != "dissatisfied" or evaluation.status == "pending_supervisor":
        return proposal, evaluation
    if not ask_yes_no(t, "The customer is dissatisfied. Send the case to a supervisor?"):
        return proposal, evaluation
    proposal = dataclasses.replace(proposal, escalate=True)
    evaluation = show_evaluation(t, proposal)
    return ask_justification(t, proposal, evaluation), evaluation


# --- showing and recording -------------------------------------------------------------


def show_evaluation(t: Talk, proposal: Proposal) -> Evaluation:
    """Evaluate against the budget as it is now (nothing recorded) and show the verdict."""
    from empower_cli.core.timeutil import utcnow
    from empower_cli.render.terminal import evaluation_panel
    from empower_cli.services.cases import preview

    p = t.s.policy
    evaluation = preview(proposal, policy=p, store=t.s.store, identity=t.identity, now=utcnow())
    t.out.print(evaluation_panel(evaluation, p, title="Evaluation (not recorded yet)", proposal=proposal))
    t.out.print("[bold]needs:[/] " + "; ".join(needs(evaluation, proposal, p.min_justification_chars)))
    from empower_cli.cli.precedents_cmd import show_precedents

    show_precedents(t.out, t.s, proposal)
    return evaluation


def needs(evaluation: Evaluation, proposal: Proposal, min_chars: int) -> list[str]:
    """What the case still needs; a justification already given is not asked for again."""
    missing = evaluation.justification_required and len(proposal.justification.strip()) < min_chars
    wanted = [f"a justification of at least {min_chars} characters"] if missing else []
    if evaluation.status == "pending_cosign":
        wanted.append("a colleague's co-sign")
    elif evaluation.status == "pending_supervisor":
        wanted.append("a supervisor's approval")
    return wanted or ["nothing more: it is approved when recorded"]


def record(t: Talk, proposal: Proposal, previewed: Evaluation) -> int:
    """Record in one transaction; the verdict is re-checked against the budget under the lock."""
    from empower_cli.core.timeutil import utcnow
    from empower_cli.render.terminal import recorded_text
    from empower_cli.services.cases import open_case

    try:
        decision = open_case(proposal, policy=t.s.policy, store=t.s.store, identity=t.identity, now=utcnow())
    except EmpowerError as e:
        say_error(t, str(e))
        t.out.print("nothing was recorded")
        return e.exit_code
    show_changes(t, previewed, decision.evaluation)
    sys.stdout.write(recorded_text(decision.case_id, decision.evaluation.status))
    sys.stdout.flush()
    return 0


def show_changes(t: Talk, previewed: Evaluation, recorded: Evaluation) -> None:
    """Before the case id: every way the recorded verdict differs from the one confirmed."""
    from rich.padding import Padding

    from empower_cli.core.verdict import differences, why_it_changed

    digits = t.s.policy.digits
    changes = differences(previewed, recorded, digits)
    if not changes:
        return
    t.out.print(f"[yellow]{safe(why_it_changed(previewed, recorded, digits))}; what changed:[/]")
    for line in changes:
        t.out.print(Padding(safe(line), (0, 0, 0, 2), expand=False))  # a long reason wraps under itself
