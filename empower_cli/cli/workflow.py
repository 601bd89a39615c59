"""`empower case queue|cosign|object|approve|deny|outcome`: the steps after a case is
opened, registered on the `case` group beside cli/case.py's commands. Each calls one service.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work. Names
# imported only for the type checker are quoted where Python evaluates an annotation.

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from empower_cli.cli.common import (
    CaseId,
    JsonOption,
    ListFormatOption,
    ReactionChoice,
    Session,
    chosen_format,
    print_json,
    print_rows,
    session,
    wants_json,
)

if TYPE_CHECKING:
    from empower_cli.services.workflow import StepResult

Opt = typer.Option
NoteOption = Annotated[str | None, Opt("--note", help="Why (recorded with the step).", show_default=False)]
RequiredNote = Annotated[str, Opt("--note", help="Why (recorded with the step).", show_default=False)]


def register(group: typer.Typer) -> None:
    """Add the steps after a case is opened to the `case` group."""
    group.command("queue")(queue)
    group.command("cosign")(cosign)
    group.command("object")(object_)
    group.command("approve")(approve)
    group.command("deny")(deny)
    group.command("outcome")(outcome)


def queue(ctx: typer.Context, fmt: ListFormatOption = None, json: JsonOption = False) -> None:
    """Cases waiting for me, oldest first: co-signs I may give, and escalated cases for a supervisor.

    Each shows the amount, age, customer, the rules bent and the time left before its hold
    expires. In a pipe (or --format tsv|csv) every value whole, tab-separated under a header.

    Example: empower case queue
    """
    with session(ctx) as s:
        from empower_cli.render.json import QUEUE_KEYS, queue_json
        from empower_cli.services.workflow import queue_for

        chosen = chosen_format(ctx, fmt, json)
        identity = s.identity()
        items = queue_for(identity, store=s.store, now=s.now)
        if chosen == "json":
            print_json([queue_json(i, s.policy.digits, s.now) for i in items])
            return
        if chosen != "table":
            from empower_cli.render.tabular import rows_of_objects

            print_rows(chosen, *rows_of_objects([queue_json(i, s.policy.digits, s.now) for i in items], QUEUE_KEYS))
            return
        from empower_cli.render.terminal import console, queue_table, safe

        out = console()
        if not items:
            out.print(f"[dim]nothing waits for {safe(identity.agent)}[/]")
            return
        out.print(queue_table(items, agent=identity.agent, role=identity.role.name, digits=s.policy.digits))
        out.print("[dim]✗ objections · [red]rule![/red] blocked · act: empower case cosign|object|approve|deny ID[/]")


def cosign(ctx: typer.Context, case_id: CaseId, note: NoteOption = None, json: JsonOption = False) -> None:
    """Co-sign a colleague's case (the two-employee rule): it is approved and its hold is spent.

    Example: empower case cosign 42 --note "Checked the receipt, fair exception"
    """
    from empower_cli.services import workflow

    _settle(ctx, json, workflow.cosign, case_id, note)


def object_(
    ctx: typer.Context,
    case_id: CaseId,
    reason: Annotated[str, Opt("--reason", help="Why you object.", show_default=False)],
    json: JsonOption = False,
) -> None:
    """Object to a colleague's case instead of co-signing: it goes to a supervisor.

    Example: empower case object 42 --reason "Third exception for this customer this month"
    """
    from empower_cli.services import workflow

    _settle(ctx, json, workflow.object_, case_id, reason)


def approve(ctx: typer.Context, case_id: CaseId, note: RequiredNote, json: JsonOption = False) -> None:
    """Approve a pending case as a supervisor (--note required): its hold is spent.

    Example: empower case approve 42 --note "Fair given the flight delay"
    """
    from empower_cli.services import workflow

    _settle(ctx, json, workflow.approve, case_id, note)


def deny(ctx: typer.Context, case_id: CaseId, note: RequiredNote, json: JsonOption = False) -> None:
    """Deny a pending case as a supervisor (--note required): its hold is voided.

    Example: empower case deny 42 --note "Outside what we can offer; offered store credit instead"
    """
    from empower_cli.services import workflow

    _settle(ctx, json, workflow.deny, case_id, note)


def outcome(
    ctx: typer.Context,
    case_id: CaseId,
    reaction: Annotated[ReactionChoice, Opt("--reaction", case_sensitive=False, show_default=False,
                                            help="The customer's reaction.")],
    retained: Annotated[bool, Opt("--retained", help="The customer stayed.")] = False,
    lost: Annotated[bool, Opt("--lost", help="The customer left.")] = False,
    json: JsonOption = False,
) -> None:
    """Record the customer's reaction and whether they stayed (anyone, any state).

    Example: empower case outcome 42 --reaction satisfied --retained
    """
    from empower_cli.core.errors import InvalidInput
    from empower_cli.services import workflow

    def step(s: Session) -> "StepResult":
        if retained and lost:
            raise InvalidInput("--retained/--lost", "give one of them, not both")
        kept = True if retained else False if lost else None
        return workflow.record_outcome(case_id, reaction.value, kept, policy=s.policy, store=s.store,
                                       identity=s.identity(), now=s.now)  # fmt: skip

    _run(ctx, json, step)


def _settle(ctx: typer.Context, json: bool, step: Callable[..., "StepResult"], case_id: int, text: str | None) -> None:
    """Run a co-sign, objection, approval or denial with the session's dependencies."""
    _run(ctx, json, lambda s: step(case_id, text, policy=s.policy, store=s.store, identity=s.identity(), now=s.now))


def _run(ctx: typer.Context, json: bool, step: Callable[[Session], "StepResult"]) -> None:
    """Run one workflow step and print what happened."""
    with session(ctx) as s:
        result = step(s)
        if wants_json(ctx, json):
            from empower_cli.render.json import step_json

            print_json(step_json(result, s.policy))
            return
        from empower_cli.render.terminal import STATUS_STYLE, console, money_line, safe

        out = console()
        style = STATUS_STYLE.get(result.status, "")
        if result.kind == "outcome":
            kept = "retained" if result.payload["retained"] else "lost"
            out.print(f"outcome recorded on case {result.case_id}: {result.payload['reaction']}, {kept}")
        else:
            verb = {"cosigned": "co-signed", "objected": "objection recorded on"}.get(result.kind, result.kind)
            out.print(f"{verb} case {result.case_id}: now [{style}]{result.status}[/]")
        if result.payload.get("over_budget"):
            out.print("[yellow]approved beyond the customer's remaining budget (supervisor_may_exceed)[/]")
        customer = safe(result.case["customer_id"])
        out.print(f"customer {customer}: " + money_line(result.budget, s.policy.digits, s.policy.currency))
