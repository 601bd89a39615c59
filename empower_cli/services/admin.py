"""Set-up and policy description: `empower init` and `policy show --json`."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from empower_cli.core.errors import StoreError
from empower_cli.policy.paths import POLICY_FILENAME, database_path
from empower_cli.services.governance import Applied, PolicySource, applied_policy, drift_note, ensure_applied
from empower_cli.store.backend import Location, describe, open_store, parse_location
from empower_cli.store.sqlite import Store


def default_policy_text() -> str:
    return resources.files("empower_cli").joinpath("default_policies.toml").read_text("utf-8")


@dataclass(frozen=True)
class Initialised:
    """What `empower init` did."""

    policy: Path
    policy_created: bool
    db: str  # the SQLite file's absolute path, or the PostgreSQL URL without its password
    indexes_rebuilt: int
    policy_applied: bool  # applied now, to a database that had none
    applied: Applied
    note: str | None  # the file is not the applied policy
    agents_role: str | None = None  # PostgreSQL: the role granted what agents need


def initialise(directory: Path, *, now: dt.datetime, db: str | None = None) -> Initialised:
    """Write the example policy if none is there, create (or migrate) the database and, when
    no policy governs it yet, apply the file (recorded as applied by this OS account)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"{directory}: cannot create the directory ({e.strerror})") from None
    target = directory / POLICY_FILENAME
    created = False
    if not target.exists():
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(default_policy_text())
            os.chmod(target, 0o644)  # never group/world-writable, whatever the umask
        except OSError as e:
            raise StoreError(f"{target}: cannot write the policy file ({e.strerror})") from None
        created = True
    # An existing file is checked too: keeping one that cannot be applied only defers the error.
    source = PolicySource.read(target)
    file = source.parsed()
    location: Location = parse_location(db) if db is not None else database_path(None, target)
    with open_store(location) as store:
        rebuilt = store.rebuild_indexes()  # left by an interrupted import, if any
        before = applied_policy(store)
        applied = ensure_applied(store, file, now=now)  # a new database: this file governs it
        role, problem = _grant(store)
    shown = describe(location if isinstance(location, str) else location.resolve())
    notes = [n for n in (drift_note(source, applied), problem) if n]
    return Initialised(target.resolve(), created, shown, rebuilt, before is None, applied, "; ".join(notes) or None,
                       role)


def _grant(store: Store) -> tuple[str | None, str | None]:
    """On PostgreSQL, the agents' role and its grants: (the role, None), or (None, what an
    administrator must do). The schema and the policy are in place either way."""
    try:
        return store.grant_to_agents(), None
    except StoreError as e:
        return None, str(e)
