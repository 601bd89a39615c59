"""`empower db copy SOURCE TARGET`: move a database between backends and prove nothing changed."""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from typing import Annotated

import typer

from empower_cli.cli.common import JsonOption, print_json, wants_json


def register(group: typer.Typer) -> None:
    """Add `copy` to the `db` group."""
    group.command("copy")(copy)


def copy(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The database to copy: a SQLite file or a postgresql:// URL.",
                                          show_default=False)],
    target: Annotated[str, typer.Argument(help="An empty database to fill: a SQLite file (created) or a "
                                          "postgresql:// URL.", show_default=False)],
    json: JsonOption = False,
) -> None:
    """Copy every table into an empty database (SQLite to PostgreSQL, or back), then verify
    both logs: the same audit head and as many rows in every table.

    Example: empower db copy data/empower.db postgresql://empower@db.example.com/empower
    """
    from empower_cli.audit.transfer import copy_database
    from empower_cli.store.backend import parse_location

    done = copy_database(parse_location(source), parse_location(target))
    if wants_json(ctx, json):
        from empower_cli.render.json import copied_json

        print_json(copied_json(done))
        return
    rows = ", ".join(f"{n} {table}" for table, n in done.rows.items())
    print(f"copied {done.source} into {done.target}: {rows}\nboth logs verify to {done.head}")
