"""`empower policy check|show|apply|log`: validate, display and apply policies.toml.

`policy simulate` lives in cli/simulate_cmd.py; both modules register on the `policy` group.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from pathlib import Path
from typing import Annotated

import typer

from empower_cli.cli.common import JsonOption, print_json, session, settings, wants_json


def register(group: typer.Typer) -> None:
    """Add `check`, `show`, `apply` and `log` to the `policy` group."""
    group.command("check")(check)
    group.command("show")(show)
    group.command("apply")(apply)
    group.command("log")(log)


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
    from empower_cli.core.errors import PolicyError
    from empower_cli.policy.load import load_policy
    from empower_cli.policy.paths import find_policy

    as_json = wants_json(ctx, json)
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


def show(
    ctx: typer.Context,
    applied: Annotated[bool, typer.Option("--applied", help="Show the policy applied to the database instead "
                                          "of the file.")] = False,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Show a policy as tables: budget, roles, actions, case types and rules.

    Shows the policy file (--policy, or policies.toml here or in a parent); with --applied,
    the policy applied to the database, which is the one that decides cases.

    Example: empower policy show --applied
    """
    from empower_cli.policy.paths import find_policy
    from empower_cli.services.governance import read_policy_file

    if applied:
        with session(ctx) as s:
            policy = s.policy
    else:
        policy = read_policy_file(find_policy(settings(ctx).policy)).policy
    if wants_json(ctx, json):
        from empower_cli.render.json import policy_json

        print_json(policy_json(policy))
        return
    from empower_cli.render.terminal import console, policy_tables

    console().print(policy_tables(policy))


def apply(
    ctx: typer.Context,
    note: Annotated[str | None, typer.Option("--note", help="Why this policy now (kept in the log).",
                                             show_default=False)] = None,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Make the policy file (--policy, or policies.toml) the one that governs the database.

    Only a role with can_approve under the policy applied now may; the full text and its
    SHA-256 are stored in the database and a policy_applied event joins the hash chain.
    A different currency is refused while the database holds cases.

    Example: empower policy apply --note "Return window bendable to 45 days from December"
    """
    from empower_cli.policy.paths import find_policy
    from empower_cli.services.governance import apply_policy, read_policy_file
    from empower_cli.services.workflow import optional_text

    with session(ctx) as s:
        text = optional_text(note, field="--note")
        file = read_policy_file(find_policy(settings(ctx).policy))
        governing = s.applied
        result = apply_policy(file, store=s.store, governing=governing, identity=s.identity(), now=s.now,
                              note=text)  # fmt: skip
        now = result.applied
        if wants_json(ctx, json):
            from empower_cli.render.json import application_json

            print_json(application_json(result))
        elif result.changed:
            print(f"applied {file.path} (version {now.policy.version}, sha256 {now.policy.sha256[:12]}…) "
                  f"as policy #{now.number}; it governs every case from now on")  # fmt: skip
        else:
            print(f"{file.path} is already the applied policy (#{now.number}, version "
                  f"{now.policy.version}); nothing changed")  # fmt: skip


def log(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every policy applied to the database, oldest first: who, when, sha256 and note.

    Example: empower policy log
    """
    with session(ctx) as s:
        from empower_cli.render.json import log_json

        rows = log_json(s.store.policy_log())
        if wants_json(ctx, json):
            print_json(rows)
            return
        from rich.table import Table

        from empower_cli.render.terminal import console, safe

        table = Table("#", "version", "applied at", "by", "sha256", "note", header_style="bold", box=None,
                      padding=(0, 1))  # fmt: skip
        for r in rows:
            table.add_row(str(r["number"]), safe(r["policy_version"]), r["at"][:16] + "Z", safe(r["by"]),
                          r["policy_sha256"][:12] + "…", safe(r["note"] or ""))  # fmt: skip
        console().print(table)
