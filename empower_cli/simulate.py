"""`policy simulate`: replay recorded cases under the policy in use and under a new one, with
the same validate_proposal/evaluate as live cases, and count what the new file would change.

Cases stream from the store in the order they were opened; each policy gets its own
budget ledger rebuilt from its replayed decisions, so budget limits and `max_cases` count.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from empower_cli.errors import EmpowerError
from empower_cli.evaluate import evaluate, validate_proposal
from empower_cli.models import PENDING, BudgetState, Evaluation, Policy
from empower_cli.money import format_money
from empower_cli.store import Store
from empower_cli.timeutil import iso

EXAMPLES = 5
PROGRESS_EVERY = 1000
_COLUMNS = ("id", "opened_at", "agent", "customer_id", "segment", "case_type", "action", "amount",
            "facts", "justification", "reaction", "escalated", "status", "discretionary_amount")  # fmt: skip


class Ledger:
    """Discretion spent per customer over the rolling window, as one policy would have it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.window = dt.timedelta(days=policy.budget.window_days)
        self.entries: dict[str, deque[tuple[dt.datetime, int]]] = {}
        self.totals: dict[str, int] = {}

    def state(self, customer: str, segment: str | None, at: dt.datetime) -> BudgetState:
        entries = self.entries.get(customer)
        if entries:
            start = at - self.window
            while entries and entries[0][0] <= start:
                self.totals[customer] -= entries.popleft()[1]
        return BudgetState(limit=self.policy.budget.limit_for(segment), spent=self.totals.get(customer, 0),
                           count=len(entries) if entries else 0)  # fmt: skip

    def spend(self, customer: str, at: dt.datetime, amount: int) -> None:
        """Record spending; calls come in time order (the replay streams by opened_at)."""
        if amount > 0:
            self.entries.setdefault(customer, deque()).append((at, amount))
            self.totals[customer] = self.totals.get(customer, 0) + amount


@dataclass
class Side:
    """The replay under one policy."""

    policy: Policy
    ledger: Ledger
    discretion: int = 0
    bent: dict[str, int] = field(default_factory=dict)
    blocked: dict[str, int] = field(default_factory=dict)

    def replay(self, case: dict[str, Any], at: dt.datetime) -> Evaluation:
        """Raises EmpowerError when the case cannot be expressed under this policy."""
        policy = self.policy
        proposal = validate_proposal(
            policy, agent=case["agent"], customer_id=case["customer_id"], case_type=case["case_type"],
            facts=json.loads(case["facts"]), action=case["action"],
            amount=format_money(case["amount"], policy.digits), segment=case["segment"],
            justification=case["justification"], escalate=bool(case["escalated"]),
        )  # fmt: skip
        role = policy.role_of(proposal.agent)
        if role is None:
            raise EmpowerError(f"agent {proposal.agent} has no role")
        budget = self.ledger.state(proposal.customer_id, proposal.segment, at)
        return evaluate(proposal, policy, role=role, budget=budget, now=at)

    def settle(self, case: dict[str, Any], ev: Evaluation, at: dt.datetime) -> None:
        """Count the discretion as spent when the replayed decision is an approval, or when it
        waits for someone and the recorded case was in the end approved (assumed to go the
        same way)."""
        for r in ev.rules:
            self.bent.setdefault(r.id, 0)  # every rule evaluated is listed, even if never bent
            self.blocked.setdefault(r.id, 0)
            if r.result == "bent":
                self.bent[r.id] = self.bent.get(r.id, 0) + 1
            elif r.result == "blocked":
                self.blocked[r.id] = self.blocked.get(r.id, 0) + 1
        spends = ev.status == "approved" or (ev.status in PENDING and case["status"] == "approved")
        if spends and ev.discretionary_amount:
            self.discretion += ev.discretionary_amount
            self.ledger.spend(case["customer_id"], at, ev.discretionary_amount)


