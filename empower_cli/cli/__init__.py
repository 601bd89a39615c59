"""The `empower` command line: global options and the command groups.

Each group lives in its own module; heavy imports happen inside the commands.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

import sys
from pathlib import Path
from typing import Annotated

import typer

from empower_cli import __version__
from empower_cli.cli import audit_cmd, case, customer, import_cmd, policy_cmd
from empower_cli.cli import workflow as _workflow  # noqa: F401  (registers case queue/cosign/...)
from empower_cli.cli.common import DbOption, OneLineErrors, PolicyOption, Settings, handle_errors

app = typer.Typer(
    name="empower",
    help="Frontline decision support: fair, pro-customer exceptions within policy and budget.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
    cls=OneLineErrors,
)
app.add_typer(case.app, name="case")
app.add_typer(customer.app, name="customer")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(import_cmd.app, name="import")
app.add_typer(audit_cmd.app, name="audit")


def _version(value: bool) -> None:
    if value:
        _print_version()
        raise typer.Exit()


def _print_version() -> None:
    print(f"empower {__version__}")


@app.callback()
def root(
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


@app.command()
def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write policies.toml and data/.")] = Path("."),
    json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Write the example policies.toml (unless one exists) and create the database.

    Example: empower init ./shop
    """
    with handle_errors():
        from empower_cli.cli.common import print_json, settings
        from empower_cli.services_admin import initialise

        result = initialise(directory, db=settings(ctx).db)
        if settings(ctx).json or json:
            print_json(result)
        else:
            verb = "wrote" if result["policy_created"] else "kept the existing"
            print(f"{verb} {result['policy']}\ndatabase ready at {result['db']}")


def main() -> None:
    """Console-script entry point."""
    # `empower --version` alone answers before Typer builds the whole command tree;
    # any other spelling (with other options too) goes through the --version option.
    if sys.argv[1:] == ["--version"]:
        _print_version()
        return
    app()
