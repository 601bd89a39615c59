"""Which backend a `--db` value names, and opening it: a `postgresql://` (or `postgres://`)
URL is PostgreSQL (store.postgres), anything else a SQLite file (store.sqlite)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from empower_cli.store.sqlite import Store

Location = Path | str
"""Where a database is: a SQLite file's path, or a PostgreSQL URL (a str)."""
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def parse_location(text: str | Path) -> Location:
    """A `--db` value as a location: a URL stays text, anything else is a path (checked here,
    so that a SQLite command never loads the PostgreSQL module)."""
    if isinstance(text, str) and text.startswith(POSTGRES_SCHEMES):
        return text
    return Path(text)


def describe(location: Location) -> str:
    """The location as messages show it (a URL without its password)."""
    from empower_cli.store.postgres import display

    return display(location) if isinstance(location, str) else str(location)


def open_store(location: Location, *, create: bool = True) -> Store:
    if isinstance(location, str):
        from empower_cli.store.postgres import PostgresStore

        return PostgresStore(location, create=create)
    from empower_cli.store.sqlite import Store

    return Store(location, create=create)


class ReadOnly(Protocol):
    """What a dry run may read of a database it must not change."""

    def known_external(self, external_ids: Sequence[str]) -> dict[str, str | None]: ...
    def latest_event(self, kind: str) -> dict[str, Any] | None: ...
    def next_prev_hash(self, seq: int) -> str | None: ...
    def login(self) -> str | None: ...
    def close(self) -> None: ...


def open_view(location: Location) -> ReadOnly:
    """A read-only view of the database (empty when there is none yet)."""
    if isinstance(location, str):
        from empower_cli.store.postgres import PgReadOnlyView

        return PgReadOnlyView(location)
    from empower_cli.store.bulk import ReadOnlyView

    return ReadOnlyView(location)
