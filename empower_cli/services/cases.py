"""Use cases: load, evaluate and record in one transaction.

Each service takes its dependencies as keyword-only arguments (policy, store,
identity, now) so tests pass a real store on a temporary file and a fixed clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from empower_cli.core.errors import NotAllowed, SegmentNotGranted
from empower_cli.core.evaluate import check_justification, evaluate, validate_proposal
from empower_cli.core.facts import facts_as_text
from empower_cli.core.models import BudgetState, Evaluation, Policy, Proposal
from empower_cli.core.timeutil import iso
from empower_cli.services.identity import Identity
from empower_cli.store.sqlite import Store


@dataclass(frozen=True)
class CaseInput:
    """What an agent typed or passed as flags: all text, not yet validated."""

    customer_id: str | None
    case_type: str | None
    facts: Mapping[str, str]
    action: str | None
    amount: str | None
    segment: str | None = None
    justification: str | None = None
    reaction: str | None = None
    escalate: bool = False


@dataclass(frozen=True)
class SegmentGrant:
    """A customer put in a segment (or already in it: `changed` is False), and their budget now."""

    customer_id: str
    segment: str
    previous: str | None
    changed: bool
    by: str
    at: str
    budget: BudgetState


@dataclass(frozen=True)
class Decision:
    """A recorded case: its number, the validated proposal and its evaluation."""

    case_id: int
    proposal: Proposal
    evaluation: Evaluation


def propose(inputs: CaseInput, *, policy: Policy, identity: Identity) -> Proposal:
    return validate_proposal(
        policy,
        agent=identity.agent,
        customer_id=inputs.customer_id,
        case_type=inputs.case_type,
        facts=inputs.facts,
        action=inputs.action,
        amount=inputs.amount,
        segment=inputs.segment,
        justification=inputs.justification,
        reaction=inputs.reaction,
        escalate=inputs.escalate,
    )


def customer_budget(customer_id: str, *, policy: Policy, store: Store, now: dt.datetime,
                    segment: str | None = None, exclude_case: int | None = None) -> BudgetState:  # fmt: skip
    """The customer's budget now (in `segment` when given, else the one recorded), without
    `exclude_case`'s hold when given (a step settling that case)."""
    seg = segment if segment is not None else store.customer_segment(customer_id)
    return store.budget(customer_id, limit=policy.budget.limit_for(seg), window_days=policy.budget.window_days,
                        now=now, exclude_case=exclude_case)  # fmt: skip


def segment_for(proposal: Proposal, *, store: Store, identity: Identity) -> str | None:
    """The segment the case is decided in: the customer's own, or the one `--segment` gives
    when that changes nothing or the agent's role may grant segments (can_approve)."""
    current = store.customer_segment(proposal.customer_id)
    wanted = proposal.segment
    if wanted is None or wanted == current:
        return current
    if not identity.role.can_approve:
        raise SegmentNotGranted(proposal.customer_id, wanted, current)
    return wanted


def preview(proposal: Proposal, *, policy: Policy, store: Store, identity: Identity,
            now: dt.datetime) -> Evaluation:  # fmt: skip
    """Evaluate without recording (the walk-through shows this before confirming)."""
    segment = segment_for(proposal, store=store, identity=identity)
    budget = customer_budget(proposal.customer_id, policy=policy, store=store, now=now, segment=segment)
    return evaluate(proposal, policy, role=identity.role, budget=budget, now=now)


def open_case(inputs: CaseInput | Proposal, *, policy: Policy, store: Store,
              identity: Identity, now: dt.datetime) -> Decision:  # fmt: skip
    """Validate, evaluate against the budget read inside the write lock, and record."""
    proposal = inputs if isinstance(inputs, Proposal) else propose(inputs, policy=policy, identity=identity)
    with store.write():
        segment = segment_for(proposal, store=store, identity=identity)
        evaluation = preview(proposal, policy=policy, store=store, identity=identity, now=now)
        check_justification(proposal, evaluation, policy)
        row = case_row(proposal, evaluation, policy=policy, now=now, segment=segment)
        case_id = store.insert_case(row)
        store.remember_customer(proposal.customer_id, segment, now)
        store.append_event(
            kind="opened",
            case_id=case_id,
            actor=identity.agent,
            os_user=identity.os_user,
            payload=opened_payload(proposal, evaluation, policy, segment=segment, expires_at=row["expires_at"]),
            at=now,
        )
    return Decision(case_id, proposal, evaluation)


