"""`audit verify`, second half: the tables budgets and reports read must agree with the log.

Every case row is re-derived from its events (opened or imported, then each step) and
compared column by column; every customer's segment from the events that set it; every
applied policy from its `policy_applied` event. A row changed, deleted or added outside the
commands is named. Streamed: one case's events at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from empower_cli.core.models import PENDING
from empower_cli.store.sqlite import Row, Store

OUTSIDE = "changed outside empower"


@dataclass
class StateCheck:
    cases: int = 0
    customers: int = 0
    policies: int = 0
    problem: str | None = None
    bad_case: int | None = None
    bad_customer: str | None = None


def check_state(store: Store) -> StateCheck:
    """Compare every case, customer and applied policy with what the events say."""
    result = StateCheck()
    segments: dict[str, tuple[int, str]] = {}  # customer -> (seq, segment) of the latest event setting it
    problem = _check_cases(store, result, segments) or _check_customers(store, result, segments)
    problem = problem or _check_policies(store, result)
    result.problem = problem
    return result


# -- cases ------------------------------------------------------------------------------


def _check_cases(store: Store, result: StateCheck, segments: dict[str, tuple[int, str]]) -> str | None:
    rows = store.cases_by_id()
    row = next(rows, None)
    for case_id, events in groupby(store.case_events_by_case(), key=lambda e: e[0]):
        while row is not None and row["id"] < case_id:
            result.bad_case = row["id"]
            return f"case {row['id']} has no events: the row was added outside empower"
        if row is None or row["id"] != case_id:
            result.bad_case = case_id
            return f"case {case_id} is in the log but not in the cases table: the row was deleted outside empower"
        try:
            expected = derive_case([e[1:] for e in events], segments)
        except (KeyError, TypeError, ValueError, AttributeError):
            expected = "its events do not hold what a case needs: the log was changed outside empower"
        if isinstance(expected, str):
            result.bad_case = case_id
            return f"case {case_id}: {expected}"
        difference = _first_difference(row, expected)
        if difference is not None:
            result.bad_case = case_id
            return f"case {case_id}: {difference}"
        result.cases += 1
        row = next(rows, None)
    if row is not None:
        result.bad_case = row["id"]
        return f"case {row['id']} has no events: the row was added outside empower"
    return None


def derive_case(events: list[tuple[int, str, str, str, str]],
                segments: dict[str, tuple[int, str]]) -> dict[str, Any] | str:  # fmt: skip
    """The cases row that a case's events (seq, at, kind, actor, payload) describe, or a problem.

    Columns an older schema's events do not carry (a hold's expiry before schema 6, an
    import's rule results) are left out and so not compared.
    """
    seq, at, kind, actor, text = events[0]
    payload = json.loads(text)
    if kind == "opened":
        row = _opened(at, actor, payload)
    elif kind == "imported":
        row = _imported(actor, payload)
    else:
        return f"its first event ({seq}) is {kind!r}, not a case being opened"
    if row["segment"] is not None:
        _remember(segments, row["customer_id"], seq, row["segment"])
    for seq, at, kind, actor, text in events[1:]:
        step = STEPS.get(kind)
        if step is None:
            return f"event {seq} is {kind!r}, which no case step writes"
        step(row, at, actor, json.loads(text))
    return row


def _opened(at: str, actor: str, p: dict[str, Any]) -> dict[str, Any]:
    pending = p["status"] in PENDING
    row = {
        "imported": 0, "external_id": None, "content_hash": None, "today_status": None,
        "today_discretionary": None, "imported_by": None, "opened_at": at, "agent": actor,
        "customer_id": p["customer_id"], "segment": p["segment"], "case_type": p["case_type"],
        "action": p["action"], "amount": _cents(p["amount"]),
        "discretionary_amount": _cents(p["discretionary_amount"]), "held_amount": _cents(p["held"]),
        "in_policy": int(p["in_policy"]), "status": p["status"], "settled_at": None if pending else at,
        "escalated": int(p["escalate"]), "facts": p["facts"], "rules": p["rules"], "reasons": p["reasons"],
        "justification": p["justification"] or None, "reaction": p["reaction"], "retained": None,
        "cosigner": None, "supervisor": None, "objections": 0, "policy_version": p["policy_version"],
        "policy_sha256": p["policy_sha256"],
    }  # fmt: skip
    if "expires_at" in p:
        row["expires_at"] = p["expires_at"]
    return row


def _imported(actor: str, p: dict[str, Any]) -> dict[str, Any]:
    c = p["content"]
    given = c["discretionary_amount"]
    discretion = _cents(given if given is not None else p["today_discretionary"])
    pending = c["status"] in PENDING
    row = {
        "imported": 1, "external_id": c["external_id"], "content_hash": p["content_hash"], "imported_by": actor,
        "opened_at": c["opened_at"], "agent": c["agent"], "customer_id": c["customer_id"], "segment": c["segment"],
        "case_type": c["case_type"], "action": c["action"], "amount": _cents(c["amount"]),
        "discretionary_amount": discretion, "held_amount": discretion if pending else 0,
        "in_policy": int(discretion == 0), "status": c["status"],
        "settled_at": None if pending else (c["settled_at"] or c["opened_at"]), "escalated": 0,
        "facts": c["facts"], "justification": c["justification"], "reaction": c["reaction"],
        "retained": None if c["retained"] is None else int(c["retained"]), "cosigner": c["cosigner"],
        "supervisor": c["supervisor"], "objections": 0, "policy_version": p["policy_version"],
        "policy_sha256": p["policy_sha256"], "today_status": p["today_status"],
        "today_discretionary": _cents(p["today_discretionary"]),
    }  # fmt: skip
    for key in ("expires_at", "rules", "reasons"):  # in the events of schema 6 and later
        if key in p:
            row[key] = p[key]
    return row


def _cosigned(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(status="approved", cosigner=actor, settled_at=at)


def _objected(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(status=p["status"], objections=row["objections"] + 1)


def _approved(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(status="approved", supervisor=actor, settled_at=at)


def _denied(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(status="denied", supervisor=actor, settled_at=at)


def _expired(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(status="expired", settled_at=p["expires_at"])


def _outcome(row: dict[str, Any], at: str, actor: str, p: dict[str, Any]) -> None:
    row.update(reaction=p["reaction"], retained=int(p["retained"]))


STEPS = {"cosigned": _cosigned, "objected": _objected, "approved": _approved, "denied": _denied,
         "expired": _expired, "outcome": _outcome}  # fmt: skip
JSON_COLUMNS = ("facts", "rules", "reasons")


def _first_difference(row: Row, expected: dict[str, Any]) -> str | None:
    for column, want in expected.items():
        have = row[column]
        if column in JSON_COLUMNS:
            try:
                have = json.loads(have)
            except (TypeError, ValueError):
                return f"{column} is not JSON in the table: the row was {OUTSIDE}"
        if have != want:
            return (f"{column} is {_show(row[column])} in the table but {_show(want)} by its events: "
                    f"the row was {OUTSIDE}")  # fmt: skip
    return None


# -- customers and policies ----------------------------------------------------------------


def _check_customers(store: Store, result: StateCheck, segments: dict[str, tuple[int, str]]) -> str | None:
    for event in store.events_of_no_case("segment_set"):
        try:
            p = json.loads(event["payload"])
            _remember(segments, p["customer_id"], event["seq"], p["segment"])
        except (KeyError, TypeError, ValueError):
            return f"event {event['seq']} (segment_set) does not name a customer and segment: it was changed"
    for customer in store.customers_without_case():
        if customer not in segments:
            result.bad_customer = customer
            return f"customer {customer!r} has no case and no segment grant: the row was added outside empower"
    for customer in store.case_customers_without_row():
        result.bad_customer = customer
        return f"customer {customer!r} has cases but no customers row: the row was deleted outside empower"
    table = store.customers_with_segment()
    for customer in sorted(set(table) | set(segments)):
        want = segments[customer][1] if customer in segments else None
        if table.get(customer) != want:
            result.bad_customer = customer
            return (f"customer {customer!r} is in segment {_show(table.get(customer))} in the table but "
                    f"{_show(want)} by the log: the row was {OUTSIDE}")  # fmt: skip
        result.customers += 1
    return None


def _check_policies(store: Store, result: StateCheck) -> str | None:
    events = store.events_of_no_case("policy_applied")
    rows = store.policy_rows()
    for event, row in _pairs(events, rows):
        if event is None:
            assert row is not None
            return f"policy #{row['number']} has no policy_applied event: the row was added outside empower"
        if row is None:
            return f"the policy applied at event {event['seq']} has no row in the policies table: it was deleted"
        try:
            p = json.loads(event["payload"])
        except ValueError:
            return f"event {event['seq']} (policy_applied) is not JSON: it was changed"
        want = {"number": p["number"], "version": p["policy_version"], "sha256": p["policy_sha256"],
                "currency": p["currency"], "text": p["text"], "applied_by": event["actor"],
                "os_user": event["os_user"], "applied_at": event["at"], "note": p["note"],
                "seq": event["seq"]}  # fmt: skip
        for column, value in want.items():
            if row.get(column) != value:
                return f"policy #{row['number']}: {column} differs from its policy_applied event: {OUTSIDE}"
        result.policies += 1
    return None


def _pairs(events: list[Row], rows: list[Row]) -> Iterator[tuple[Row | None, Row | None]]:
    for i in range(max(len(events), len(rows))):
        yield (events[i] if i < len(events) else None, rows[i] if i < len(rows) else None)


def _remember(segments: dict[str, tuple[int, str]], customer: str, seq: int, segment: str) -> None:
    if customer not in segments or segments[customer][0] < seq:
        segments[customer] = (seq, segment)


def _cents(text: str) -> int:
    """Money as format_money writes it (always the currency's minor digits) -> minor units."""
    return int(text.replace(".", ""))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
