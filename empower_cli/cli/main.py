"""The `empower` command line: the global options, `init`, and the command groups, built
whole (`build_app()`) or for the one group a command line runs (`main`, the console script).
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
import typer.main
from typer.core import TyperOption
from typer.models import CommandInfo

from empower_cli import __version__
from empower_cli.cli.common import DbOption, Group, PolicyOption, Root, Settings, print_error, print_json, settings

# The command groups: name -> (the modules whose `register(group)` adds its commands, its help).
GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "case": (
        ("empower_cli.cli.case", "empower_cli.cli.workflow", "empower_cli.cli.search_cmd",
         "empower_cli.cli.precedents_cmd"),
        "Open, inspect and settle cases.",
    ),
    "customer": (("empower_cli.cli.customer",), "Customers and their discretion budgets."),
    "policy": (
        ("empower_cli.cli.policy_cmd", "empower_cli.cli.simulate_cmd"),
        "Validate, show, apply and simulate policies.",
    ),
    "import": (("empower_cli.cli.import_cmd",), "Bring in historical cases from another system."),
    "audit": (
        ("empower_cli.cli.audit_cmd", "empower_cli.cli.audit_share"),
        "Supervisor reports and the tamper-evident log check.",
    ),
    "db": (("empower_cli.cli.db_cmd",), "Move a database between SQLite and PostgreSQL."),
}


def build_app(load: str | None = "*", command: str | None = None) -> typer.Typer:
    """The `empower` app with every group's commands (load="*"), or only those of group
    `load` and, for the others, just their name and help (enough for `empower --help`).

    With `command`, a command of group `load` the command line runs (see `invoked_command`),
    that group gets that one command and the root no `init`: what runs, its --help and its
    errors are the same, and Typer converts one command instead of a dozen. A name the group
    does not have keeps them all, for Click's "No such command ... Did you mean" answer.
    """
    root = root_app()
    if command is None:
        root.command()(init)
    for name, (modules, help_text) in GROUPS.items():
        group = typer.Typer(help=help_text, no_args_is_help=True, cls=Group)
        if load in ("*", name):
            for module in modules:
                importlib.import_module(module).register(group)
            if command is not None and load == name:
                only = [c for c in group.registered_commands if _command_name(c) == command]
                group.registered_commands = only or group.registered_commands
        root.add_typer(group, name=name, help=help_text)
    return root


def _command_name(info: CommandInfo) -> str:
    assert info.callback is not None
    return info.name or typer.main.get_command_name(info.callback.__name__)


def root_app() -> typer.Typer:
    """The root command alone: the global options, no commands yet."""
    root = typer.Typer(
        name="empower",
        help="Frontline decision support: fair, pro-customer exceptions within policy and budget.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},  # every command inherits it
        cls=Root,
    )
    root.callback()(_root)
    return root


def invoked_group(argv: Sequence[str], root: typer.Typer) -> str | None:
    """The group a command line runs (`empower --db X case new` -> "case"), if any, skipping
    the values of ROOT's options that take one (read from its parameters, so a new global
    option cannot route to the wrong group)."""
    return invoked_command(argv, root)[0]


def invoked_command(argv: Sequence[str], root: typer.Typer) -> tuple[str | None, str | None]:
    """The group a command line runs and, when it names one at once, the group's command:
    `empower --db X case new ...` -> ("case", "new"). The command is None when a help option
    comes before it (`empower --help case new`, `empower case --help new` print the help of
    the root or the group, which lists every command) or when nothing follows the group."""
    params = typer.main.get_command(root).params
    takes_value = {o for p in params if isinstance(p, TyperOption) and not (p.is_flag or p.count) for o in p.opts}
    help_options = {"-h", "--help"}
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif arg in help_options:
            return invoked_group(argv[i + 1 :], root), None
        elif not arg.startswith("-"):
            if arg not in GROUPS:
                return None, None
            rest = argv[i + 1 : i + 2]
            return arg, rest[0] if rest and not rest[0].startswith("-") else None
    return None, None


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
    from empower_cli.core.timeutil import utcnow
    from empower_cli.services.admin import initialise

    done = initialise(directory, db=settings(ctx).db, now=utcnow())
    if done.note:
        print_error(done.note, prefix="note: ")
    if settings(ctx).json or json:
        from empower_cli.render.json import init_json

        print_json(init_json(done))
        return
    print(f"{'wrote' if done.policy_created else 'kept the existing'} {done.policy.absolute()}\n"
          f"database ready at {done.db}")  # fmt: skip
    if done.policy_applied:
        print(f"applied policy version {done.applied.policy.version} as #{done.applied.number} "
              f"(by {done.applied.applied_by}): it governs this database")  # fmt: skip
    if done.agents_role:
        print(f"granted role {done.agents_role} what agents need: GRANT {done.agents_role} TO each agent's login "
              "(docs/postgres.md)")  # fmt: skip
    if done.indexes_rebuilt:
        print(f"rebuilt {done.indexes_rebuilt} report indexes left unbuilt by an interrupted import")
    print("next: " + next_step(directory, settings(ctx).db, done.db))


def next_step(directory: Path, db_option: str | None, db: str) -> str:
    """What to run after `init`: the commands find policies.toml in the current folder or
    above, so `cd DIR` first when DIR is elsewhere, and `--db` when the database is not the
    one they would find beside it (given by --db, not by EMPOWER_DB, which the shell keeps)."""
    import shlex

    command = "empower case new"
    if db_option is not None and os.environ.get("EMPOWER_DB") != db_option:
        command = f"empower --db {shlex.quote(db)} case new"
    if directory.resolve() != Path.cwd().resolve():
        return f"cd {shlex.quote(str(directory))} && {command}"
    return command


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
    # Shell completion (`empower <TAB>`, Typer's `_EMPOWER_COMPLETE` protocol) runs with no
    # arguments and needs every group's commands and choices.
    completing = any(k in os.environ for k in ("_EMPOWER_COMPLETE", "_TYPER_COMPLETE_ARGS"))
    if completing:
        build_app("*")()
        return
    build_app(*invoked_command(argv, root_app()))()
