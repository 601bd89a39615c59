"""`empower case search TEXT`: find past cases by what was written in them (justifications,
notes, objection reasons), best matches first, each with the passage that matched.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

from typing import Annotated

import typer

from empower_cli.cli.common import MAX_SQL_INT, JsonOption, print_json, session, wants_json

DEFAULT_LIMIT = 20


def register(group: typer.Typer) -> None:
    """Add `search` to the `case` group."""
    group.command("search")(search)


def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Words to find (every one must appear; any order).",
                                        show_default=False)],
    limit: Annotated[int, typer.Option("--limit", help="At most this many matches, best first; 0 for all.", min=0,
                                       max=MAX_SQL_INT, show_default=True)] = DEFAULT_LIMIT,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Full-text search over justifications, co-sign/approval/denial notes and objection reasons.

    Words match whatever their ending (flood finds flooded and flooding) and accents;
    every word must appear in the same text. Best matches first, with the matching passage.

    Example: empower case search "flood basement" --limit 10
    """
    with session(ctx) as s:
        from empower_cli.services.search import search_cases

        hits = search_cases(text, store=s.store, now=s.now, limit=limit + 1 if limit else None)
        truncated = bool(limit) and len(hits) > limit
        hits = hits[:limit] if truncated else hits
        if wants_json(ctx, json):
            from empower_cli.render.json import search_json

            print_json(search_json(text, hits, truncated=truncated, limit=limit or None))
            return
        from empower_cli.render.search import hits_lines
        from empower_cli.render.terminal import console

        out = console()
        if not hits:
            out.print("[dim]no case mentions that[/]")
            return
        for line in hits_lines(hits):
            out.print(line, highlight=False, soft_wrap=True)
        if truncated:
            out.print(f"[yellow]showing the best {limit:,} matches; more match: --limit 0 shows all[/]")
