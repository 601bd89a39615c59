"""Frozen dataclasses shared by every layer: the policy, a proposal, its evaluation.

Money fields are integer minor units; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FactType = Literal["int", "money", "bool", "choice", "date", "text"]
FactValue = int | bool | str | dt.date
RuleOp = Literal["max", "min", "equals", "one_of", "max_age_days"]
RuleResultKind = Literal["pass", "bent", "blocked"]
Risk = Literal["low", "medium", "high"]
Status = Literal["approved", "pending_cosign", "pending_supervisor", "denied", "expired"]
Reaction = Literal["satisfied", "neutral", "dissatisfied"]

FACT_TYPES: tuple[str, ...] = ("int", "money", "bool", "choice", "date", "text")
RISKS: tuple[str, ...] = ("low", "medium", "high")
STATUSES: tuple[str, ...] = (
    "approved", "pending_cosign", "pending_supervisor", "denied", "expired",
)  # fmt: skip
PENDING: tuple[str, ...] = ("pending_cosign", "pending_supervisor")
REACTIONS: tuple[str, ...] = ("satisfied", "neutral", "dissatisfied")

# Every class here has a docstring: Python 3.11's dataclass gives one without a docstring a
# text made with inspect.signature(), which costs more than the rest of creating the class,
# and every command creates these at start-up (tests/test_startup_imports.py checks).


@dataclass(frozen=True)
class Fact:
    """A fact a case type asks for, with its type and, for numbers and money, its bounds."""

    name: str
    type: FactType
    ask: str
    min: int | None = None  # minor units for money facts
    max: int | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A limit on one fact: the standard limit and, unless hard, the bend limit an agent may grant."""

    id: str
    text: str
    fact: str
    op: RuleOp
    standard: FactValue | tuple[FactValue, ...]
    bend: FactValue | None = None  # None: hard, cannot be bent by frontline
    hard: bool = False

    @property
    def bendable(self) -> bool:
        return self.bend is not None and not self.hard


@dataclass(frozen=True)
class Action:
    """A resolution an agent may propose; `always_discretionary` ones always draw on the budget."""

    id: str
    title: str
    always_discretionary: bool = False
    frontline: bool = True


@dataclass(frozen=True)
class CaseType:
    """A kind of customer problem: the facts to ask, the rules that apply, the actions allowed."""

    id: str
    title: str
    risk: Risk
    actions: tuple[str, ...]
    facts: tuple[Fact, ...]
    rules: tuple[Rule, ...]

    def fact(self, name: str) -> Fact | None:
        return next((f for f in self.facts if f.name == name), None)


@dataclass(frozen=True)
class Role:
    """What an agent's role may do: the most discretion per case, approving, importing."""

    name: str
    max_discretion: int
    can_approve: bool = False
    can_import: bool = False  # may import historical cases (can_approve may too)

    @property
    def may_import(self) -> bool:
        return self.can_approve or self.can_import


@dataclass(frozen=True)
class BudgetPolicy:
    """The discretion budget per customer over a rolling window, larger for some segments."""

    per_customer: int
    window_days: int
    supervisor_may_exceed: bool = False
    max_cases: int | None = None
    segments: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, segment: str | None) -> int:
        if segment is not None and segment in self.segments:
            return self.segments[segment]
        return self.per_customer


@dataclass(frozen=True)
class CosignPolicy:
    """Above which discretion a second agent must co-sign, and how long a hold lasts."""

    above: int
    hold_hours: int = 24
    objection_escalates: bool = True


@dataclass(frozen=True)
class Policy:
    """The whole validated policy file, with the SHA-256 of its bytes and where it was read."""

    name: str
    version: str
    currency: str
    digits: int  # the currency's minor digits
    min_justification_chars: int
    budget: BudgetPolicy
    roles: Mapping[str, Role]
    agents: Mapping[str, str]  # login -> role name
    default_role: str | None
    allow_identity_override: bool
    cosign: CosignPolicy
    actions: Mapping[str, Action]
    case_types: Mapping[str, CaseType]
    sha256: str = ""
    path: str = ""

    def money(self, cents: int) -> str:
        """Minor units as the policy's currency writes them: 1250 -> "12.50"."""
        from empower_cli.core.money import format_money

        return format_money(cents, self.digits)

    def role_of(self, login: str) -> Role | None:
        name = self.agents.get(login, self.default_role)
        return self.roles.get(name) if name is not None else None


@dataclass(frozen=True)
class Proposal:
    """A validated proposal: every value typed, every name known to the policy."""

    agent: str
    customer_id: str
    case_type: str
    facts: Mapping[str, FactValue]
    action: str
    amount: int
    segment: str | None = None
    justification: str = ""
    reaction: Reaction | None = None
    escalate: bool = False


@dataclass(frozen=True)
class BudgetState:
    """A customer's budget at one moment; `count` is discretionary cases in the window."""

    limit: int
    spent: int = 0
    held: int = 0
    count: int = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.spent - self.held

    def as_money(self, digits: int) -> dict[str, str]:
        """{limit, spent, held, remaining} as money text (an event's `budget_seen`, `--json`)."""
        from empower_cli.core.money import format_money

        return {"limit": format_money(self.limit, digits), "spent": format_money(self.spent, digits),
                "held": format_money(self.held, digits), "remaining": format_money(self.remaining, digits)}  # fmt: skip


@dataclass(frozen=True)
class RuleResult:
    """How one rule judged the proposal: pass, bent or blocked."""

    id: str
    result: RuleResultKind
    text: str

    def as_dict(self) -> dict[str, str]:
        """As a case stores it and every JSON output shows it."""
        return {"id": self.id, "result": self.result, "text": self.text}


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate()` decided: the status, each rule's result, the reasons and the budget."""

    status: Status
    in_policy: bool
    discretionary_amount: int
    rules: tuple[RuleResult, ...]
    reasons: tuple[str, ...]
    held: int  # amount reserved by this decision (pending)
    spent: int  # amount spent at once (approved)
    budget_before: BudgetState
    budget_after: BudgetState
    justification_required: bool
