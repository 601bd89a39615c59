"""`empower case new|show|list`: open a case and look at cases.

The workflow steps (queue, cosign, object, approve, deny, outcome) live in
`cli/workflow.py`; both modules register on the `case` group (cli/main.py).
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

import sys
from typing import Annotated, Any

import typer

from empower_cli.cli.common import (
    MAX_SQL_INT,
    WHEN,
    CaseId,
    CaseStatus,
    JsonOption,
    ListFormatOption,
    ReactionOption,
    chosen_format,
    complete_action,
    complete_case_type,
    print_error,
    print_json,
    print_rows,
    session,
    wants_json,
)

Opt = typer.Option


def register(group: typer.Typer) -> None:
    """Add `new`, `show` and `list` to the `case` group."""
    group.command("new")(new)
    group.command("show")(show)
    group.command("list")(list_cases)


def new(
    ctx: typer.Context,
    customer: Annotated[str | None, Opt("--customer", help="Customer id.", show_default=False)] = None,
    segment: Annotated[str | None, Opt("--segment", help="Customer segment (e.g. vip).", show_default=False)] = None,
    case_type: Annotated[str | None, Opt("--type", help="Case type from the policy.", show_default=False,
                                         autocompletion=complete_case_type)] = None,
    fact: Annotated[
        list[str] | None, Opt("--fact", help="A fact as NAME=VALUE; repeat for each fact.", show_default=False)
    ] = None,
    action: Annotated[str | None, Opt("--action", help="The proposed action (of the case type).", show_default=False,
                                      autocompletion=complete_action)] = None,
    amount: Annotated[
        str | None, Opt("--amount", help="Money value of the resolution, e.g. 89.90.", show_default=False)
    ] = None,
    justification: Annotated[
        str | None, Opt("--justification", help="Why the exception is fair.", show_default=False)
    ] = None,
    reaction: ReactionOption = None,
    escalate: Annotated[bool, Opt("--escalate", help="Send the case to a supervisor.")] = False,
    json: JsonOption = False,
) -> None:
    """Decide and record a case: a guided walk-through on a terminal, or every value as flags.

    Example: empower case new --customer C-1001 --type late_return --fact days_since_purchase=20 --fact has_receipt=yes --action refund --amount 89.90 --justification "Long-time customer, item unused, receipt at hand"
    """  # noqa: E501
    flags = (customer, case_type, fact, action, amount, justification, reaction)
    with session(ctx) as s:
        if all(v is None for v in flags) and not wants_json(ctx, json) and sys.stdin.isatty():
            from empower_cli.cli.walkthrough import walk_through

            raise typer.Exit(walk_through(s, segment=segment, escalate=escalate))
        from empower_cli.render.json import decision_json
        from empower_cli.services.cases import CaseInput, open_case

        inputs = CaseInput(
            customer_id=customer, case_type=case_type, facts=parse_fact_flags(fact or []),
            action=action, amount=amount, segment=segment, justification=justification,
            reaction=reaction and reaction.value, escalate=escalate,
        )  # fmt: skip
        decision = open_case(inputs, policy=s.policy, store=s.store, identity=s.identity(), now=s.now)
        if wants_json(ctx, json):
            print_json(decision_json(decision, s.policy))
            return
        from empower_cli.render.terminal import console, evaluation_panel, recorded_text

        # The evaluation is for the person; the result (case id, next step) is what a pipe reads.
        console(stderr=True).print(evaluation_panel(decision.evaluation, s.policy, title=f"case {decision.case_id}",
                                                    proposal=decision.proposal))  # fmt: skip
        sys.stdout.write(recorded_text(decision.case_id, decision.evaluation.status))


def parse_fact_flags(values: list[str]) -> dict[str, str]:
    from empower_cli.core.errors import InvalidInput

    facts: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput("--fact", f"expected NAME=VALUE, got {item[:40]!r}")
        if name.strip() in facts:
            raise InvalidInput("--fact", f"{name.strip()!r} is given twice")
        facts[name.strip()] = value
    return facts


def show(ctx: typer.Context, case_id: CaseId, json: JsonOption = False) -> None:
    """Show one case: facts, rule results, reasons, history and the customer's budget.

    Example: empower case show 42
    """
    with session(ctx) as s:
        from empower_cli.core.errors import NotFound
        from empower_cli.render.json import budget_json, case_detail_json
        from empower_cli.services.cases import customer_budget

        case = s.store.get_case(case_id, now=s.now)
        if case is None:
            raise NotFound(f"case {case_id} does not exist")
        events = s.store.events(case_id)
        budget = customer_budget(case["customer_id"], policy=s.policy, store=s.store, now=s.now)
        if wants_json(ctx, json):
            import json as _json

            from empower_cli.services.governance import deciding_policy

            decided_by = deciding_policy(s.store, case["policy_sha256"], s.policy)
            detail = case_detail_json(case, s.policy.digits, decided_by)
            detail["policy_changed"] = case["policy_sha256"] not in (None, s.policy.sha256)
            detail["events"] = [
                {"seq": e["seq"], "at": e["at"], "kind": e["kind"], "by": e["actor"], "os_user": e["os_user"],
                 "payload": _json.loads(e["payload"]), "hash": e["hash"]}
                for e in events
            ]  # fmt: skip
            detail["budget"] = budget_json(budget, s.policy.digits)
            print_json(detail)
            return
        from empower_cli.render.terminal import console, print_case_detail

        print_case_detail(console(), case, events, policy=s.policy, budget=budget)


def list_cases(
    ctx: typer.Context,
    customer: Annotated[str | None, Opt("--customer", help="Only this customer.", show_default=False)] = None,
    agent: Annotated[str | None, Opt("--agent", help="Only this agent's cases.", show_default=False)] = None,
    status: Annotated[CaseStatus | None, Opt("--status", help="Only cases in this status.", case_sensitive=False,
                                             show_default=False)] = None,
    since: Annotated[
        str | None, Opt("--since", help=f"Opened since WHEN: {WHEN}.", show_default=False)
    ] = None,
    limit: Annotated[int, Opt("--limit", help="At most this many, newest first; 0 for all.", min=0,
                              max=MAX_SQL_INT, show_default=True)] = 100,
    fmt: ListFormatOption = None,
    json: JsonOption = False,
) -> None:
    """List cases, newest first, filtered by customer, agent, status or time.

    On a terminal a table; in a pipe every value whole, tab-separated under a header (--format).

    Example: empower case list --status pending_cosign --since 7d
    """
    with session(ctx) as s:
        from empower_cli.core.timeutil import parse_when

        chosen = chosen_format(ctx, fmt, json)
        customer, agent = _filter(customer, "--customer"), _filter(agent, "--agent")
        start = parse_when(since, now=s.now, field="--since") if since else None
        # One more than asked for tells whether the list was cut.
        cases = s.store.list_cases(now=s.now, customer=customer, agent=agent, status=status and status.value,
                                   since=start, limit=limit + 1 if limit else None)  # fmt: skip
        truncated = bool(limit) and len(cases) > limit
        _print_cases(chosen, cases[:limit] if truncated else cases, truncated, limit, s.policy.digits)


def _print_cases(fmt: str, cases: list[dict[str, Any]], truncated: bool, limit: int, digits: int) -> None:
    from empower_cli.render.json import CASE_SUMMARY_KEYS, case_summary_json

    note = f"showing the newest {limit:,} matching cases; more match: --limit 0 shows all"
    if fmt == "json":
        print_json({"rows": [case_summary_json(c, digits) for c in cases], "truncated": truncated,
                    "limit": limit or None})  # fmt: skip
        return
    if fmt != "table":
        from empower_cli.render.tabular import rows_of_objects

        print_rows(fmt, *rows_of_objects([case_summary_json(c, digits) for c in cases], CASE_SUMMARY_KEYS))
        if truncated:
            print_error(note, prefix="note: ")  # a pipe reads only the rows
        return
    from empower_cli.render.terminal import cases_table, console

    out = console()
    if not cases:
        out.print("[dim]no cases match[/]")
        return
    out.print(cases_table(cases, digits=digits))
    if truncated:
        out.print(f"[yellow]{note}[/]")


def _filter(value: str | None, field: str) -> str | None:
    """A customer or agent filter follows the identifier rule: a value no identifier can hold
    (an invisible character, not NFC, a lone surrogate from argv bytes) is refused, not
    answered with an empty list that looks like "no cases"."""
    from empower_cli.core.text import clean_id

    return None if value is None else clean_id(value, field=field)
