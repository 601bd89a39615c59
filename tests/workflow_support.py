"""Helpers for the workflow tests: open cases through the CLI or, for cases in the past,
through the service with an old clock; read the SQLite file back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from empower_cli.core.models import Policy
from empower_cli.services.cases import CaseInput, open_case
from empower_cli.services.identity import Identity
from tests.conftest import JUSTIFICATION, CliFn, as_json, open_db


def new_case(cli: CliFn, *, agent: str = "alice", amount: str = "150.00", customer: str = "C-1",
             receipt: str = "yes", days: int = 20, escalate: bool = False, segment: str | None = None) -> int:
    """Open a late return through the CLI. With the shipped policy, 20 days bends the
    return window: 150.00 waits for a co-sign, 50.00 is approved, no receipt blocks."""
    args = ["case", "new", "--customer", customer, "--type", "late_return",
            "--fact", f"days_since_purchase={days}", "--fact", f"has_receipt={receipt}",
            "--action", "refund", "--amount", amount, "--justification", JUSTIFICATION, "--json"]  # fmt: skip
    if escalate:
        args.append("--escalate")
    if segment:
        args += ["--segment", segment]
    r = cli(*args, agent=agent)
    assert r.exit_code == 0, r.output
    return int(as_json(r)["case_id"])


def grant_segment(cli: CliFn, customer: str = "C-1", segment: str = "vip", *, by: str = "carol") -> None:
    """A supervisor puts the customer in a segment (agents cannot claim one)."""
    r = cli("customer", "segment", customer, segment, "--note", "Granted for the test", agent=by)
    assert r.exit_code == 0, r.output


def identity(policy: Policy, agent: str) -> Identity:
    role = policy.role_of(agent)
    assert role is not None
    return Identity(agent=agent, os_user="test", role=role)


def open_in_past(db_path: Path | str, policy: Policy, *, when: dt.datetime, agent: str = "alice",
                 amount: str = "150.00", customer: str = "C-1", receipt: str = "yes") -> int:
    """A case opened at `when`: events and row carry that time (no test flag in the code)."""
    inputs = CaseInput(customer_id=customer, case_type="late_return",
                       facts={"days_since_purchase": "20", "has_receipt": receipt},
                       action="refund", amount=amount, justification=JUSTIFICATION)  # fmt: skip
    with open_db(db_path) as store:
        return open_case(inputs, policy=policy, store=store, identity=identity(policy, agent), now=when).case_id


def case_row(db_path: Path | str, case_id: int) -> dict[str, Any]:
    with open_db(db_path) as store:
        cur = store.conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,))
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def events(db_path: Path | str, case_id: int | None = None) -> list[tuple[str, str]]:
    """(kind, actor) of the case's events (of every case's without `case_id`), in order."""
    with open_db(db_path) as store:
        if case_id is None:
            found = store.conn.execute("SELECT kind, actor FROM events WHERE case_id IS NOT NULL ORDER BY seq")
        else:
            found = store.conn.execute("SELECT kind, actor FROM events WHERE case_id = ? ORDER BY seq", (case_id,))
        return [tuple(r) for r in found.fetchall()]


def budget(cli: CliFn, customer: str = "C-1") -> dict[str, str]:
    r = cli("customer", "show", customer, "--json")
    assert r.exit_code == 0, r.output
    b: dict[str, str] = as_json(r)["budget"]
    cents = {k: int(v.replace(".", "")) for k, v in b.items()}
    assert cents["limit"] == cents["spent"] + cents["held"] + cents["remaining"], b
    return b
