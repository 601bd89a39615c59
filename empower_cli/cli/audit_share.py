"""`empower audit report --html FILE`: every audit report for a period in one self-contained
HTML file to share (render/html.py), written whole or not at all.
"""

# No `from __future__ import annotations`: Typer reads every command signature with
# eval() of each string annotation on every start; real objects skip that work.

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from empower_cli.cli.audit_cmd import SinceOption, UntilOption, describe, period_of
from empower_cli.cli.common import JsonOption, print_json, session, wants_json

Opt = typer.Option


def register(group: typer.Typer) -> None:
    """Add `report` to the `audit` group."""
    group.command("report")(report)


def report(
    ctx: typer.Context,
    html: Annotated[Path, Opt("--html", help="The HTML file to write (a new file unless --force).",
                              show_default=False, dir_okay=False)],
    since: SinceOption = None,
    until: UntilOption = None,
    force: Annotated[bool, Opt("--force", help="Replace FILE if it exists (never the database or policy).")] = False,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Write every report of the period to one self-contained HTML file to share.

    Summary with spend per week as a chart, agents with outliers marked and why, rules with
    policy candidates and suggested limits, customers with repeat exceptions, co-sign pairs
    (flagged first), outcomes and retention. Inline CSS and SVG, no script, no network: it
    opens anywhere. Every figure equals the matching `audit ... --format json` value.

    Example: empower audit report --html report.html --since 90d
    """
    with session(ctx) as s:
        from empower_cli.audit.share import all_reports
        from empower_cli.render.html import report_html

        db_file = s.db_path if isinstance(s.db_path, Path) else None  # a PostgreSQL database is no file here
        refuse_target(html, protected=[db_file, s.policy_path], force=force)
        period = period_of(s, since, until)
        from empower_cli.render.json import report_json

        reports = {name: report_json(name, rows, s.policy.digits)
                   for name, rows in all_reports(s.store, period, policy=s.policy).items()}  # fmt: skip
        page = report_html(reports, currency=s.policy.currency, period=describe(period),
                           generated=f"{s.now:%Y-%m-%d %H:%M} UTC", policy_version=s.policy.version)  # fmt: skip
        written = write_whole(html, page)
        if wants_json(ctx, json):
            from empower_cli.render.json import period_json, report_file_json

            print_json(report_file_json(written, len(page.encode("utf-8")), period_json(period), reports["summary"]))
        else:
            print(f"wrote {written} ({len(page.encode('utf-8')):,} bytes, {reports['summary']['cases']:,} cases, "
                  f"{describe(period)})")  # fmt: skip


def refuse_target(target: Path, *, protected: list[Path | None], force: bool) -> None:
    """Exit 2 before any work when FILE is the database (or its WAL/journal files) or the
    policy file under any spelling, an existing file without --force, or has no folder."""
    from empower_cli.core.errors import InvalidInput

    guarded = [p for p in protected if p is not None]
    guarded += [Path(f"{p}{suffix}") for p in guarded[:1] for suffix in ("-wal", "-shm", "-journal")]
    for path in guarded:
        if _same(target, path):
            raise InvalidInput("--html", f"{target} is the database or the policy file; choose another path")
    if os.path.lexists(target) and not (force and target.is_file()):
        raise InvalidInput("--html", f"{target} already exists; choose a new path or pass --force to replace it")
    if not target.parent.is_dir():
        raise InvalidInput("--html", f"{target.parent} is not a folder")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):
        return False


def write_whole(target: Path, text: str) -> Path:
    """Write beside the target, then rename: a reader never sees half a report."""
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target.resolve()
