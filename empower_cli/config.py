"""Where things are and who is acting: the policy file, the database, the agent.

Flags win over environment variables, which win over the defaults of SPEC §5.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from empower_cli.errors import PolicyError, UnknownLogin
from empower_cli.evaluate import clean_id
from empower_cli.models import Policy, Role

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


def os_account() -> str:
    """The operating-system account running the command; USER/LOGNAME cannot change it."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class Identity:
    agent: str  # who acts, as recorded (the claimed agent under identity override)
    os_user: str  # the real account
    role: Role


def identify(policy: Policy, environ: Mapping[str, str] | None = None) -> Identity:
    """Map the acting login to its role; refuse an unknown login (exit 4)."""
    env = os.environ if environ is None else environ
    real = os_account()
    agent = real
    claimed = env.get("EMPOWER_AGENT")
    if policy.allow_identity_override and claimed:
        agent = clean_id(claimed, field="EMPOWER_AGENT")
    role = policy.role_of(agent)
    if role is None:
        raise UnknownLogin(agent)
    return Identity(agent=agent, os_user=real, role=role)
