"""The steps after a case is opened (SPEC §4 transition table): co-sign, objection,
supervisor approval and denial, lazy expiry, the customer's outcome, and the queue.

Every step is one `store.write()` transaction that re-reads the case, checks who acts
and the case's effective state, appends the event and updates the derived row. A
pending case is settled under the evaluation recorded when it was opened.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from empower_cli.core.errors import Conflict, InvalidInput, NotAllowed, NotFound, SelfApproval, SelfCosign
from empower_cli.core.evaluate import parse_reaction
from empower_cli.core.models import PENDING, BudgetState, Policy
from empower_cli.core.text import clean_text, same_person
from empower_cli.core.timeutil import age, iso, parse_stored
from empower_cli.services.identity import Identity
from empower_cli.store.sqlite import Row, Store

SETTLING = ("cosigned", "approved", "denied", "expired")


@dataclass(frozen=True)
class StepResult:
    """What a step did: the event it appended and the case and budget after it."""

    case_id: int
    kind: str
    status: str
    actor: str
    at: str
    case: Row
    budget: BudgetState
    payload: dict[str, Any] = field(default_factory=dict)


# -- the steps ------------------------------------------------------------------------


def cosign(case_id: int, note: str | None = None, *, policy: Policy, store: Store,
           identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    """A second agent signs on: pending_cosign -> approved, the hold becomes spent."""
    text = optional_text(note, field="--note")

    def apply(case: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        if _is_own(case, identity):
            raise SelfCosign(imported=_imported_not_opened(case, identity))
        _require_state(case, ("pending_cosign",), "co-signed", store)
        # A live case's hold always fits (checked when it was opened); an imported pending
        # case was never checked against today's budget, so a co-sign must not spend past it.
        amount = case["discretionary_amount"]
        if amount > _budget(case, policy=policy, store=store, now=now, exclude=True).remaining:
            raise Conflict(
                f"case {case['id']} grants {policy.money(amount)}, more than customer "
                f"{case['customer_id']} has left; only a supervisor can decide it"
            )
        changes = {"status": "approved", "cosigner": identity.agent, "settled_at": iso(now)}
        return changes, {"note": text, "from": case["status"], "status": "approved",
                         "spent": policy.money(case["discretionary_amount"])}  # fmt: skip

    return _step(case_id, "cosigned", apply, policy=policy, store=store, identity=identity, now=now)


def object_(case_id: int, reason: str | None, *, policy: Policy, store: Store,
            identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    """A colleague disagrees: the case goes to a supervisor (or, if the policy says
    objections do not escalate, stays waiting for a co-sign with the objection noted)."""
    text = required_text(reason, field="--reason", what="say why you object")

    def apply(case: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        if _is_own(case, identity):
            raise SelfCosign(imported=_imported_not_opened(case, identity))
        _require_state(case, ("pending_cosign",), "objected to", store)
        earlier = [e for e in store.events(case["id"]) if e["kind"] == "objected" and e["actor"] == identity.agent]
        if earlier:
            raise Conflict(f"you already objected to case {case['id']} at {_short(earlier[-1]['at'])}")
        escalates = policy.cosign.objection_escalates
        status = "pending_supervisor" if escalates else "pending_cosign"
        changes = {"status": status, "objections": case["objections"] + 1}
        return changes, {"reason": text, "from": case["status"], "status": status, "escalated": escalates}

    return _step(case_id, "objected", apply, policy=policy, store=store, identity=identity, now=now)


def approve(case_id: int, note: str | None, *, policy: Policy, store: Store,
            identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    """A supervisor approves a pending case: the hold becomes spent."""
    text = required_text(note, field="--note", what="say why you approve")
    _require_approver(identity, "approve")

    def apply(case: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        if _is_own(case, identity):
            raise SelfApproval(imported=_imported_not_opened(case, identity))
        _require_state(case, PENDING, "approved", store)
        amount = case["discretionary_amount"]
        if amount > identity.role.max_discretion:
            raise NotAllowed(
                f"case {case['id']} grants {policy.money(amount)}, above the {identity.role.name} role's "
                f"limit of {policy.money(identity.role.max_discretion)}; a role with a higher limit must approve"
            )
        others = _budget(case, policy=policy, store=store, now=now, exclude=True)
        over = amount > others.remaining
        if over and not policy.budget.supervisor_may_exceed:
            raise Conflict(
                f"case {case['id']} grants {policy.money(amount)} but customer {case['customer_id']} has only "
                f"{policy.money(max(others.remaining, 0))} of discretion budget left; deny it or wait for "
                "budget to free up (the policy does not let supervisors exceed it)"
            )
        changes = {"status": "approved", "supervisor": identity.agent, "settled_at": iso(now)}
        return changes, {"note": text, "from": case["status"], "status": "approved",
                         "spent": policy.money(amount), "over_budget": over}  # fmt: skip

    return _step(case_id, "approved", apply, policy=policy, store=store, identity=identity, now=now)


def deny(case_id: int, note: str | None, *, policy: Policy, store: Store,
         identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    """A supervisor denies a pending case: its hold is voided."""
    text = required_text(note, field="--note", what="say why you deny")
    _require_approver(identity, "deny")

    def apply(case: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        if _is_own(case, identity):
            raise SelfApproval(imported=_imported_not_opened(case, identity))
        _require_state(case, PENDING, "denied", store)
        changes = {"status": "denied", "supervisor": identity.agent, "settled_at": iso(now)}
        return changes, {"note": text, "from": case["status"], "status": "denied",
                         "released": policy.money(_live_hold(case))}  # fmt: skip

    return _step(case_id, "denied", apply, policy=policy, store=store, identity=identity, now=now)


def record_outcome(case_id: int, reaction: str | None, retained: bool | None, *, policy: Policy,
                   store: Store, identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    """The customer's reaction and whether they stayed; by anyone, in any state."""
    value = parse_reaction(reaction, field="--reaction")
    if retained is None:
        raise InvalidInput("--retained/--lost", "say whether the customer was retained or lost")

    def apply(case: Row) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"reaction": value, "retained": int(retained)}, {"reaction": value, "retained": retained}

    return _step(case_id, "outcome", apply, policy=policy, store=store, identity=identity, now=now)


