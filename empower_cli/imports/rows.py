"""One import record -> one validated row (SPEC §7): the live validation
(validate_proposal) and the pure evaluation (evaluate) of `case new`, plus the import's
own fields (external_id, opened_at, status, cosigner, supervisor, ...). No I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, NamedTuple

from empower_cli.core.errors import InvalidInput
from empower_cli.core.evaluate import FALSE_WORDS, TRUE_WORDS, clean_id, evaluate, same_person, validate_proposal
from empower_cli.core.models import PENDING, STATUSES, BudgetState, FactValue, Policy, Proposal, Role
from empower_cli.core.money import format_money, parse_money
from empower_cli.core.timeutil import iso, iso_utc, parse_iso
from empower_cli.imports.read import Record, RowProblem
from empower_cli.services.cases import facts_as_text
from empower_cli.store.chain import canonical_json, json_text

# Made once: json.dumps(..., ensure_ascii=False) builds a new encoder per call. The case
# row keeps JSON as json.dumps writes it; events and content hashes use canonical_json.
_plain = json.JSONEncoder(ensure_ascii=False).encode
_CACHE_LIMIT = 4096


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else json_text(text)


class Prepared(NamedTuple):
    """A validated row, ready to be numbered and written (a NamedTuple: it crosses from
    the validating worker to the writer, and tuples pickle several times faster)."""

    line: int
    raw: str
    external_id: str
    content_hash: str
    case: tuple[Any, ...]  # CASE_COLUMNS without id, external_id and content_hash
    customer: tuple[str, str | None, str]
    payload: str  # the canonical JSON of the `imported` event's payload


class RowValidator:
    """Turn one record into a Prepared row with the live validation and evaluation."""

    def __init__(self, policy: Policy, *, now: dt.datetime) -> None:
        self.policy = policy
        self.now = now
        self.digits = policy.digits
        self.hold = dt.timedelta(hours=policy.cosign.hold_hours)
        self.roles: dict[str, Role | None] = {}
        self.budgets: dict[str | None, BudgetState] = {}
        self.payload_policy = canonical_json({"policy_sha256": policy.sha256, "policy_version": policy.version})[1:-1]
        # Facts, rule results and reasons repeat across rows: their JSON is cached (bounded).
        self.facts_json: dict[tuple[FactValue, ...], tuple[str, str]] = {}
        self.rules_json: dict[tuple[str, ...], tuple[str, str]] = {}
        self.reasons_json: dict[tuple[str, ...], tuple[str, str]] = {}

    def _facts_json(self, proposal: Proposal) -> tuple[str, str]:
        """The facts as text, in JSON: as the case row stores them (in the policy's order),
        and canonical (for the content)."""
        # The typed values in the policy's order identify the text: within one case type,
        # each position always holds one fact of one type.
        key = (proposal.case_type, *proposal.facts.values())
        texts = self.facts_json.get(key)
        if texts is None:
            if len(self.facts_json) >= _CACHE_LIMIT:
                self.facts_json.clear()
            facts = facts_as_text(proposal, self.policy)
            texts = self.facts_json[key] = (_plain(facts), canonical_json(facts))
        return texts

    def _rules_json(self, case_type: str, evaluation: Any) -> tuple[str, str]:
        """The rule results in JSON: as the case row stores them, and canonical (for the event)."""
        key = (case_type, *[r.result for r in evaluation.rules])
        texts = self.rules_json.get(key)
        if texts is None:
            rules = [{"id": r.id, "result": r.result, "text": r.text} for r in evaluation.rules]
            texts = self.rules_json[key] = (_plain(rules), canonical_json(rules))
        return texts

    def _reasons_json(self, reasons: tuple[str, ...]) -> tuple[str, str]:
        """The reasons in JSON: as the case row stores them, and canonical (for the event)."""
        texts = self.reasons_json.get(reasons)
        if texts is None:
            if len(self.reasons_json) >= _CACHE_LIMIT:
                self.reasons_json.clear()
            # _plain / canonical_json of list(reasons), composed: an array of strings
            items = [json_text(r) for r in reasons]
            texts = self.reasons_json[reasons] = ("[" + ", ".join(items) + "]", "[" + ",".join(items) + "]")
        return texts

    def role(self, agent: str) -> Role:
        if agent not in self.roles:
            self.roles[agent] = self.policy.role_of(agent)
        role = self.roles[agent]
        if role is None:
            raise RowProblem(f"agent: login {agent!r} has no role in today's policy and it has no default_role")
        return role

    def budget(self, segment: str | None) -> BudgetState:
        # Today's decision is evaluated against the customer's full limit for the segment:
        # the documented approximation (see the README), identical for every row.
        state = self.budgets.get(segment)
        if state is None:
            state = self.budgets[segment] = BudgetState(limit=self.policy.budget.limit_for(segment))
        return state

    def prepare(self, rec: Record) -> Prepared:
        f = rec.fields
        policy, digits = self.policy, self.digits
        external_id = clean_id(f.get("external_id"), field="external_id")
        if "opened_at" not in f:
            raise InvalidInput("opened_at", "is required")
        opened = parse_iso(f["opened_at"], field="opened_at")
        if opened > self.now:
            raise InvalidInput("opened_at", f"{iso(opened)} is in the future")
        proposal = validate_proposal(
            policy, agent=f.get("agent") or "", customer_id=f.get("customer_id"),
            case_type=f.get("case_type"), facts=rec.facts, action=f.get("action"),
            amount=f.get("amount"), segment=f.get("segment"),
            justification=f.get("justification"), reaction=f.get("reaction"),
        )  # fmt: skip
        status = f.get("status", "approved")
        if status not in STATUSES:
            raise InvalidInput("status", f"expected one of {', '.join(STATUSES)}, got {status[:40]!r}")
        agent = proposal.agent
        cosigner = clean_id(f["cosigner"], field="cosigner") if "cosigner" in f else None
        supervisor = clean_id(f["supervisor"], field="supervisor") if "supervisor" in f else None
        if same_person(cosigner, agent):
            raise RowProblem(f"cosigner: {agent!r} is the case's own agent (four-eyes rule)")
        if same_person(supervisor, agent):
            raise RowProblem(f"supervisor: {agent!r} is the case's own agent (four-eyes rule)")
        retained = _retained(f.get("retained"))
        pending = status in PENDING
        settled = None
        if "settled_at" in f:
            if pending:
                raise InvalidInput("settled_at", f"a {status} case is not settled yet; leave it empty")
            settled = parse_iso(f["settled_at"], field="settled_at")
            if settled < opened:
                raise InvalidInput("settled_at", "is before opened_at")
            if settled > self.now:  # it would keep the case in the rolling budget window for ever
                raise InvalidInput("settled_at", f"{iso(settled)} is in the future")
        given = f.get("discretionary_amount")
        evaluation = evaluate(proposal, policy, role=self.role(agent), budget=self.budget(proposal.segment), now=opened)
        if given is not None:
            discretion = parse_money(given, field="discretionary_amount", digits=digits)
            if discretion > proposal.amount:
                raise InvalidInput("discretionary_amount", "is more than the amount")
        else:
            discretion = evaluation.discretionary_amount
        opened_iso = iso_utc(opened)
        settled_iso = None if settled is None else iso_utc(settled)
        facts_json, facts_canonical = self._facts_json(proposal)
        # The content's canonical JSON (canonical_json: keys sorted, no spaces), composed
        # from each value's JSON without building an encoder per row; tests/test_import_rows.py
        # holds it equal to canonical_json(content).
        content_json = "".join((
            '{"action":', json_text(proposal.action),
            ',"agent":', json_text(agent),
            ',"amount":', json_text(format_money(proposal.amount, digits)),
            ',"case_type":', json_text(proposal.case_type),
            ',"cosigner":', _json_or_null(cosigner),
            ',"customer_id":', json_text(proposal.customer_id),
            ',"discretionary_amount":', "null" if given is None else json_text(format_money(discretion, digits)),
            ',"external_id":', json_text(external_id),
            ',"facts":', facts_canonical,
            ',"justification":', _json_or_null(proposal.justification or None),
            ',"opened_at":', json_text(opened_iso),
            ',"reaction":', _json_or_null(proposal.reaction),
            ',"retained":', "null" if retained is None else ("true" if retained else "false"),
            ',"segment":', _json_or_null(proposal.segment),
            ',"settled_at":', _json_or_null(settled_iso),
            ',"status":', json_text(status),
            ',"supervisor":', _json_or_null(supervisor),
            "}",
        ))  # fmt: skip
        digest = hashlib.sha256(content_json.encode("utf-8")).hexdigest()
        rules_row, rules_canonical = self._rules_json(proposal.case_type, evaluation)
        reasons_row, reasons_canonical = self._reasons_json(evaluation.reasons)
        expires_iso = iso_utc(opened + self.hold) if pending else None
        case = (
            1, opened_iso, agent, proposal.customer_id, proposal.segment, proposal.case_type,
            proposal.action, proposal.amount, discretion, discretion if pending else 0,
            int(discretion == 0), status, expires_iso,
            None if pending else (settled_iso or opened_iso), 0,
            facts_json, rules_row, reasons_row,
            proposal.justification or None, proposal.reaction,
            None if retained is None else int(retained), cosigner, supervisor, 0,
            policy.version, policy.sha256, evaluation.status, evaluation.discretionary_amount,
        )  # fmt: skip
        today = format_money(evaluation.discretionary_amount, digits)
        # The event payload's canonical JSON, composed without re-serialising the content: its
        # keys in sorted order (content, content_hash, expires_at, policy_*, reasons, rules,
        # today_*). It holds what `audit verify` needs to re-derive the case row.
        payload = (
            '{"content":' + content_json + ',"content_hash":"' + digest + '","expires_at":'
            + _json_or_null(expires_iso) + "," + self.payload_policy + ',"reasons":' + reasons_canonical
            + ',"rules":' + rules_canonical + ',"today_discretionary":"' + today
            + '","today_status":"' + evaluation.status + '"}'
        )  # fmt: skip
        customer = (proposal.customer_id, proposal.segment, opened_iso)
        # Positional, in field order: a NamedTuple built with keywords costs three times as much.
        return Prepared(rec.line, rec.raw, external_id, digest, case, customer, payload)


# validate_proposal names fields as `case new` flags do; the file's columns are named so.
_COLUMN_OF = {"customer": "customer_id", "type": "case_type"}


def reject_reason(error: Exception) -> str:
    if isinstance(error, InvalidInput) and error.field in _COLUMN_OF:
        return f"{_COLUMN_OF[error.field]}: {error.problem}"
    return str(error)


def _retained(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise InvalidInput("retained", f"expected yes or no, got {str(value)[:40]!r}")
