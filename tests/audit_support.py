"""Seeding for the audit tests: case rows and their events written through the real store
(`Store.write()`, `insert_case`, `append_event`), so that reports read a realistic file
while the test knows every value it put in."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empower_cli.core.timeutil import iso, utcnow
from tests.conftest import open_db


@dataclass
class Spec:
    """One case as the test means it; `row()` turns it into a `cases` row."""

    agent: str = "alice"
    customer: str = "C-1"
    case_type: str = "late_return"
    action: str = "refund"
    amount: int = 5_000
    in_policy: bool = False
    status: str = "approved"
    hours_ago: float = 24.0
    cosigner: str | None = None
    supervisor: str | None = None
    escalated: bool = False
    objections: int = 0
    reaction: str | None = None
    retained: bool | None = None
    rules: list[tuple[str, str]] = field(default_factory=list)  # (rule id, result)
    facts: dict[str, str] = field(default_factory=dict)
    expires_in_hours: float | None = None  # pending cases: hold left (negative: expired)

    @property
    def discretionary(self) -> int:
        return 0 if self.in_policy else self.amount

    def opened(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(hours=self.hours_ago)

    def row(self, now: dt.datetime) -> dict[str, Any]:
        opened = self.opened(now)
        pending = self.status in ("pending_cosign", "pending_supervisor")
        expires = opened + dt.timedelta(hours=24) if self.expires_in_hours is None else (
            now + dt.timedelta(hours=self.expires_in_hours))  # fmt: skip
        return {
            "opened_at": iso(opened), "agent": self.agent, "customer_id": self.customer,
            "case_type": self.case_type, "action": self.action, "amount": self.amount,
            "discretionary_amount": self.discretionary,
            "held_amount": self.discretionary if pending else 0, "in_policy": int(self.in_policy),
            "status": self.status, "expires_at": iso(expires) if pending else None,
            "settled_at": None if pending else iso(opened), "escalated": int(self.escalated),
            "facts": json.dumps(self.facts or {"days_since_purchase": "10", "has_receipt": "yes"}),
            "rules": json.dumps([{"id": r, "result": res, "text": f"rule {r}"} for r, res in self.rules]),
            "reasons": "[]", "reaction": self.reaction,
            "retained": None if self.retained is None else int(self.retained),
            "cosigner": self.cosigner, "supervisor": self.supervisor, "objections": self.objections,
            "policy_version": "2026.11", "policy_sha256": "0" * 64,
        }  # fmt: skip


def seed(db_path: Path, specs: list[Spec], *, now: dt.datetime | None = None) -> list[int]:
    """Record the cases (one `opened` event each) and return their ids in order."""
    now = now or utcnow()
    ids = []
    with open_db(db_path) as store, store.write():
        for spec in specs:
            case_id = store.insert_case(spec.row(now))
            store.append_event(kind="opened", case_id=case_id, actor=spec.agent, os_user="test",
                               payload={"status": spec.status, "amount": spec.amount}, at=spec.opened(now))  # fmt: skip
            ids.append(case_id)
    return ids


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