# -- the queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    case: Row
    waiting_for: str  # "cosign" or "supervisor"
    rules_bent: tuple[str, ...]
    rules_blocked: tuple[str, ...]
    age: str
    time_left: str


def queue_for(identity: Identity, *, store: Store, now: dt.datetime) -> list[QueueItem]:
    """What waits for this agent, oldest first: co-signs they may give (never their own
    cases) and, for a role that can approve, every case waiting for a supervisor."""
    rows = store.waiting_for(identity.agent, can_approve=identity.role.can_approve, now=now)
    items = []
    for row in rows:
        if _is_own(row, identity):  # e.g. a pending case this agent imported
            continue
        rules = json.loads(row["rules"])
        bent = tuple(r["id"] for r in rules if r["result"] == "bent")
        blocked = tuple(r["id"] for r in rules if r["result"] == "blocked")
        left = age(iso(now), parse_stored(row["expires_at"]))
        waiting = "cosign" if row["status"] == "pending_cosign" else "supervisor"
        items.append(QueueItem(row, waiting, bent, blocked, age(row["opened_at"], now), left))
    return items


# -- the one transaction every step goes through ---------------------------------------

Apply = Callable[[Row], tuple[dict[str, Any], dict[str, Any]]]


def _step(case_id: int, kind: str, apply: Apply, *, policy: Policy, store: Store,
          identity: Identity, now: dt.datetime) -> StepResult:  # fmt: skip
    with store.write():
        case = store.get_case(case_id, now=now)
        if case is None:
            raise NotFound(f"case {case_id} does not exist")
        changes, payload = apply(case)  # a refusal raises: nothing is written, nothing any report reads moves
        store.update_case(case_id, changes)
        store.append_event(kind=kind, case_id=case_id, actor=identity.agent, os_user=identity.os_user,
                           payload=payload, at=now)  # fmt: skip
        after = store.get_case(case_id, now=now)
        assert after is not None
        budget = _budget(after, policy=policy, store=store, now=now, exclude=False)
    return StepResult(case_id, kind, after["effective_status"], identity.agent, iso(now), after, budget, payload)


