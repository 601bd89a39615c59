"""Where things are: the policy file and the database.

Flags win over environment variables, which win over the defaults of SPEC §5.
"""

from __future__ import annotations

from pathlib import Path

from empower_cli.core.errors import PolicyError

POLICY_FILENAME = "policies.toml"


def find_policy(explicit: Path | None, *, cwd: Path | None = None) -> Path:
    """The --policy / EMPOWER_POLICY path, else policies.toml here or in the nearest parent."""
    if explicit is not None:
        return explicit
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / POLICY_FILENAME
        if candidate.is_file():
            return candidate
    raise PolicyError(
        f"no {POLICY_FILENAME} in {start} or any parent directory; "
        "run `empower init` or pass --policy PATH"
    )


def database_path(explicit: Path | None, policy_path: Path) -> Path:
    """The --db / EMPOWER_DB path, else data/empower.db beside the policy file."""
    if explicit is not None:
        return explicit
    return policy_path.resolve().parent / "data" / "empower.db"
