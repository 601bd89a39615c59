"""`empower customer show|segment`: a customer's budget and recent cases, and segment grants."""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from typing import TYPE_CHECKING, Annotated, Any

import typer

from empower_cli.cli.common import (
    JsonOption,
    ListFormatOption,
    Session,
    chosen_format,
    print_json,
    print_rows,
    session,
    wants_json,
)

if TYPE_CHECKING:
    from empower_cli.core.models import BudgetState


def register(group: typer.Typer) -> None:
    """Add `show` and `segment` to the `customer` group."""
    group.command("show")(show)
    group.command("segment")(segment)


def show(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer id.", show_default=False)],
    fmt: ListFormatOption = None,
    json: JsonOption = False,
) -> None:
    """Budget limit, spent, held and remaining for one customer, with recent cases.

    In a pipe (or --format tsv|csv): the figures as field/value lines, an empty line, then the
    recent cases under a header, every value whole.

    Example: empower customer show C-1001
    """
    with session(ctx) as s:
        from empower_cli.core.text import clean_id
        from empower_cli.render.json import customer_json
        from empower_cli.services.cases import customer_budget

        chosen = chosen_format(ctx, fmt, json)
        customer = clean_id(customer_id, field="customer")
        budget = customer_budget(customer, policy=s.policy, store=s.store, now=s.now)
        cases = s.store.list_cases(now=s.now, customer=customer, limit=20)
        shown = customer_json(customer, s.store.customer_segment(customer), budget, cases, s.policy)
        if chosen == "json":
            print_json(shown)
        elif chosen != "table":
            from empower_cli.render.json import CASE_SUMMARY_KEYS, customer_fields
            from empower_cli.render.tabular import rows_of_objects

            print_rows(chosen, ["field", "value"], customer_fields(shown, s.policy))
            print()
            print_rows(chosen, *rows_of_objects(shown["cases"], CASE_SUMMARY_KEYS))
        else:
            _print_customer(s, shown, budget, cases)


def _print_customer(s: Session, shown: dict[str, Any], budget: "BudgetState", cases: list[dict[str, Any]]) -> None:
    from empower_cli.render.terminal import cases_table, console, money_line, safe

    out = console()
    seg = f" ({safe(shown['segment'])})" if shown["segment"] else ""
    out.print(f"[bold]customer {safe(shown['customer_id'])}[/]{seg} — last {s.policy.budget.window_days} days")
    out.print(money_line(budget, s.policy.digits, s.policy.currency))
    out.print(f"discretionary cases in the window: {budget.count}"
              + (f" of {s.policy.budget.max_cases}" if s.policy.budget.max_cases else ""))  # fmt: skip
    if cases:
        out.print(cases_table(cases, digits=s.policy.digits))
    else:
        out.print("[dim]no cases recorded for this customer[/]")


def segment(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer id.", show_default=False)],
    name: Annotated[str, typer.Argument(help="A segment of [budget.segments], e.g. vip.", show_default=False)],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the log).", show_default=False)],
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Put a customer in a budget segment (a role with can_approve); recorded in the log.

    The segment's limit from [budget.segments] applies to the customer's budget from now on;
    agents cannot claim it with `case new --segment`.

    Example: empower customer segment C-1001 vip --note "Gold card holder since 2019"
    """
    with session(ctx) as s:
        from empower_cli.services.cases import grant_segment

        result = grant_segment(customer_id, name, note, policy=s.policy, store=s.store, identity=s.identity(),
                               now=s.now)  # fmt: skip
        if wants_json(ctx, json):
            from empower_cli.render.json import segment_json

            print_json(segment_json(result, s.policy.digits))
            return
        from empower_cli.render.terminal import console, money_line, safe

        out = console()
        who = safe(result.customer_id)
        if result.changed:
            was = safe(result.previous) if result.previous else "no segment"
            out.print(f"customer {who} is now in segment {safe(result.segment)} (was {was})")
        else:
            out.print(f"customer {who} is already in segment {safe(result.segment)}; nothing changed")
        out.print(money_line(result.budget, s.policy.digits, s.policy.currency))
