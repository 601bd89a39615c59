"""A Hypothesis state machine drives random open / co-sign / object / approve / deny /
advance-the-clock sequences through the services on a real SQLite file, against a small
in-memory model of every case and of each customer's spent and held; after every step
the database (Store.budget and each case's effective status) must agree with the model."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from empower_cli.core.errors import EmpowerError
from empower_cli.core.models import PENDING, Policy
from empower_cli.policy.load import load_policy
from empower_cli.services import workflow
from empower_cli.services.cases import CaseInput, open_case
from empower_cli.store.sqlite import Store
from tests.conftest import JUSTIFICATION, training_policy_text, write_policy
from tests.workflow_support import identity

AGENTS = ("alice", "bob", "dave", "carol")  # agent 200.00, agent, senior 500.00, supervisor 2000.00
CUSTOMERS = ("C-1", "C-2")
AMOUNTS = (5000, 10000, 15000, 19900, 25000, 60000, 150000, 210000)  # cents
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@dataclass
class ModelCase:
    id: int
    agent: str
    customer: str
    amount: int
    held: int
    status: str
    expires: dt.datetime
    settled: dt.datetime | None = None
    objectors: set[str] = field(default_factory=set)

    def effective(self, now: dt.datetime) -> str:
        return "expired" if self.status in PENDING and now >= self.expires else self.status


class Workflow(RuleBasedStateMachine):
    objection_escalates = True

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="empower-stateful-"))
        text = training_policy_text()
        if not self.objection_escalates:
            text = text.replace("objection_escalates = true", "objection_escalates = false")
        self.policy: Policy = load_policy(write_policy(self.folder, text))
        assert self.policy.cosign.objection_escalates is self.objection_escalates
        self.store = Store(self.folder / "empower.db")
        self.now = START
        self.cases: list[ModelCase] = []

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the model ----------------------------------------------------------------------

    def model_budget(self, customer: str, *, exclude: int | None = None) -> tuple[int, int, int]:
        start = self.now - dt.timedelta(days=self.policy.budget.window_days)
        spent = held = count = 0
        for c in self.cases:
            if c.customer != customer or c.id == exclude:
                continue
            if c.status == "approved" and c.settled is not None and start < c.settled <= self.now:
                spent += c.amount
                count += 1
            elif c.effective(self.now) in PENDING:
                held += c.held
                count += 1 if c.held > 0 else 0
        return spent, held, count

    def limit(self) -> int:
        return self.policy.budget.per_customer

    def act(self, expected: int, step: Callable[[], object]) -> None:
        """Run a step; the model says which exit code it must end with (0 = done)."""
        got, message = 0, "the step succeeded"
        try:
            step()
        except EmpowerError as e:
            got, message = e.exit_code, str(e)
        assert got == expected, f"expected exit {expected}, got {got}: {message}"

    def pick(self, index: int) -> ModelCase:
        return self.cases[index % len(self.cases)]

    # -- rules ------------------------------------------------------------------------------

    @rule(agent=st.sampled_from(AGENTS), customer=st.sampled_from(CUSTOMERS), amount=st.sampled_from(AMOUNTS),
          escalate=st.booleans())  # fmt: skip
    def open(self, agent: str, customer: str, amount: int, escalate: bool) -> None:
        who = identity(self.policy, agent)
        spent, held, count = self.model_budget(customer)
        remaining = self.limit() - spent - held
        to_supervisor = (amount > who.role.max_discretion or amount > remaining
                         or count >= (self.policy.budget.max_cases or 10**9) or escalate)  # fmt: skip
        if to_supervisor:
            status, hold = "pending_supervisor", amount if amount <= remaining else 0
        elif amount > self.policy.cosign.above:
            status, hold = "pending_cosign", amount
        else:
            status, hold = "approved", 0
        inputs = CaseInput(customer_id=customer, case_type="hotel_complaint", facts={"nights": "1"},
                           action="goodwill_credit", amount=f"{amount // 100}.{amount % 100:02d}",
                           justification=JUSTIFICATION, escalate=escalate)  # fmt: skip
        decision = open_case(inputs, policy=self.policy, store=self.store, identity=who, now=self.now)
        assert decision.evaluation.status == status
        expires = self.now + dt.timedelta(hours=self.policy.cosign.hold_hours)
        self.cases.append(ModelCase(decision.case_id, agent, customer, amount, hold, status, expires,
                                    self.now if status == "approved" else None))  # fmt: skip

    @precondition(lambda self: self.cases)
    @rule(index=st.integers(0, 100), agent=st.sampled_from(AGENTS))
    def cosign(self, index: int, agent: str) -> None:
        case = self.pick(index)
        expected = 4 if agent == case.agent else 6 if case.effective(self.now) != "pending_cosign" else 0
        self.act(expected, lambda: workflow.cosign(case.id, None, policy=self.policy, store=self.store,
                                                   identity=identity(self.policy, agent), now=self.now))  # fmt: skip
        if expected == 0:
            case.status, case.settled = "approved", self.now

    @precondition(lambda self: self.cases)
    @rule(index=st.integers(0, 100), agent=st.sampled_from(AGENTS))
    def object(self, index: int, agent: str) -> None:
        case = self.pick(index)
        expected = (4 if agent == case.agent else 6 if case.effective(self.now) != "pending_cosign"
                    else 6 if agent in case.objectors else 0)  # fmt: skip
        self.act(expected, lambda: workflow.object_(case.id, "I disagree", policy=self.policy, store=self.store,
                                                    identity=identity(self.policy, agent), now=self.now))  # fmt: skip
        if expected == 0:
            case.status = "pending_supervisor" if self.objection_escalates else "pending_cosign"
            case.objectors.add(agent)

    @precondition(lambda self: self.cases)
    @rule(index=st.integers(0, 100), agent=st.sampled_from(AGENTS))
    def approve(self, index: int, agent: str) -> None:
        case = self.pick(index)
        role = identity(self.policy, agent).role
        spent, held, _ = self.model_budget(case.customer, exclude=case.id)
        expected = (4 if not role.can_approve else 4 if agent == case.agent
                    else 6 if case.effective(self.now) not in PENDING else 4 if case.amount > role.max_discretion
                    else 6 if case.amount > self.limit() - spent - held else 0)  # fmt: skip
        self.act(expected, lambda: workflow.approve(case.id, "Fair", policy=self.policy, store=self.store,
                                                    identity=identity(self.policy, agent), now=self.now))  # fmt: skip
        if expected == 0:
            case.status, case.settled = "approved", self.now

    @precondition(lambda self: self.cases)
    @rule(index=st.integers(0, 100), agent=st.sampled_from(AGENTS))
    def deny(self, index: int, agent: str) -> None:
        case = self.pick(index)
        role = identity(self.policy, agent).role
        expected = (4 if not role.can_approve else 4 if agent == case.agent
                    else 6 if case.effective(self.now) not in PENDING else 0)  # fmt: skip
        self.act(expected, lambda: workflow.deny(case.id, "Unfair", policy=self.policy, store=self.store,
                                                 identity=identity(self.policy, agent), now=self.now))  # fmt: skip
        if expected == 0:
            case.status, case.settled = "denied", self.now

    @rule(hours=st.sampled_from([1, 5, 12, 23, 24, 25, 24 * 30, 24 * 200, 24 * 366]))
    def advance_clock(self, hours: int) -> None:
        self.now += dt.timedelta(hours=hours)

    # -- what must hold after every step ----------------------------------------------------

    @invariant()
    def budgets_agree(self) -> None:
        for customer in CUSTOMERS:
            got = self.store.budget(customer, limit=self.limit(), window_days=self.policy.budget.window_days,
                                    now=self.now)  # fmt: skip
            assert (got.spent, got.held, got.count) == self.model_budget(customer)
            assert got.spent + got.held <= got.limit  # supervisor_may_exceed is off

    @invariant()
    def statuses_agree(self) -> None:
        for case in self.cases:
            row = self.store.get_case(case.id, now=self.now)
            assert row is not None
            assert row["effective_status"] == case.effective(self.now), case


class WorkflowWithoutEscalation(Workflow):
    """objection_escalates = false: an objection is recorded, the case keeps waiting for a co-sign."""

    objection_escalates = False


SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
TestWorkflow = Workflow.TestCase
TestWorkflow.settings = SETTINGS
TestWorkflowWithoutEscalation = WorkflowWithoutEscalation.TestCase
TestWorkflowWithoutEscalation.settings = SETTINGS
