"""`empower db copy SOURCE TARGET`: move a whole database to another backend (SQLite to
PostgreSQL, or back) and prove nothing changed: both chains verify to the same head and every
table holds as many rows on both sides."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from empower_cli.audit.verify import verify
from empower_cli.core.errors import Conflict, StoreError
from empower_cli.store.backend import Location, describe, open_store
from empower_cli.store.chain import Head
from empower_cli.store.sqlite import Store

CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Copied:
    """What `db copy` did and checked."""

    source: str
    target: str
    rows: dict[str, int]  # table -> rows copied (equal on both sides)
    head: Head  # the same on both sides


def copy_database(source: Location, target: Location) -> Copied:
    """Copy every table into an empty target in one transaction, then verify both logs."""
    if describe(source) == describe(target):
        raise Conflict(f"{describe(target)}: the source and the target are the same database")
    with open_store(source, create=False) as src, open_store(target) as dst:
        before = _verified(src, "source")
        if not dst.is_empty():
            raise Conflict(f"{dst.location}: the target database is not empty; db copy only fills an empty one")
        with dst.write():
            if not dst.is_empty():  # re-read under the lock: another copy may have won
                raise Conflict(f"{dst.location}: the target database is not empty; db copy only fills an empty one")
            for table in Store.COPIED_TABLES:
                _copy_table(src, dst, table)
        after = _verified(dst, "target")
        rows = {t: src.row_count(t) for t in Store.COPIED_TABLES}
        landed = {t: dst.row_count(t) for t in Store.COPIED_TABLES}
        if after != before or landed != rows:
            raise StoreError(f"{dst.location}: the copy differs from the source (head {after} against {before}, "
                             f"rows {landed} against {rows})")  # fmt: skip
        return Copied(src.location, dst.location, rows, after)


def _copy_table(src: Store, dst: Store, table: str) -> None:
    columns = src.columns(table)
    if dst.columns(table) != columns:
        raise StoreError(f"{dst.location}: table {table} has other columns than the source's")
    for chunk in _chunks(src.table_rows(table), CHUNK_ROWS):
        dst.insert_rows(table, columns, chunk)


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _verified(store: Store, side: str) -> Head:
    result = verify(store)
    if not result.ok:
        raise Conflict(f"{store.location}: the {side} log does not verify: {result.problem}")
    return result.head
