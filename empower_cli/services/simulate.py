"""`policy simulate`: replay recorded cases under the policy in use and under a new one, with
the same validate_proposal/evaluate as live cases, and count what the new file would change.

Cases stream from the store in the order they were opened; each policy gets its own
budget ledger rebuilt from its replayed decisions, so budget limits and `max_cases` count.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from empower_cli.core.errors import EmpowerError
from empower_cli.core.evaluate import evaluate, validate_proposal
from empower_cli.core.models import BudgetState, Evaluation, Policy
from empower_cli.core.money import format_money
from empower_cli.core.timeutil import iso, parse_stored
from empower_cli.store import replay
from empower_cli.store.sqlite import Store

EXAMPLES = 5
PROGRESS_EVERY = 1000


class Ledger:
    """A customer's budget over the rolling window as one policy would have had it, built the
    way the live budget is: discretion counts as spent from the moment it was settled (an
    approval long after opening counts from then), and a pending case holds its amount from
    opening until it was settled, denied or expired. Times are the store's ISO text."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.window = dt.timedelta(days=policy.budget.window_days)
        self.spends: dict[str, list[tuple[str, int]]] = {}  # customer -> (settled at, amount), sorted
        self.holds: dict[str, list[tuple[str, str, int]]] = {}  # customer -> (from, until, amount)

    def state(self, customer: str, segment: str | None, at: str) -> BudgetState:
        start = iso(parse_stored(at) - self.window)
        entries = self.spends.get(customer, [])
        first = bisect.bisect_right(entries, (start, _MAX))  # settled after the window's start...
        last = bisect.bisect_right(entries, (at, _MAX))  # ...and by now
        del entries[:first]  # older spending never counts again: the replay moves forward in time
        spent = entries[: last - first]
        holds = [h for h in self.holds.get(customer, []) if h[1] > at]
        if customer in self.holds:
            self.holds[customer] = holds
        live = [amount for start_at, _, amount in holds if start_at <= at]
        return BudgetState(limit=self.policy.budget.limit_for(segment), spent=sum(a for _, a in spent),
                           held=sum(live), count=len(spent) + sum(1 for a in live if a))  # fmt: skip

    def spend(self, customer: str, at: str, amount: int) -> None:
        if amount > 0:
            bisect.insort(self.spends.setdefault(customer, []), (at, amount))

    def hold(self, customer: str, start: str, until: str, amount: int) -> None:
        if amount > 0 and until > start:
            self.holds.setdefault(customer, []).append((start, until, amount))


_MAX = 2**63  # sorts after any amount: bisect by time alone


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
        budget = self.ledger.state(proposal.customer_id, proposal.segment, case["opened_at"])
        return evaluate(proposal, policy, role=role, budget=budget, now=at)

    def settle(self, case: dict[str, Any], ev: Evaluation) -> None:
        """The replayed decision's effect on the ledger: spent at once when it is an approval;
        when it waits for someone, held until the recorded case was settled (or expired),
        then spent if the recorded case was in the end approved (assumed to go the same way)."""
        for r in ev.rules:
            self.bent.setdefault(r.id, 0)  # every rule evaluated is listed, even if never bent
            self.blocked.setdefault(r.id, 0)
            if r.result == "bent":
                self.bent[r.id] = self.bent.get(r.id, 0) + 1
            elif r.result == "blocked":
                self.blocked[r.id] = self.blocked.get(r.id, 0) + 1
        customer, opened = case["customer_id"], case["opened_at"]
        if ev.status == "approved":
            self.discretion += ev.discretionary_amount
            self.ledger.spend(customer, opened, ev.discretionary_amount)
            return
        self.ledger.hold(customer, opened, _hold_end(case), ev.held)
        if case["status"] == "approved":
            self.discretion += ev.discretionary_amount
            self.ledger.spend(customer, case["settled_at"] or opened, ev.discretionary_amount)


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



def simulate(store: Store, *, current: Policy, new: Policy, since: dt.datetime | None = None,
             on_progress: Callable[[int], None] | None = None) -> Simulation:  # fmt: skip
    """Replay every case opened since `since` (all when None) under both policies;
    `on_progress(cases_read)` is called every PROGRESS_EVERY cases."""
    sim = Simulation(Side(current, Ledger(current)), Side(new, Ledger(new)), since=since)
    if since is not None:
        for side in (sim.before, sim.after):
            _seed(store, side.ledger, since)
    # A case recorded before schema 6 without --segment was decided in the customer's own
    # segment, which its row does not name: the customer's segment stands in for it.
    segments = store.customers_with_segment()
    for read, case in enumerate(replay.cases_to_replay(store, iso(since) if since else None), start=1):
        if case["segment"] is None:
            case["segment"] = segments.get(case["customer_id"])
        _replay_one(sim, case)
        if on_progress is not None and read % PROGRESS_EVERY == 0:
            on_progress(read)
    return sim


def count_cases(store: Store, since: dt.datetime | None) -> int:
    """How many cases a simulation will read (for a progress bar)."""
    return replay.count_cases(store, iso(since) if since else None)


def _seed(store: Store, ledger: Ledger, since: dt.datetime) -> None:
    """Cases opened before `since` count as recorded: discretion settled inside the budget
    window (or settled later, from then on) and holds still live at `since`."""
    for customer, opened, status, discretion, held, settled, expires in replay.budget_before(
        store, iso(since), iso(since - ledger.window)
    ):
        ledger.hold(customer, opened, settled if settled and status != "expired" else expires or opened, held)
        if status == "approved":
            ledger.spend(customer, settled or opened, discretion)


def _hold_end(case: dict[str, Any]) -> str:
    """Until when a pending decision held its amount: the recorded settlement (approval or
    denial), else the hold's expiry."""
    if case["status"] in ("approved", "denied") and case["settled_at"]:
        return str(case["settled_at"])
    return str(case["expires_at"] or case["opened_at"])


def _replay_one(sim: Simulation, case: dict[str, Any]) -> None:
    at = parse_stored(case["opened_at"])
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
    sim.before.settle(case, before)
    sim.after.settle(case, after)
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


def _reason(error: EmpowerError) -> str:
    """Group rejections by their kind, not by each case's values: the message up to the value
    it quotes or the list of choices it offers."""
    text = str(error).split(" got ")[0].split("; ")[0]
    return text[:200]
