"""The `empower` command line: global options and the command groups.

Each group lives in its own module; heavy imports happen inside the commands.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from empower_cli import __version__
from empower_cli.cli.common import DbOption, OneLineErrors, PolicyOption, Settings, handle_errors

# The command groups: name -> (modules that define and extend its Typer app, its help).
GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "case": (("empower_cli.cli.case", "empower_cli.cli.workflow"), "Open, inspect and settle cases."),
    "customer": (("empower_cli.cli.customer",), "Customers and their discretion budgets."),
    "policy": (("empower_cli.cli.policy_cmd",), "Validate, show, apply and simulate policies."),
    "import": (("empower_cli.cli.import_cmd",), "Bring in historical cases from another system."),
    "audit": (("empower_cli.cli.audit_cmd",), "Supervisor reports and the tamper-evident log check."),
}
_VALUE_OPTIONS = ("--policy", "--db")  # global options that take a value


def _group_app(name: str) -> typer.Typer:
    modules, _ = GROUPS[name]
    loaded = [importlib.import_module(m) for m in modules]  # later modules add commands to the first
    group: typer.Typer = loaded[0].app
    return group


def build_app(load: str | None = "*") -> typer.Typer:
    """The `empower` app with every group's commands (load="*"), or only those of group
    `load` and, for the others, just their name and help (enough for `empower --help`)."""
    root = typer.Typer(
        name="empower",
        help="Frontline decision support: fair, pro-customer exceptions within policy and budget.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        add_completion=False,
        cls=OneLineErrors,
    )
    root.callback()(_root)
    root.command()(init)
    for name, (_, help_text) in GROUPS.items():
        group = _group_app(name) if load in ("*", name) else typer.Typer(help=help_text)
        root.add_typer(group, name=name, help=help_text)
    return root


def _invoked_group(argv: list[str]) -> str | None:
    """The group a command line runs (`empower --db X case new` -> "case"), if any."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in GROUPS else None
    return None


def _version(value: bool) -> None:
    if value:
        _print_version()
        raise typer.Exit()


def _print_version() -> None:
    print(f"empower {__version__}")


def _root(
    ctx: typer.Context,
    policy: PolicyOption = None,
    db: DbOption = None,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Frontline decision support: check a proposed exception against policies.toml and
    the customer's discretion budget, say what it needs, and record it in a tamper-evident log.

    Example: empower case new
    """
    ctx.obj = Settings(policy=policy, db=db, json=json)


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write policies.toml and data/.")] = Path("."),
    json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Write the example policies.toml (unless one exists) and create the database.

    Example: empower init ./shop
    """
    with handle_errors():
        from empower_cli.cli.common import print_error, print_json, settings
        from empower_cli.core.timeutil import utcnow
        from empower_cli.services.admin import initialise

        result = initialise(directory, db=settings(ctx).db, now=utcnow())
        if result["note"]:
            print_error(result["note"], prefix="note: ")
        if settings(ctx).json or json:
            print_json(result)
        else:
            verb = "wrote" if result["policy_created"] else "kept the existing"
            print(f"{verb} {result['policy']}\ndatabase ready at {result['db']}")
            applied = result["applied"]
            if result["policy_applied"]:
                print(f"applied policy version {applied['policy_version']} as #{applied['number']} "
                      f"(by {applied['applied_by']}): it governs this database")  # fmt: skip
            if result["indexes_rebuilt"]:
                print(f"rebuilt {result['indexes_rebuilt']} report indexes left unbuilt by an interrupted import")


def main() -> None:
    """Console-script entry point."""
    # `empower --version` alone answers before Typer builds the whole command tree;
    # any other spelling (with other options too) goes through the --version option.
    argv = sys.argv[1:]
    if argv == ["--version"]:
        _print_version()
        return
    # Build only the invoked group's commands: Typer converts every command of every
    # group on each start, and a decision should not pay for the audit reports.
    build_app(_invoked_group(argv))()


def __getattr__(name: str) -> typer.Typer:
    """`empower_cli.cli.app`: the complete app (tests, documentation walkers)."""
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(name)