def _require_state(case: Row, allowed: tuple[str, ...], verb: str, store: Store) -> None:
    """Refuse (exit 6) when the case's effective state does not allow the step, saying
    who got there first."""
    state = case["effective_status"]
    if state in allowed:
        return
    cid = case["id"]
    if state == "expired":
        raise Conflict(f"case {cid} expired at {_short(case['expires_at'])} (nobody settled it within "
                       f"its hold time), so it can no longer be {verb}; open a new case if still needed")  # fmt: skip
    last = _last_event(store, cid, (*SETTLING, "objected"))
    if state == "pending_supervisor":
        why = (f"{last['actor']} objected at {_short(last['at'])}" if last and last["kind"] == "objected"
               else f"escalated when {case['agent']} opened it at {_short(case['opened_at'])}")  # fmt: skip
        raise Conflict(f"case {cid} is waiting for a supervisor ({why}), so it can no longer be {verb} by a colleague")
    if state == "pending_cosign":
        raise Conflict(f"case {cid} is waiting for a co-sign, not for this step")
    if last and last["kind"] in ("cosigned", "approved", "denied"):
        word = {"cosigned": "approved (co-signed)", "approved": "approved", "denied": "denied"}[last["kind"]]
        raise Conflict(f"case {cid} was already {word} by {last['actor']} at {_short(last['at'])}")
    if state == "approved":
        raise Conflict(f"case {cid} was already approved when {case['agent']} opened it at "
                       f"{_short(case['opened_at'])}")  # fmt: skip
    raise Conflict(f"case {cid} is {state}, so it can no longer be {verb}")


def _require_approver(identity: Identity, verb: str) -> None:
    if not identity.role.can_approve:
        raise NotAllowed(f"{identity.agent} ({identity.role.name}) may not {verb} cases; "
                         "only a role with can_approve may")  # fmt: skip


def _last_event(store: Store, case_id: int, kinds: tuple[str, ...]) -> Row | None:
    matching = [e for e in store.events(case_id) if e["kind"] in kinds]
    return matching[-1] if matching else None


def _is_own(case: Row, identity: Identity) -> bool:
    """Four eyes: the case's agent, and whoever recorded it (an importer), may not settle it."""
    return same_person(identity.agent, case["agent"]) or same_person(identity.agent, case["imported_by"])


def _imported_not_opened(case: Row, identity: Identity) -> bool:
    """The acting account imported the case but is not its agent: say so, not "your own case"."""
    return not same_person(identity.agent, case["agent"])


def _budget(case: Row, *, policy: Policy, store: Store, now: dt.datetime, exclude: bool) -> BudgetState:
    """The customer's budget now, in the segment they have now (without this case's hold)."""
    from empower_cli.services.cases import customer_budget

    return customer_budget(case["customer_id"], policy=policy, store=store, now=now,
                           exclude_case=case["id"] if exclude else None)  # fmt: skip


def _live_hold(case: Row) -> int:
    return int(case["held_amount"]) if case["effective_status"] in PENDING else 0


def required_text(value: str | None, *, field: str, what: str) -> str:
    if value is None or not value.strip():
        raise InvalidInput(field, f"is required: {what}")
    return clean_text(value, field=field)


def optional_text(value: str | None, *, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    return clean_text(value, field=field)


def _short(at: str | None) -> str:
    """2026-11-23T10:00:00.000000Z -> 2026-11-23T10:00Z, for sentences."""
    return f"{at[:16]}Z" if at else "an unknown time"
