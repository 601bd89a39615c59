"""`empower import cases FILE`: batch import of historical cases (SPEC §7)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from empower_cli.cli.common import JsonOption, handle_errors, print_json, session, wants_json

if TYPE_CHECKING:
    from empower_cli.import_read import Format
    from empower_cli.importer import Importer, Summary

app = typer.Typer(help="Bring in historical cases from another system.", no_args_is_help=True)


@app.command("cases")
def cases(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with a header row, or JSON Lines.", show_default=False)],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's extension).", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where to write rejected rows (default: FILE.rejects.csv).", show_default=False),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Import historical cases: validated like live cases, idempotent, committed in chunks;
    every rejected row is written with its line number and reason to the rejects file.

    Example: empower import cases history.csv --rejects history.rejects.csv
    """
    with handle_errors(), session(ctx, writes=not dry_run) as s:
        from empower_cli.import_read import detect_format
        from empower_cli.importer import Importer, RejectsFile, default_rejects_path
        from empower_cli.store_import import open_read_only

        form = detect_format(file, fmt)
        as_json = wants_json(ctx, json)
        identity = s.identity()
        if not identity.role.may_import:
            from empower_cli.errors import NotAllowed

            raise NotAllowed(f"{identity.agent} ({identity.role.name}) may not import cases; only a role with "
                             "can_approve or can_import may")  # fmt: skip
        if not file.is_file():
            from empower_cli.errors import NotFound

            raise NotFound(f"{file}: no such file")
        # A dry run writes nothing: no rejects file unless asked for one, no database.
        target = rejects if (rejects is not None or dry_run) else default_rejects_path(file)
        from empower_cli.import_pool import default_workers

        importer = Importer(policy=s.policy, identity=identity, now=s.now, store=None)
        importer.workers = default_workers(file.stat().st_size)
        if dry_run:
            importer.dry_conn = open_read_only(s.db_path)
        else:
            importer.store = s.store
        importer.rejects = RejectsFile(target)
        try:
            summary = _run(importer, file, form, progress=not as_json and sys.stderr.isatty())
        finally:
            importer.rejects.close()
            if importer.dry_conn is not None:
                importer.dry_conn.close()
        summary.rejects_file = str(target) if target is not None else None
        if as_json:
            print_json(summary.as_json())
        else:
            _print_summary(summary)
        if summary.note:
            print(f"note: {summary.note}", file=sys.stderr)


def _run(importer: Importer, file: Path, fmt: Format, *, progress: bool) -> Summary:
    if not progress:
        return importer.run(file, fmt)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from empower_cli.render import console

    size = file.stat().st_size
    # No refresh thread (auto_refresh=False): the importer forks its workers, and a fork
    # while another thread holds a lock is best avoided. The bar moves once per chunk.
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True, auto_refresh=False) as bar:  # fmt: skip
        task = bar.add_task("importing", total=size)
        importer.on_progress = lambda done: bar.update(task, completed=done, refresh=True)
        importer.on_phase = lambda phase: bar.update(task, description=phase, refresh=True)
        return importer.run(file, fmt)


def _print_summary(summary: Summary) -> None:
    verb = "would import" if summary.dry_run else "imported"
    print(
        f"read {summary.read}, {verb} {summary.imported}, skipped {summary.skipped} "
        f"(already recorded), rejected {summary.rejected} in {summary.elapsed:.2f}s "
        f"({summary.rows_per_second:,.0f} rows/s)"
    )
    if summary.rejected and summary.rejects_file:
        print(f"rejected rows, with line numbers and reasons: {summary.rejects_file}")
    elif summary.rejected:
        print("rerun with --rejects PATH to see each rejected row and its reason")
