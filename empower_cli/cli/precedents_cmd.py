"""`empower case precedents`: how comparable past cases were decided (core.precedents says
what comparable means), for an agent deciding a case or a supervisor reviewing one.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from typing import TYPE_CHECKING, Annotated

import typer

from empower_cli.cli.common import JsonOption, print_json, session, wants_json

if TYPE_CHECKING:
    from rich.console import Console

    from empower_cli.cli.common import Session
    from empower_cli.core.models import Proposal

Opt = typer.Option


def register(group: typer.Typer) -> None:
    """Add `precedents` to the `case` group."""
    group.command("precedents")(precedents)


def precedents(
    ctx: typer.Context,
    case_type: Annotated[str, Opt("--type", help="Case type from the policy.", show_default=False)],
    action: Annotated[str, Opt("--action", help="The proposed action.", show_default=False)],
    fact: Annotated[list[str] | None, Opt("--fact", help="A fact as NAME=VALUE; every fact a rule reads is needed.",
                                          show_default=False)] = None,
    amount: Annotated[str | None, Opt("--amount", help="A proposed amount, placed among the approved ones.",
                                      show_default=False)] = None,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """How comparable past cases were decided: counts by outcome, amounts approved, the latest three.

    Comparable: same case type and action, the same rules bent or blocked, and each bent
    rule's fact in the same third of its bend range.

    Example: empower case precedents --type late_return --action refund --fact days_since_purchase=20 --fact has_receipt=yes --amount 45.00
    """  # noqa: E501
    with session(ctx) as s:
        from empower_cli.cli.case import parse_fact_flags
        from empower_cli.services.precedents import find_precedents

        found = find_precedents(policy=s.policy, store=s.store, case_type=case_type, action=action,
                                facts=parse_fact_flags(fact or []), amount=amount, now=s.now)  # fmt: skip
        if wants_json(ctx, json):
            from empower_cli.render.json import precedents_json

            print_json(precedents_json(found, s.policy.digits))
            return
        from empower_cli.render.precedents import precedent_lines
        from empower_cli.render.terminal import console

        out = console()
        for line in precedent_lines(found, digits=s.policy.digits, currency=s.policy.currency):
            out.print(line, highlight=False, soft_wrap=True)


def show_precedents(out: "Console", s: "Session", proposal: "Proposal") -> None:
    """The walk-through's block, right after the evaluation: how comparable cases went."""
    from empower_cli.core.timeutil import utcnow
    from empower_cli.render.precedents import precedent_lines
    from empower_cli.services.precedents import precedents_of

    found = precedents_of(proposal, policy=s.policy, store=s.store, now=utcnow())
    for line in precedent_lines(found, digits=s.policy.digits, currency=s.policy.currency):
        out.print(line, highlight=False, soft_wrap=True)
