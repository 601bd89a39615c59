"""The rejects report of `empower import cases` (SPEC §7, §9): where it may go, and how it
is written so that it never replaces a file — not the input, the database or the policy.

The report is written to a temporary file beside its final name and linked into place at
the end: a link never replaces an existing name, so a file that appeared meanwhile is kept.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from empower_cli.core.errors import InvalidInput
from empower_cli.core.text import neutralise

COLUMNS = ("line", "external_id", "reason", "record")
MAX_NUMBER = 10_000  # FILE.rejects-2.csv … -10000; past that the report keeps its temporary name
# Where linking is not supported (some network and FAT filesystems): reserve the name, then replace it.
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
# SQLite keeps a database's uncommitted pages and locks in files named after it.
DB_COMPANIONS = (("-wal", "the database's write-ahead log"), ("-shm", "the database's shared-memory file"),
                 ("-journal", "the database's journal"))  # fmt: skip


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def numbered(path: Path, n: int) -> Path:
    """The n-th alternative to a taken name: history.csv.rejects.csv -> history.csv.rejects-2.csv."""
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def protected_files(*, input_file: Path, database: Path | None, policy: Path | None) -> dict[Path, str]:
    """Every file an import's output must never replace, with what to call it (`database`:
    None when it is not a file here, as a PostgreSQL database)."""
    files = {input_file: "the input file"}
    if policy is not None:
        files[policy] = "the policy file"
    if database is None:
        return files
    files[database] = "the database"
    for db in {database, _resolved(database)}:  # SQLite names the WAL after the resolved file
        for suffix, what in DB_COMPANIONS:
            files[Path(f"{db}{suffix}")] = what
    return files


def refuse_overwrite(target: Path, protected: Mapping[Path, str], *, option: str = "--rejects") -> None:
    """Refuse (exit 2, naming OPTION) a report path that is a protected file under any
    spelling (symlink, hard link, `./`), or that exists at all, or has no folder to go in."""
    for path, what in protected.items():
        if _same_file(target, path):
            raise InvalidInput(option, f"{target} is {what}; the rejects report never replaces it, choose a new path")
    if os.path.lexists(target):  # lexists: a dangling symlink counts, it would be followed
        raise InvalidInput(option, f"{target} already exists; the rejects report never overwrites a file, "
                                   "choose a new path")  # fmt: skip
    check_folder(target, option=option)


def check_folder(target: Path, *, option: str = "--rejects") -> None:
    """Refuse before anything is read when the report could not be written."""
    folder = target.parent
    if not folder.is_dir():
        problem = "is not a folder" if os.path.lexists(folder) else "does not exist"
        raise InvalidInput(option, f"{folder} {problem}, so {target.name} cannot be written there")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(option, f"cannot write in {folder} (permission denied); pass --rejects PATH elsewhere")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as given
        return Path(os.path.abspath(path))


def _same_file(a: Path, b: Path) -> bool:
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)  # a hard link has its own name but the same inode
    except OSError:
        return False  # one of them does not exist


class RejectsFile:
    """line, external_id, reason, record: one row per rejected record, in line order per chunk.
    Cells that a spreadsheet would run as a formula are prefixed with ' (as audit CSV is).

    Written only when a row is rejected. `finish()` links it under `path`, or under the next
    free numbered name when `path` is taken; `discard()` (or `close()` before `finish()`)
    removes the temporary file, so an interrupted import leaves no report to refuse on re-run.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: no report (a dry run without --rejects)
        self.placed: Path | None = None
        self.rows = 0
        self._temp: Path | None = None
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def open(self) -> None:
        """Create the temporary file once the header is read, before any row is recorded:
        a report that cannot be written stops the import while nothing is recorded yet."""
        if self.path is None or self._handle is not None:
            return
        folder = self.path.parent
        for _ in range(100):
            temp = folder / f".{self.path.name}.{secrets.token_hex(4)}.part"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            except OSError as e:
                raise InvalidInput("--rejects", f"cannot write in {folder} ({e.strerror})") from None
            self._temp, self._handle = temp, os.fdopen(fd, "w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(COLUMNS)
            return
        raise InvalidInput("--rejects", f"cannot create a temporary file in {folder}")

    def write(self, rows: list[tuple[int, str, str, str]]) -> None:
        if self._writer is None or not rows:
            return
        rows.sort(key=lambda r: r[0])
        self._writer.writerows(
            (line, neutralise(ext), neutralise(reason), neutralise(raw.rstrip("\r\n")))
            for line, ext, reason, raw in rows
        )
        self.rows += len(rows)
        assert self._handle is not None
        self._handle.flush()

    def finish(self) -> Path | None:
        """Put the report in place; the path used, or None when no row was rejected."""
        if self._handle is None or self._temp is None or self.path is None:
            return None
        if not self.rows:
            self.discard()
            return None
        self._handle.close()
        self._handle = None
        temp, self._temp = self._temp, None
        try:
            for n in range(1, MAX_NUMBER + 1):
                final = numbered(self.path, n)
                if _place(temp, final):
                    self.placed = final
                    return final
        except OSError:
            pass  # the rows are committed by now: keep the report rather than fail the import
        self.placed = temp  # every name taken, or none writable: the report stays under its temporary name
        return temp

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._temp.unlink()
            self._temp = None

    def close(self) -> None:
        self.discard()


def _place(temp: Path, final: Path) -> bool:
    """Give TEMP the name FINAL unless FINAL exists (then False): never replaces a file.
    Other failures raise OSError."""
    try:
        os.link(temp, final)  # fails with EEXIST whatever FINAL is, a dangling symlink included
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in _NO_LINK:
            raise
        return _reserve_and_replace(temp, final)
    temp.unlink()
    return True


def _reserve_and_replace(temp: Path, final: Path) -> bool:
    """Without hard links: claim FINAL exclusively, then replace our own empty claim."""
    try:
        os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return False
    os.replace(temp, final)
    return True
