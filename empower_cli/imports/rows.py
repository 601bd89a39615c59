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
from empower_cli.core.evaluate import evaluate, validate_proposal
from empower_cli.core.facts import FALSE_WORDS, TRUE_WORDS, facts_as_text
from empower_cli.core.models import PENDING, STATUSES, BudgetState, Evaluation, FactValue, Policy, Proposal, Role
from empower_cli.core.money import format_money, parse_money
from empower_cli.core.text import clean_id, same_person
from empower_cli.core.timeutil import iso, iso_utc, parse_iso
from empower_cli.imports.read import Record, RowProblem
from empower_cli.store.bulk import ImportedCase
from empower_cli.store.chain import canonical_json, json_text

# Made once: json.dumps(..., ensure_ascii=False) builds a new encoder per call. The case
# row keeps JSON as json.dumps writes it; events and content hashes use canonical_json.
_plain = json.JSONEncoder(ensure_ascii=False).encode
_CACHE_LIMIT = 4096


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else json_text(text)


# Where Prepared.case holds them (the importer reads them row by row, without the properties).
EXTERNAL_ID_AT = ImportedCase._fields.index("external_id")
CONTENT_HASH_AT = ImportedCase._fields.index("content_hash")


class Prepared(NamedTuple):
    """A validated row, ready to be numbered and written (a NamedTuple: it crosses from
    the validating worker to the writer, and tuples pickle several times faster)."""

    line: int
    raw: str
    # An ImportedCase's values as a plain tuple: the garbage collector stops tracking a
    # tuple of plain values, never an instance of a tuple subclass, and thousands of rows
    # are alive at a time (as ImportedCase: +6% CPU in the importer's process, measured).
    case: tuple[Any, ...]
    customer: tuple[str, str | None, str]  # customer_id, segment, first seen
    payload: str  # the canonical JSON of the `imported` event's payload

    @property
    def external_id(self) -> str:
        value: str = self.case[EXTERNAL_ID_AT]
        return value

    @property
    def content_hash(self) -> str:
        value: str = self.case[CONTENT_HASH_AT]
        return value

    def columns(self) -> ImportedCase:
        """The case's values by column name."""
        return ImportedCase._make(self.case)


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

    def _rules_json(self, case_type: str, evaluation: Evaluation) -> tuple[str, str]:
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
        """The record validated as `case new` validates a case and evaluated at its opening
        time; InvalidInput or RowProblem (the reject's reason) for the first problem found."""
        f = rec.fields
        external_id = clean_id(f.get("external_id"), field="external_id")
        opened = self._opened_at(f)
        proposal = validate_proposal(
            self.policy, agent=f.get("agent") or "", customer_id=f.get("customer_id"),
            case_type=f.get("case_type"), facts=rec.facts, action=f.get("action"),
            amount=f.get("amount"), segment=f.get("segment"),
            justification=f.get("justification"), reaction=f.get("reaction"),
        )  # fmt: skip
        status = f.get("status", "approved")
        if status not in STATUSES:
            raise InvalidInput("status", f"expected one of {', '.join(STATUSES)}, got {status[:40]!r}")
        cosigner, supervisor = _four_eyes(f, proposal.agent)
        retained = _retained(f.get("retained"))
        settled = self._settled_at(f, status, opened)
        evaluation = evaluate(proposal, self.policy, role=self.role(proposal.agent),
                              budget=self.budget(proposal.segment), now=opened)  # fmt: skip
        discretion, given_text = self._discretion(f.get("discretionary_amount"), proposal.amount, evaluation)
        opened_iso = iso_utc(opened)
        settled_iso = None if settled is None else iso_utc(settled)
        facts_row, facts_canonical = self._facts_json(proposal)
        content = _content_json(proposal, external_id, status, opened_iso, settled_iso, cosigner, supervisor,
                                retained, given_text, facts_canonical, self.digits)  # fmt: skip
        digest = hashlib.sha256(content.encode()).hexdigest()
        rules_row, rules_canonical = self._rules_json(proposal.case_type, evaluation)
        reasons_row, reasons_canonical = self._reasons_json(evaluation.reasons)
        pending = status in PENDING
        # In ImportedCase's field order, positionally: keywords cost ~2.5 us a row (6% of a
        # worker's time). mypy checks each value against its column's type, and
        # tests/test_import_rows.py each stored column against what `audit verify` derives.
        named = ImportedCase(
            external_id, 1, opened_iso, proposal.agent, proposal.customer_id, proposal.segment,
            proposal.case_type, proposal.action, proposal.amount, discretion, discretion if pending else 0,
            int(discretion == 0), status, iso_utc(opened + self.hold) if pending else None,
            None if pending else (settled_iso or opened_iso), 0, facts_row, rules_row, reasons_row,
            proposal.justification or None, proposal.reaction, None if retained is None else int(retained),
            cosigner, supervisor, 0, self.policy.version, self.policy.sha256, evaluation.status,
            evaluation.discretionary_amount, digest,
        )
        payload = self._payload(content, named, rules_canonical, reasons_canonical)
        customer = (proposal.customer_id, proposal.segment, opened_iso)
        return Prepared(rec.line, rec.raw, tuple(named), customer, payload)

    def _opened_at(self, f: dict[str, Any]) -> dt.datetime:
        if "opened_at" not in f:
            raise InvalidInput("opened_at", "is required")
        opened = parse_iso(f["opened_at"], field="opened_at")
        if opened > self.now:
            raise InvalidInput("opened_at", f"{iso(opened)} is in the future")
        return opened

    def _settled_at(self, f: dict[str, Any], status: str, opened: dt.datetime) -> dt.datetime | None:
        if "settled_at" not in f:
            return None
        if status in PENDING:
            raise InvalidInput("settled_at", f"a {status} case is not settled yet; leave it empty")
        settled = parse_iso(f["settled_at"], field="settled_at")
        if settled < opened:
            raise InvalidInput("settled_at", "is before opened_at")
        if settled > self.now:  # it would keep the case in the rolling budget window for ever
            raise InvalidInput("settled_at", f"{iso(settled)} is in the future")
        return settled

    def _discretion(self, given: str | None, amount: int, evaluation: Evaluation) -> tuple[int, str | None]:
        """The discretionary amount: the one given (also as the content's text), or today's."""
        if given is None:
            return evaluation.discretionary_amount, None
        discretion = parse_money(given, field="discretionary_amount", digits=self.digits)
        if discretion > amount:
            raise InvalidInput("discretionary_amount", "is more than the amount")
        return discretion, format_money(discretion, self.digits)

    def _payload(self, content: str, case: ImportedCase, rules: str, reasons: str) -> str:
        """The `imported` event's payload as canonical JSON, composed without encoding the
        content again: its keys in sorted order (content, content_hash, expires_at, policy_*,
        reasons, rules, today_*). It holds what `audit verify` needs to re-derive the case row."""
        return (
            '{"content":' + content + ',"content_hash":"' + case.content_hash + '","expires_at":'
            + _json_or_null(case.expires_at) + "," + self.payload_policy + ',"reasons":' + reasons
            + ',"rules":' + rules + ',"today_discretionary":"' + format_money(case.today_discretionary, self.digits)
            + '","today_status":"' + case.today_status + '"}'
        )  # fmt: skip


