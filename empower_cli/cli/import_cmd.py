"""`empower import cases FILE`: batch import of historical cases (SPEC §7)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from empower_cli.cli.common import JsonOption, print_json, session, wants_json

if TYPE_CHECKING:
    from empower_cli.cli.common import Session
    from empower_cli.imports.read import Format
    from empower_cli.imports.run import Importer, Summary


class ImportFormat(str, Enum):
    """The file formats `import cases` reads."""

    csv = "csv"
    jsonl = "jsonl"


def register(group: typer.Typer) -> None:
    """Add `cases` to the `import` group."""
    group.command("cases")(cases)


def cases(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with a header row, or JSON Lines.", show_default=False)],
    fmt: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="csv or jsonl (default: from the file's extension).", show_default=False,
                     case_sensitive=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", show_default=False,
                     help="A new file for the rejected rows, never an existing one (default: FILE.rejects.csv, "
                          "or FILE.rejects-2.csv … when taken). Written only when a row is rejected."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Import historical cases: validated like live cases, idempotent, committed in chunks;
    every rejected row is written with its line number and reason to the rejects file.

    Example: empower import cases history.csv --rejects history.rejects.csv
    """
    # Not `governed` yet: a --rejects path that would replace a file is refused before the
    # database is opened (or created); the applied policy is read right after.
    with session(ctx, writes=not dry_run, governed=False) as s:
        from empower_cli.core.errors import ImportInterrupted
        from empower_cli.imports.read import detect_format

        form = detect_format(file, fmt and fmt.value)
        as_json = wants_json(ctx, json)
        if not file.is_file():
            from empower_cli.core.errors import NotFound

            raise NotFound(f"{file}: no such file")
        target = _rejects_target(file, rejects, dry_run=dry_run, s=s)  # before the database is opened
        bar = _Bar(file.stat().st_size) if not as_json and sys.stderr.isatty() else None
        importer = _importer(s, file, form, dry_run=dry_run, rejects=target, bar=bar)
        try:
            with importer, bar.progress if bar is not None else nullcontext():
                summary = importer.run()
        except KeyboardInterrupt:  # outside the importer's own watch (the progress bar's end)
            raise ImportInterrupted(importer.summary.imported, dry_run=dry_run) from None
        _report(summary, rejects, as_json=as_json)


def _importer(s: Session, file: Path, fmt: Format, *, dry_run: bool, rejects: Path | None,
              bar: _Bar | None) -> Importer:  # fmt: skip
    """The import of FILE by the acting identity, who must be allowed to import."""
    from empower_cli.imports.pool import default_workers
    from empower_cli.imports.run import DryRun, Importer, WriteInto

    identity = s.identity()  # under the applied policy (a new database gets the file first)
    if not identity.role.may_import:
        from empower_cli.core.errors import NotAllowed

        raise NotAllowed(f"{identity.agent} ({identity.role.name}) may not import cases; only a role with "
                         "can_approve or can_import may")  # fmt: skip
    return Importer(
        file, fmt, policy=s.policy, identity=identity, now=s.now,
        target=DryRun(s.db_path) if dry_run else WriteInto(s.store), rejects=rejects,
        workers=default_workers(file.stat().st_size),
        on_progress=None if bar is None else bar.moved, on_phase=None if bar is None else bar.phase,
    )  # fmt: skip


def _rejects_target(file: Path, rejects: Path | None, *, dry_run: bool, s: Session) -> Path | None:
    """Where the rejects report goes; refuses (exit 2) a path that would replace a file.
    A dry run writes no report unless asked for one; the default name is numbered when taken."""
    from empower_cli.imports.rejects import check_folder, default_rejects_path, protected_files, refuse_overwrite

    protected = protected_files(input_file=file, database=s.db_path if isinstance(s.db_path, Path) else None,
                                policy=s.policy_path)
    if rejects is not None:
        refuse_overwrite(rejects, protected)
        return rejects
    if dry_run:
        return None
    target = default_rejects_path(file)
    check_folder(target)
    return target


class _Bar:
    """The import's progress on stderr: the bytes read, then the phase it has moved to."""

    def __init__(self, size: int) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        from empower_cli.render.terminal import console

        # No refresh thread (auto_refresh=False): the importer forks its workers, and a fork
        # while another thread holds a lock is best avoided. The bar moves once per chunk.
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=console(stderr=True), transient=True,
                                 auto_refresh=False)  # fmt: skip
        self.task = self.progress.add_task("importing", total=size)

    def moved(self, done: int) -> None:
        self.progress.update(self.task, completed=done, refresh=True)

    def phase(self, description: str) -> None:
        self.progress.update(self.task, description=description, refresh=True)


def _report(summary: Summary, rejects: Path | None, *, as_json: bool) -> None:
    """The summary on stdout; on stderr, what is still to do, though nothing was lost."""
    if rejects is not None and summary.rejects_file not in (None, str(rejects)):
        summary.notes.append(f"--rejects: {rejects} appeared during the import and was kept; "
                             f"the rejected rows are in {summary.rejects_file}")  # fmt: skip
    if as_json:
        from empower_cli.render.json import import_json

        print_json(import_json(summary))
    else:
        _print_summary(summary)
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)


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
