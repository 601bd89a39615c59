"""`empower policy check|show`: validate and display policies.toml."""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from pathlib import Path
from typing import Annotated

import typer

from empower_cli.cli.common import JsonOption, handle_errors, print_json, settings, wants_json

app = typer.Typer(help="Validate, show and simulate the policy file.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Policy file (default: the one in use).", show_default=False)
    ] = None,
    json: JsonOption = False,
) -> None:
    """Validate a policy file; exit 0 when valid, 3 listing every problem otherwise.

    Example: empower policy check policies.toml
    """
    from empower_cli.config import find_policy
    from empower_cli.errors import PolicyError
    from empower_cli.policy import load_policy

    as_json = wants_json(ctx, json)
    with handle_errors():
        target = path or find_policy(settings(ctx).policy)
        try:
            policy = load_policy(target)
        except PolicyError as e:
            if not as_json:
                raise
            print_json({"ok": False, "path": str(target), "error": str(e), "problems": list(e.problems)})
            raise typer.Exit(3) from None
        summary = {"ok": True, "path": str(target), "name": policy.name, "version": policy.version,
                   "sha256": policy.sha256, "case_types": len(policy.case_types),
                   "rules": sum(len(t.rules) for t in policy.case_types.values())}  # fmt: skip
        if as_json:
            print_json(summary)
        else:
            print(f"{target}: ok — {policy.name!r} version {policy.version}, "
                  f"{summary['case_types']} case types, {summary['rules']} rules")  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show the policy in use as tables: budget, roles, actions, case types and rules.

    Example: empower policy show
    """
    from empower_cli.config import find_policy
    from empower_cli.policy import load_policy

    with handle_errors():
        policy = load_policy(find_policy(settings(ctx).policy))
        if wants_json(ctx, json):
            from empower_cli.services_admin import policy_json

            print_json(policy_json(policy))
            return
        from empower_cli.render import console, policy_tables

        console().print(policy_tables(policy))


from empower_cli.cli.simulate_cmd import simulate  # noqa: E402  (lives in its own module)

app.command("simulate")(simulate)