def _four_eyes(f: dict[str, Any], agent: str) -> tuple[str | None, str | None]:
    """The co-signer and the supervisor, neither of them the case's own agent."""
    cosigner = clean_id(f["cosigner"], field="cosigner") if "cosigner" in f else None
    supervisor = clean_id(f["supervisor"], field="supervisor") if "supervisor" in f else None
    if same_person(cosigner, agent):
        raise RowProblem(f"cosigner: {agent!r} is the case's own agent (four-eyes rule)")
    if same_person(supervisor, agent):
        raise RowProblem(f"supervisor: {agent!r} is the case's own agent (four-eyes rule)")
    return cosigner, supervisor


def _content_json(proposal: Proposal, external_id: str, status: str, opened: str, settled: str | None,
                  cosigner: str | None, supervisor: str | None, retained: bool | None, discretion: str | None,
                  facts: str, digits: int) -> str:  # fmt: skip
    """The content's canonical JSON (canonical_json: keys sorted, no spaces), composed from
    each value's JSON without an encoder per row; tests/test_import_rows.py holds it equal
    to canonical_json(content). Its SHA-256 is the row's content hash."""
    return "".join((
        '{"action":', json_text(proposal.action),
        ',"agent":', json_text(proposal.agent),
        ',"amount":', json_text(format_money(proposal.amount, digits)),
        ',"case_type":', json_text(proposal.case_type),
        ',"cosigner":', _json_or_null(cosigner),
        ',"customer_id":', json_text(proposal.customer_id),
        ',"discretionary_amount":', _json_or_null(discretion),
        ',"external_id":', json_text(external_id),
        ',"facts":', facts,
        ',"justification":', _json_or_null(proposal.justification or None),
        ',"opened_at":', json_text(opened),
        ',"reaction":', _json_or_null(proposal.reaction),
        ',"retained":', "null" if retained is None else ("true" if retained else "false"),
        ',"segment":', _json_or_null(proposal.segment),
        ',"settled_at":', _json_or_null(settled),
        ',"status":', json_text(status),
        ',"supervisor":', _json_or_null(supervisor),
        "}",
    ))  # fmt: skip


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