def grant_segment(customer_id: str, segment: str, note: str | None, *, policy: Policy, store: Store,
                  identity: Identity, now: dt.datetime) -> SegmentGrant:  # fmt: skip
    """`empower customer segment`: put a customer in a budget segment (can_approve only),
    recorded as a `segment_set` event in the hash chain."""
    from empower_cli.core.evaluate import check_segment
    from empower_cli.core.text import clean_id
    from empower_cli.services.workflow import required_text

    customer = clean_id(customer_id, field="customer")
    name = check_segment(policy, segment)
    text = required_text(note, field="--note", what="say why this customer gets this segment")
    if not identity.role.can_approve:
        raise NotAllowed(f"{identity.agent} ({identity.role.name}) may not grant segments; "
                         "only a role with can_approve may")  # fmt: skip
    with store.write():
        previous = store.customer_segment(customer)
        changed = previous != name
        if changed:
            store.append_event(kind="segment_set", case_id=None, actor=identity.agent, os_user=identity.os_user,
                               payload={"customer_id": customer, "segment": name, "previous": previous, "note": text},
                               at=now)  # fmt: skip
            store.set_segment(customer, name, now)
        budget = customer_budget(customer, policy=policy, store=store, now=now)
    return SegmentGrant(customer, name, previous, changed, identity.agent, iso(now), budget)


def case_row(proposal: Proposal, evaluation: Evaluation, *, policy: Policy, now: dt.datetime,
             segment: str | None) -> dict[str, Any]:  # fmt: skip
    """The derived `cases` row for a newly decided proposal (in the segment it was decided in)."""
    pending = evaluation.status != "approved"
    return {
        "opened_at": iso(now),
        "agent": proposal.agent,
        "customer_id": proposal.customer_id,
        "segment": segment,
        "case_type": proposal.case_type,
        "action": proposal.action,
        "amount": proposal.amount,
        "discretionary_amount": evaluation.discretionary_amount,
        "held_amount": evaluation.held,
        "in_policy": int(evaluation.in_policy),
        "status": evaluation.status,
        "expires_at": iso(now + dt.timedelta(hours=policy.cosign.hold_hours)) if pending else None,
        "settled_at": None if pending else iso(now),
        "escalated": int(proposal.escalate),
        "facts": _json(facts_as_text(proposal, policy)),
        "rules": _json([r.as_dict() for r in evaluation.rules]),
        "reasons": _json(list(evaluation.reasons)),
        "justification": proposal.justification or None,
        "reaction": proposal.reaction,
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
    }


def opened_payload(proposal: Proposal, evaluation: Evaluation, policy: Policy, *, segment: str | None,
                   expires_at: str | None) -> dict[str, Any]:  # fmt: skip
    """What the decision event stores: enough to replay it (SPEC §6) and to check the case
    row against it (`audit verify`): the segment decided in, and when a hold expires."""
    return {
        "customer_id": proposal.customer_id,
        "segment": segment,
        "expires_at": expires_at,
        "hold_hours": policy.cosign.hold_hours,
        "case_type": proposal.case_type,
        "facts": facts_as_text(proposal, policy),
        "action": proposal.action,
        "amount": policy.money(proposal.amount),
        "justification": proposal.justification,
        "reaction": proposal.reaction,
        "escalate": proposal.escalate,
        "status": evaluation.status,
        "in_policy": evaluation.in_policy,
        "discretionary_amount": policy.money(evaluation.discretionary_amount),
        "held": policy.money(evaluation.held),
        "spent": policy.money(evaluation.spent),
        "rules": [r.as_dict() for r in evaluation.rules],
        "reasons": list(evaluation.reasons),
        "budget_seen": evaluation.budget_before.as_money(policy.digits),
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
    }


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
