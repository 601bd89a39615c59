"""Set-up and policy description: `empower init` and `policy show --json`."""

from __future__ import annotations

import datetime as dt
import os
from importlib import resources
from pathlib import Path
from typing import Any

from empower_cli.core.errors import StoreError
from empower_cli.core.models import Policy
from empower_cli.policy.paths import POLICY_FILENAME, database_path
from empower_cli.services.governance import PolicySource, applied_json, applied_policy, drift_note, ensure_applied
from empower_cli.store.sqlite import Store


def default_policy_text() -> str:
    return resources.files("empower_cli").joinpath("default_policies.toml").read_text("utf-8")


def initialise(directory: Path, *, now: dt.datetime, db: Path | None = None) -> dict[str, Any]:
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
    return {"policy": str(target.resolve()), "policy_created": created, "db": str(db_path.resolve()),
            "indexes_rebuilt": rebuilt, "policy_applied": before is None, "applied": applied_json(applied),
            "note": drift_note(source, applied)}  # fmt: skip


def policy_json(policy: Policy) -> dict[str, Any]:
    m = policy.money

    b = policy.budget

    def limit(value: Any, money: bool) -> Any:
        if isinstance(value, tuple):
            return [limit(v, money) for v in value]
        if money and isinstance(value, int) and not isinstance(value, bool):
            return m(value)
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {
        "name": policy.name, "version": policy.version, "currency": policy.currency,
        "sha256": policy.sha256, "min_justification_chars": policy.min_justification_chars,
        "budget": {"per_customer": m(b.per_customer), "window_days": b.window_days,
                   "supervisor_may_exceed": b.supervisor_may_exceed, "max_cases": b.max_cases,
                   "segments": {k: m(v) for k, v in b.segments.items()}},
        "roles": {r.name: {"max_discretion": m(r.max_discretion), "can_approve": r.can_approve,
                           "can_import": r.can_import}
                  for r in policy.roles.values()},
        "agents": dict(policy.agents), "default_role": policy.default_role,
        "cosign": {"above": m(policy.cosign.above), "hold_hours": policy.cosign.hold_hours,
                   "objection_escalates": policy.cosign.objection_escalates},
        "actions": {a.id: {"title": a.title, "always_discretionary": a.always_discretionary,
                           "frontline": a.frontline} for a in policy.actions.values()},
        "case_types": {
            t.id: {"title": t.title, "risk": t.risk, "actions": list(t.actions),
                   "facts": [{"name": f.name, "type": f.type, "ask": f.ask} for f in t.facts],
                   "rules": [{"id": r.id, "text": r.text, "fact": r.fact, "op": r.op,
                              "standard": limit(r.standard, t.fact(r.fact).type == "money"),  # type: ignore[union-attr]
                              "bend": limit(r.bend, t.fact(r.fact).type == "money"),  # type: ignore[union-attr]
                              "hard": not r.bendable} for r in t.rules]}
            for t in policy.case_types.values()
        },
    }  # fmt: skip
