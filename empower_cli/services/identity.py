"""Who is acting: the OS account (the database login on PostgreSQL), or the agent a training
policy lets EMPOWER_AGENT name, and their role under the applied policy (SPEC §4, Identity)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from empower_cli.core.errors import UnknownLogin
from empower_cli.core.models import Policy, Role
from empower_cli.core.text import clean_id


def os_account() -> str:
    """The operating-system account running the command; USER/LOGNAME cannot change it."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class Identity:
    """Who acts: the recorded agent, the real OS account and the role."""

    agent: str  # who acts, as recorded (the claimed agent under identity override)
    os_user: str  # the real account
    role: Role


def identify(policy: Policy, environ: Mapping[str, str] | None = None, *, login: str | None = None) -> Identity:
    """Map the acting login to its role; refuse an unknown login (exit 4).

    `login`: the database login, on a backend that authenticates one (PostgreSQL): it acts,
    not the OS account, which an agent may name at will on a desktop of their own."""
    env = os.environ if environ is None else environ
    real = os_account()
    agent = login if login is not None else real
    claimed = env.get("EMPOWER_AGENT")
    if policy.allow_identity_override and claimed:
        agent = clean_id(claimed, field="EMPOWER_AGENT")
    role = policy.role_of(agent)
    if role is None:
        raise UnknownLogin(agent)
    return Identity(agent=agent, os_user=real, role=role)
