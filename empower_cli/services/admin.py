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
from empower_cli.store.sqlite import Store


def default_policy_text() -> str:
    return resources.files("empower_cli").joinpath("default_policies.toml").read_text("utf-8")


@dataclass(frozen=True)
class Initialised:
    """What `empower init` did."""

    policy: Path
    policy_created: bool
    db: Path
    indexes_rebuilt: int
    policy_applied: bool  # applied now, to a database that had none
    applied: Applied
    note: str | None  # the file is not the applied policy


def initialise(directory: Path, *, now: dt.datetime, db: Path | None = None) -> Initialised:
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
    db_path = database_path(db, target)
    with Store(db_path) as store:
        from empower_cli.store.bulk import rebuild_indexes

        rebuilt = rebuild_indexes(store)  # left by an interrupted import, if any
        before = applied_policy(store)
        applied = ensure_applied(store, file, now=now)  # a new database: this file governs it
    return Initialised(target.resolve(), created, db_path.resolve(), rebuilt, before is None, applied,
                       drift_note(source, applied))
