"""`empower policy simulate NEW.toml`: what a new policy file would have changed in the
recorded history (registered on the `policy` group beside cli/policy_cmd.py's commands)."""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work. Names
# imported only for the type checker are quoted where Python evaluates an annotation.

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from empower_cli.cli.common import WHEN, JsonOption, Session, print_json, session, wants_json

if TYPE_CHECKING:
    from rich.console import RenderableType

    from empower_cli.services.simulate import Simulation


def register(group: typer.Typer) -> None:
    """Add `simulate` to the `policy` group."""
    group.command("simulate")(simulate)


def simulate(
    ctx: typer.Context,
    new_policy: Annotated[Path, typer.Argument(help="The policy file to try, e.g. policies.new.toml.")],
    since: Annotated[
        str | None,
        typer.Option("--since", help=f"Replay cases opened at or after WHEN: {WHEN}.",
                     show_default=False),
    ] = None,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Replay recorded cases under NEW.toml: what would change, and by how much.

    Cases are replayed under the policy in use and under NEW.toml with the same evaluation
    as live cases: how many change status and in which direction, the discretion that would
    have been spent, each rule bent and blocked before and after, and a few example case
    ids. Nothing is written.

    Example: empower policy simulate policies.new.toml --since 365d
    """
    with session(ctx) as s:
        from empower_cli.core.timeutil import parse_when
        from empower_cli.policy.load import load_policy
        from empower_cli.services.simulate import simulate as replay

        candidate = load_policy(new_policy)
        start = parse_when(since, now=s.now, field="--since") if since is not None else None
        result = _with_progress(lambda tick: replay(s.store, current=s.policy, new=candidate, since=start,
                                                    on_progress=tick), s, start)  # fmt: skip
        if wants_json(ctx, json):
            print_json(result)
            return
        from empower_cli.render.terminal import console

        before = f"the applied policy #{s.applied.number}"
        console().print(render(result, currency=candidate.currency, before=before, after=str(new_policy)))


def _with_progress(run: Callable[[Callable[[int], None] | None], "Simulation"], s: Session,
                   since: dt.datetime | None) -> dict[str, Any]:  # fmt: skip
    """A progress bar on stderr when it is a terminal (a year of history takes minutes)."""
    import sys

    from empower_cli.render.json import simulation_json

    if not sys.stderr.isatty():
        return simulation_json(run(None))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from empower_cli.render.terminal import console
    from empower_cli.services.simulate import count_cases

    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True) as bar:  # fmt: skip
        task = bar.add_task("replay", total=count_cases(s.store, since))
        return simulation_json(run(lambda done: bar.update(task, completed=done)))


def render(r: dict[str, Any], *, currency: str, before: str, after: str) -> "RenderableType":
    from rich import box
    from rich.console import Group
    from rich.table import Table

    from empower_cli.render.columns import grouped
    from empower_cli.render.terminal import safe

    parts: list[RenderableType] = [
        f"replayed [bold]{r['cases']:,}[/] cases under {safe(before)} ({safe(r['policy_before']['version'])}) "
        f"and {safe(after)} ({safe(r['policy_after']['version'])})",
        f"changed: [bold]{r['changed']:,}[/] · became in policy [green]{r['became_in_policy']:,}[/] · "
        f"left policy [red]{r['left_policy']:,}[/]",
        f"discretion spent: {grouped(r['discretion_before'])} → [bold]{grouped(r['discretion_after'])}[/] {currency}",
    ]
    if r["not_replayable"]:
        parts.append(f"[yellow]{r['not_replayable']:,} cases cannot be expressed under one of the policies:[/]")
        parts += [f"  {n:,} × {safe(reason)}" for reason, n in r["not_replayable_reasons"].items()]
    if r["transitions"]:
        moves = Table("from", "to", "cases", box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
        for t in r["transitions"]:
            moves.add_row(t["from"], t["to"], f"{t['count']:,}")
        parts += ["", "[bold]status changes[/]", moves]
    if r["rules"]:
        rules = Table("rule", "bent before", "after", "blocked before", "after", box=box.SIMPLE_HEAD,
                      show_edge=False, header_style="bold")  # fmt: skip
        for x in r["rules"]:
            rules.add_row(safe(x["id"]), f"{x['bent_before']:,}", f"{x['bent_after']:,}",
                          f"{x['blocked_before']:,}", f"{x['blocked_after']:,}")  # fmt: skip
        parts += ["", "[bold]rules[/]", rules]
    if r["examples"]:
        parts += ["", "[bold]examples[/] (case ids)"]
        parts += [f"  {kind}: {', '.join(map(str, ids))}" for kind, ids in r["examples"].items()]
    return Group(*parts)
