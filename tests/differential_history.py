"""The history behind tests/test_audit_differential.py: a few hundred cases recorded through
the real code paths, with the edge cases of issue 15 placed by hand.

Old cases come in as a CSV import run by the supervisor; live cases are opened, co-signed,
objected to, approved, denied and given outcomes through the services with a fixed clock
(the way tests/workflow_support.open_in_past does), in time order; a customer is granted vip
part-way through. Everything is drawn from one seeded random generator.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from empower_cli.core.errors import EmpowerError
from empower_cli.core.models import Policy
from empower_cli.services import workflow
from empower_cli.services.cases import CaseInput, grant_segment, open_case
from empower_cli.services.identity import Identity
from empower_cli.store.sqlite import Store

SEED = 15
WHY = "Loyal customer, item unused, receipt at hand"
AGENTS = ("alice", "bob", "dave", "erin", "frank")  # carol, the supervisor, settles and imports
LEAN = {"erin": (5, 80, 5, 10), "frank": (97, 3, 0, 0)}  # weights of in / bent / blocked / credit
USUAL = (40, 42, 8, 10)
CAUSES = ("traffic", "medical", "airline", "other")
COLUMNS = (
    "external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
    "justification", "cosigner", "supervisor", "reaction", "retained", "settled_at", "segment",
    "fact.days_since_purchase", "fact.has_receipt", "fact.days_past_warranty", "fact.minutes_late",
    "fact.cause", "fact.nights", "fact.topic",
)  # fmt: skip


@dataclass(frozen=True)
class Ask:
    """What an agent proposes: a case type, its facts as typed, an action and an amount."""

    case_type: str
    facts: dict[str, str]
    action: str
    amount: str


@dataclass
class Edges:
    """The hand-placed cases and moments of issue 15 (case ids once recorded)."""

    sunday: dt.datetime  # the last half millisecond of a Sunday
    budget_bound: int = 0  # finding 1: went to a supervisor because only 50.00 was left
    vip_live: int = 0  # finding 2: a vip customer's live case without --segment
    vip_imported_live: int = 0  # the same for a customer whose vip came with an imported row
    sunday_case: int = 0  # finding 5
    refusable: dict[str, int] = field(default_factory=dict)  # finding 3: expired, then refused


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def amount(rng: random.Random) -> str:
    r = rng.random()
    low, high = (2000, 10000) if r < 0.7 else (10001, 20000) if r < 0.9 else (20001, 45000)
    return money(rng.randint(low, high))


def ask(rng: random.Random, agent: str) -> Ask:
    """A proposal of a kind drawn by the agent's habits: in policy, a bent rule, a blocked
    rule, or an action that is always discretionary (or not frontline, or high risk)."""
    kind = rng.choices(("in", "bent", "blocked", "credit"), LEAN.get(agent, USUAL))[0]
    n = amount(rng)
    ctype = rng.choices(("late_return", "expired_warranty", "missed_flight"), (55, 25, 20))[0]
    if kind == "credit":
        pick = rng.randint(0, 9)
        if pick < 6:
            return Ask("hotel_complaint", {"nights": str(rng.randint(1, 5))}, "free_night" if pick < 4 else
                       "goodwill_credit", n)  # fmt: skip
        if pick < 8:
            return Ask("financial_advice", {"topic": "A question about a pension"}, "goodwill_credit", n)
        return Ask("hotel_complaint", {"nights": "2"}, "full_stay_refund", n)
    level = ("in", "bent", "blocked").index(kind)
    if ctype == "late_return":
        days = (rng.randint(0, 15), rng.randint(16, 30), rng.randint(31, 45))[level]
        receipt = "no" if kind == "blocked" and rng.random() < 0.5 else "yes"
        if receipt == "no":
            days = rng.randint(0, 30)
        return Ask(ctype, {"days_since_purchase": str(days), "has_receipt": receipt},
                   rng.choice(("refund", "refund", "exchange")), n)  # fmt: skip
    if ctype == "expired_warranty":
        days = (0, rng.randint(1, 90), rng.randint(91, 150))[level]
        return Ask(ctype, {"days_past_warranty": str(days)}, "free_repair", n)
    minutes = (rng.randint(0, 120), rng.randint(121, 720), rng.randint(721, 900))[level]
    if kind == "in" and rng.random() < 0.15:
        return Ask("financial_advice", {"topic": "Which savings plan?"}, "fee_waiver", n)
    # Rebookings are cheap and end well: the bent same-day rule is a policy candidate.
    return Ask(ctype, {"minutes_late": str(minutes), "cause": rng.choice(CAUSES)},
               rng.choice(("rebook", "fee_waiver")), money(rng.randint(2000, 9000)))  # fmt: skip


def reaction(rng: random.Random, case_type: str) -> tuple[str, bool]:
    """Missed flights end well (so that a rule can be a policy candidate); the rest vary."""
    if case_type == "missed_flight":
        return rng.choice(("satisfied",) * 9 + ("neutral",)), rng.random() < 0.95
    return rng.choice(("satisfied", "neutral", "dissatisfied")), rng.random() < 0.7


def edge_sunday(now: dt.datetime) -> dt.datetime:
    """The last half millisecond of the Sunday 160 to 166 days before `now` (no edge case's day)."""
    day = (now - dt.timedelta(days=160)).date()
    day -= dt.timedelta(days=(day.weekday() + 1) % 7)
    return dt.datetime.combine(day, dt.time(23, 59, 59, 999_700), tzinfo=dt.timezone.utc)


def clear_of(moment: dt.datetime, sunday: dt.datetime, now: dt.datetime) -> dt.datetime:
    """Keep random cases off the edge Sunday, so that its last half millisecond opens a week,
    and away from holds that would expire while the test reads the reports."""
    if moment.date() == sunday.date():
        moment -= dt.timedelta(days=1)
    expires = moment + dt.timedelta(hours=24)
    if now - dt.timedelta(minutes=5) <= expires <= now + dt.timedelta(minutes=30):
        moment -= dt.timedelta(hours=1)
    return moment


# -- the import ------------------------------------------------------------------------


def import_rows(rng: random.Random, now: dt.datetime, sunday: dt.datetime) -> list[dict[str, str]]:
    rows = [_random_row(rng, k, now, sunday) for k in range(200)]
    day = dt.timedelta(days=1)

    def edge(ext: str, customer: str, opened: dt.datetime, cents: int, **extra: str) -> dict[str, str]:
        row = {"external_id": ext, "customer_id": customer, "agent": "bob", "opened_at": stamp(opened),
               "case_type": "late_return", "action": "refund", "amount": money(cents), "status": "approved",
               "justification": WHY, "supervisor": "carol", "reaction": "satisfied", "retained": "yes",
               "fact.days_since_purchase": "20", "fact.has_receipt": "yes"}  # fmt: skip
        return row | extra

    rows += [
        # Finding 1: opened 400 days ago, approved 10 days ago, 1950.00 of the 2000.00 budget.
        edge("F1-OLD", "F-1", now - 400 * day, 195_000, settled_at=stamp(now - 10 * day)),
        # Finding 4: 1799.90 (89.995 %), 1999.90 (99.995 %) and exactly 1800.00 (90 %) of 2000.00.
        edge("Q89-A", "Q-89", now - 100 * day, 100_000),
        edge("Q89-B", "Q-89", now - 50 * day, 79_990),
        edge("Q99-A", "Q-99", now - 120 * day, 150_000),
        edge("Q99-B", "Q-99", now - 45 * day, 49_990),
        edge("Q90-A", "Q-90", now - 90 * day, 180_000),
        # Finding 2: customers who spent most of a base budget, then became vip.
        edge("V1-OLD", "V-1", now - 150 * day, 180_000),
        edge("V2-OLD", "V-2", now - 100 * day, 180_000, segment="vip"),
        # Recent pending rows: still waiting (the importer may not settle them).
        edge("P1-NEW", "P-1", now - dt.timedelta(hours=3), 15_000, status="pending_cosign", supervisor="",
             reaction="", retained=""),
        edge("P2-NEW", "P-2", now - dt.timedelta(hours=4), 9_000, status="pending_supervisor", supervisor="",
             reaction="", retained="", **{"fact.has_receipt": "no"}),
    ]  # fmt: skip
    return rows


def _random_row(rng: random.Random, k: int, now: dt.datetime, sunday: dt.datetime) -> dict[str, str]:
    agent = rng.choice(AGENTS)
    a = ask(rng, agent)
    age = rng.uniform(20, 420)
    opened = clear_of((now - dt.timedelta(days=age)).replace(second=0, microsecond=0), sunday, now)
    customer = f"I-{rng.randint(1, 30)}"
    status = rng.choices(("approved", "denied", "expired", "pending_cosign", "pending_supervisor"),
                         (92, 2, 2, 2, 2) if a.case_type == "missed_flight" else (62, 12, 8, 9, 9))[0]  # fmt: skip
    others = [x for x in AGENTS if x != agent]
    cosigner = supervisor = settled = ""
    if status == "approved" and rng.random() < 0.4:
        cosigner = "dave" if agent == "bob" and rng.random() < 0.8 else rng.choice(others)
    elif (status == "approved" and rng.random() < 0.2) or (status == "denied" and rng.random() < 0.75):
        supervisor = "carol"
    if status in ("approved", "denied") and rng.random() < 0.3:
        settled = stamp(opened + dt.timedelta(days=rng.uniform(0.5, age - 1)))
    said, kept = reaction(rng, a.case_type)
    facts = {f"fact.{name}": value for name, value in a.facts.items()}
    return {
        "external_id": f"OLD-{k}", "customer_id": customer, "agent": agent, "opened_at": stamp(opened),
        "case_type": a.case_type, "action": a.action, "amount": a.amount, "status": status,
        "justification": WHY, "cosigner": cosigner, "supervisor": supervisor,
        "reaction": said if rng.random() < 0.7 else "", "retained": ("yes" if kept else "no") if rng.random() < 0.7
        else "", "settled_at": settled, "segment": "vip" if customer in ("I-1", "I-2") and rng.random() < 0.5 else "",
        **facts,
    }  # fmt: skip


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
        out.writeheader()
        out.writerows(rows)
    return path


# -- live cases ------------------------------------------------------------------------

Step = Callable[[dt.datetime], None]


@dataclass
class Live:
    """Live cases and their later steps, run in time order on one store with a fixed clock."""

    store: Store
    policy: Policy
    rng: random.Random
    now: dt.datetime
    queue: list[tuple[dt.datetime, int, Step]] = field(default_factory=list)
    order: int = 0

    def at(self, when: dt.datetime, step: Step) -> None:
        if when < self.now - dt.timedelta(minutes=1):  # later steps have not happened yet
            heapq.heappush(self.queue, (when, self.order, step))
            self.order += 1

    def run(self) -> None:
        while self.queue:
            when, _, step = heapq.heappop(self.queue)
            step(when)

    def who(self, agent: str) -> Identity:
        role = self.policy.role_of(agent)
        assert role is not None
        return Identity(agent=agent, os_user="test", role=role)

    def open(self, agent: str, customer: str, a: Ask, when: dt.datetime, *, escalate: bool = False) -> tuple[int, str]:
        inputs = CaseInput(customer_id=customer, case_type=a.case_type, facts=a.facts, action=a.action,
                           amount=a.amount, justification=WHY, escalate=escalate)  # fmt: skip
        decision = open_case(inputs, policy=self.policy, store=self.store, identity=self.who(agent), now=when)
        return decision.case_id, decision.evaluation.status

    def open_random(self, agent: str, customer: str, when: dt.datetime) -> None:
        a = ask(self.rng, agent)
        case_id, status = self.open(agent, customer, a, when, escalate=self.rng.random() < 0.05)
        other = self.rng.choice([x for x in AGENTS if x != agent])
        r = self.rng.random()
        if status == "pending_cosign" and r < 0.55:
            self.at(when + hours(self.rng.uniform(0.2, 20)), partial(self.cosign, case_id, other))
        elif status == "pending_cosign" and r < 0.75:
            self.at(when + hours(self.rng.uniform(0.2, 10)), partial(self.object, case_id, other))
        elif status == "pending_supervisor":
            self.supervise(case_id, when)
        if self.rng.random() < 0.6:
            said, kept = reaction(self.rng, a.case_type)
            self.at(when + dt.timedelta(days=self.rng.uniform(1, 30)), partial(self.outcome, case_id, said, kept))

    def supervise(self, case_id: int, when: dt.datetime) -> None:
        """A supervisor approves (or, if the budget refuses it, denies), denies, or lets it expire."""
        r = self.rng.random()
        later = when + dt.timedelta(hours=self.rng.uniform(1, 12))
        if r < 0.45:
            self.at(later, partial(self.approve, case_id))
        elif r < 0.75:
            self.at(later, partial(self.deny, case_id))

    def cosign(self, case_id: int, agent: str, when: dt.datetime) -> None:
        workflow.cosign(case_id, "Checked, fair", policy=self.policy, store=self.store, identity=self.who(agent),
                        now=when)  # fmt: skip

    def object(self, case_id: int, agent: str, when: dt.datetime, *, then_supervise: bool = True) -> None:
        workflow.object_(case_id, "Too generous for this one", policy=self.policy, store=self.store,
                         identity=self.who(agent), now=when)  # fmt: skip
        if then_supervise:
            self.supervise(case_id, when)

    def approve(self, case_id: int, when: dt.datetime) -> None:
        try:
            workflow.approve(case_id, "Fair, approved", policy=self.policy, store=self.store,
                             identity=self.who("carol"), now=when)  # fmt: skip
        except EmpowerError:  # over the budget left: refused, nothing recorded; deny instead
            self.deny(case_id, when)

    def deny(self, case_id: int, when: dt.datetime) -> None:
        workflow.deny(case_id, "Outside what we can offer", policy=self.policy, store=self.store,
                      identity=self.who("carol"), now=when)  # fmt: skip

    def outcome(self, case_id: int, said: str, kept: bool, when: dt.datetime) -> None:
        workflow.record_outcome(case_id, said, kept, policy=self.policy, store=self.store,
                                identity=self.who(self.rng.choice(AGENTS)), now=when)  # fmt: skip

    def grant(self, customer: str, when: dt.datetime) -> None:
        grant_segment(customer, "vip", "Gold card holder", policy=self.policy, store=self.store,
                      identity=self.who("carol"), now=when)  # fmt: skip


def live_history(store: Store, policy: Policy, rng: random.Random, now: dt.datetime, edges: Edges) -> None:
    """About 250 live cases for 24 customers over 380 days, recent ones still waiting, and the
    edge cases; every step at its own time, in time order."""
    live = Live(store, policy, rng, now)
    day = dt.timedelta(days=1)
    for k in range(1, 25):
        when = now - dt.timedelta(days=380 - rng.uniform(0, 20))
        while when < now - dt.timedelta(hours=2):
            moment = clear_of(when.replace(second=0, microsecond=0), edges.sunday, now)
            live.at(moment, partial(live.open_random, rng.choice(AGENTS), f"L-{k}"))
            when += dt.timedelta(days=rng.uniform(8, 60))
    late_return = partial(Ask, "late_return", {"days_since_purchase": "20", "has_receipt": "yes"}, "refund")
    no_receipt = Ask("late_return", {"days_since_purchase": "20", "has_receipt": "no"}, "refund", "80.00")

    def waiting(agent: str, customer: str, a: Ask, when: dt.datetime) -> None:
        live.open(agent, customer, a, when)

    for k in range(1, 9):  # recent cases still waiting for a co-sign or a supervisor
        moment = (now - dt.timedelta(hours=rng.uniform(2, 20))).replace(second=0, microsecond=0)
        live.at(moment, partial(waiting, AGENTS[k % 5], f"R-{k}", late_return("150.00") if k % 2 else no_receipt))

    def budget_bound(when: dt.datetime) -> None:
        edges.budget_bound, status = live.open("alice", "F-1", late_return("150.00"), when)
        assert status == "pending_supervisor", "only 50.00 was left: the case must wait for a supervisor"
        live.at(when + 2 * dt.timedelta(hours=1), partial(live.deny, edges.budget_bound))

    def vip_case(customer: str, cosigner: str, attr: str, when: dt.datetime) -> None:
        case_id, status = live.open("dave", customer, late_return("400.00"), when)
        setattr(edges, attr, case_id)
        assert status == "pending_cosign", "400.00 fits what is left of the vip budget"
        live.at(when + dt.timedelta(hours=1), partial(live.cosign, case_id, cosigner))

    def sunday_case(when: dt.datetime) -> None:
        edges.sunday_case, status = live.open("alice", "S-1", late_return("60.00"), when)
        assert status == "approved"

    def refusable(name: str, agent: str, a: Ask, escalate: bool, objector: str | None, when: dt.datetime) -> None:
        case_id, _ = live.open(agent, f"X-{name}", a, when, escalate=escalate)
        edges.refusable[name] = case_id
        if objector:
            live.at(when + dt.timedelta(hours=1), partial(live.object, case_id, objector, then_supervise=False))

    live.at(now - 5 * day, budget_bound)
    live.at(now - 60 * day, partial(live.grant, "V-1"))
    live.at(now - 30 * day, partial(vip_case, "V-1", "alice", "vip_live"))
    live.at(now - 20 * day, partial(vip_case, "V-2", "bob", "vip_imported_live"))
    live.at(edges.sunday, sunday_case)
    for name, agent, a, escalate, objector in (
        ("blocked", "alice", no_receipt, False, None),  # a blocked rule sent it to a supervisor
        ("objected", "bob", late_return("150.00"), False, "alice"),  # an objection did
        ("asked", "erin", late_return("50.00"), True, None),  # the agent asked for one
        ("cosign", "alice", late_return("150.00"), False, None),  # it only waited for a co-sign
    ):
        live.at(now - 3 * day, partial(refusable, name, agent, a, escalate, objector))
    live.run()
