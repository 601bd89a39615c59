"""How `empower case search` shows its matches: one block per match, the matching words in
bold, user text escaped (rich markup shown literally, control characters made visible)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from empower_cli.store.search import MARK_END, MARK_START

if TYPE_CHECKING:
    from empower_cli.store.search import Hit

JSON_MARKS = ("«", "»")  # around each matching word in the JSON snippet
WHAT = {"opened": "justification", "imported": "justification (imported)", "cosigned": "co-sign note",
        "approved": "approval note", "denied": "denial note", "objected": "objection"}  # fmt: skip


def plain_snippet(snippet: str) -> str:
    """The snippet as JSON carries it: matches between « and », one line."""
    text = snippet.replace(MARK_START, JSON_MARKS[0]).replace(MARK_END, JSON_MARKS[1])
    return " ".join(text.split())


def styled_snippet(snippet: str) -> str:
    """The snippet as rich markup: each match bold, everything else escaped and visible."""
    from empower_cli.render.terminal import safe

    out = []
    for k, part in enumerate(" ".join(snippet.split()).split(MARK_START)):
        match, _, rest = part.partition(MARK_END) if k else ("", "", part)
        out.append((f"[bold yellow]{safe(match)}[/]" if match else "") + safe(rest))
    return "".join(out)


def hits_lines(hits: Sequence[Hit]) -> list[str]:
    """Rich markup lines: a header per match, then its snippet."""
    from empower_cli.render.terminal import safe

    lines = []
    for hit in hits:
        lines.append(f"[bold]case {hit.case_id}[/] · {safe(hit.status)} · {safe(hit.customer_id)} · "
                     f"{safe(hit.case_type)} · opened {hit.opened_at[:10]}")  # fmt: skip
        when = hit.at[:16].replace("T", " ")
        lines.append(f"  [dim]{WHAT.get(hit.source, hit.kind)} by {safe(hit.actor)}, {when}:[/] "
                     f"{styled_snippet(hit.snippet)}")  # fmt: skip
    return lines