@dataclass
class Simulation:
    before: Side
    after: Side
    since: dt.datetime | None = None
    cases: int = 0
    changed: int = 0
    became_in_policy: int = 0
    left_policy: int = 0
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> cases
    examples: dict[str, list[int]] = field(default_factory=dict)

    def example(self, kind: str, case_id: int) -> None:
        ids = self.examples.setdefault(kind, [])
        if len(ids) < EXAMPLES:
            ids.append(case_id)

    def _rule(self, rule_id: str) -> dict[str, Any]:
        b, a = self.before, self.after
        return {"rule_id": rule_id, "bent_before": b.bent.get(rule_id, 0), "bent_after": a.bent.get(rule_id, 0),
                "blocked_before": b.blocked.get(rule_id, 0), "blocked_after": a.blocked.get(rule_id, 0)}  # fmt: skip

    def json(self) -> dict[str, Any]:
        digits = self.after.policy.digits
        rule_ids = sorted({*self.before.bent, *self.before.blocked, *self.after.bent, *self.after.blocked})
        return {
            "cases": self.cases,
            "changed": self.changed,
            "became_in_policy": self.became_in_policy,
            "left_policy": self.left_policy,
            "transitions": [{"from": a, "to": b, "count": n} for (a, b), n in sorted(self.transitions.items())],
            "not_replayable": sum(self.rejected.values()),
            "not_replayable_reasons": dict(sorted(self.rejected.items(), key=lambda kv: -kv[1])),
            "discretion_before": format_money(self.before.discretion, self.before.policy.digits),
            "discretion_after": format_money(self.after.discretion, digits),
            "rules": [self._rule(r) for r in rule_ids],
            "examples": self.examples,
            "policy_before": {"version": self.before.policy.version, "sha256": self.before.policy.sha256},
            "policy_after": {"version": self.after.policy.version, "sha256": self.after.policy.sha256},
            "since": iso(self.since) if self.since else None,
        }


def simulate(store: Store, *, current: Policy, new: Policy, since: dt.datetime | None = None,
             on_progress: Callable[[int], None] | None = None) -> Simulation:  # fmt: skip
    """Replay every case opened since `since` (all when None) under both policies;
    `on_progress(cases_read)` is called every PROGRESS_EVERY cases."""
    sim = Simulation(Side(current, Ledger(current)), Side(new, Ledger(new)), since=since)
    if since is not None:
        for side in (sim.before, sim.after):
            _seed(store, side.ledger, since)
    where, params = ("WHERE opened_at >= ?", (iso(since),)) if since else ("", ())
    for read, case in enumerate(_stream(store, where, params), start=1):
        _replay_one(sim, case)
        if on_progress is not None and read % PROGRESS_EVERY == 0:
            on_progress(read)
    return sim


def count_cases(store: Store, since: dt.datetime | None) -> int:
    """How many cases a simulation will read (for a progress bar)."""
    where, params = ("WHERE opened_at >= ?", (iso(since),)) if since else ("", ())
    return int(store.conn.execute(f"SELECT COUNT(*) FROM cases {where}", params).fetchone()[0])


def _seed(store: Store, ledger: Ledger, since: dt.datetime) -> None:
    """Discretion approved in the budget window before `since` still counts, as recorded.

    The `+` keeps SQLite from searching the status index (a table look-up per row): a scan
    of the narrow covering index on customers is far faster.
    """
    rows = store.conn.execute(
        "SELECT customer_id, opened_at, discretionary_amount FROM cases WHERE +status = 'approved' "
        "AND discretionary_amount > 0 AND +opened_at > ? AND +opened_at < ?",
        (iso(since - ledger.window), iso(since)),
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for customer, at, amount in rows:
        found.setdefault(customer, []).append((at, amount))
    for customer, entries in found.items():
        for at, amount in sorted(entries):
            ledger.spend(customer, _parse(at), amount)


def _replay_one(sim: Simulation, case: dict[str, Any]) -> None:
    at = _parse(case["opened_at"])
    outcomes: list[Evaluation] = []
    for side in (sim.before, sim.after):
        try:
            outcomes.append(side.replay(case, at))
        except EmpowerError as e:
            which = "before" if side is sim.before else "after"
            reason = f"{which}: {_reason(e)}"
            sim.rejected[reason] = sim.rejected.get(reason, 0) + 1
            sim.example(f"not_replayable_{which}", case["id"])
            return
    before, after = outcomes
    sim.before.settle(case, before, at)
    sim.after.settle(case, after, at)
    sim.cases += 1
    if before.status != after.status or before.in_policy != after.in_policy:
        sim.changed += 1
    if after.in_policy and not before.in_policy:
        sim.became_in_policy += 1
        sim.example("became_in_policy", case["id"])
    elif before.in_policy and not after.in_policy:
        sim.left_policy += 1
        sim.example("left_policy", case["id"])
    if before.status != after.status:
        key = (before.status, after.status)
        sim.transitions[key] = sim.transitions.get(key, 0) + 1
        sim.example(f"{before.status}->{after.status}", case["id"])


def _stream(store: Store, where: str, params: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    cur = store.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM cases {where} ORDER BY opened_at, id", params)
    while True:
        batch = cur.fetchmany(1000)
        if not batch:
            return
        for values in batch:
            yield dict(zip(_COLUMNS, values, strict=True))


def _parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def _reason(error: EmpowerError) -> str:
    """Group rejections by their kind, not by each case's values."""
    text = str(error)
    return text.split(",")[0].split(" got ")[0][:120]
