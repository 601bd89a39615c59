"""The tamper-evident log check of SPEC §6: `audit verify` recomputes the hash chain and
names the first event that does not match; `--expect SEQ:HASH` proves an earlier head is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from empower_cli.audit.state import StateCheck, check_state
from empower_cli.core.errors import InvalidInput
from empower_cli.store.chain import GENESIS, Head, event_hash, spliced_hash
from empower_cli.store.replay import events_in_order
from empower_cli.store.sqlite import Store


def parse_head(text: str) -> Head:
    """SEQ:HASH as printed by `audit head`."""
    seq, sep, digest = text.strip().partition(":")
    digest = digest.lower()
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput("--expect", f"expected SEQ:HASH as printed by `empower audit head`, got {text[:80]!r}")
    return Head(int(seq), digest)


@dataclass
class Verification:
    checked: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problem: str | None = None
    bad_seq: int | None = None
    expect: Head | None = None
    expect_found: bool | None = None
    state: StateCheck | None = None  # the tables against the log (when the chain verifies)

    @property
    def ok(self) -> bool:
        return self.problem is None



def verify(store: Store, *, expect: Head | None = None) -> Verification:
    """Recompute the chain event by event (streamed), then check that the tables agree with
    it (audit_state); stop at the first mismatch."""
    result = _verify_chain(store, expect)
    if result.ok:
        result.state = check_state(store)
        result.problem = result.state.problem
    return result


def _verify_chain(store: Store, expect: Head | None) -> Verification:
    result = Verification(expect=expect)
    prev = GENESIS
    expected_seq = 1
    for seq, at, case_id, kind, actor, os_user, payload, prev_hash, digest in events_in_order(store):
        problem = _check_event(expected_seq, prev, seq, at, case_id, kind, actor, os_user, payload, prev_hash, digest)
        if problem is not None:
            result.problem, result.bad_seq = problem, min(seq, expected_seq)
            return result
        result.checked += 1
        result.head = Head(seq, digest)
        if expect is not None and seq == expect.seq:
            result.expect_found = digest == expect.hash
            if not result.expect_found:
                result.problem, result.bad_seq = (
                    f"event {seq} has hash {digest[:16]}…, not the kept head's {expect.hash[:16]}…: "
                    "the history was rewritten",
                    seq,
                )
                return result
        prev, expected_seq = digest, seq + 1
    if expect is not None and expect.seq == 0:
        result.expect_found = expect.hash == GENESIS
        if not result.expect_found:
            result.problem = "the kept head 0:… must be the genesis hash (64 zeros)"
    elif expect is not None and result.expect_found is None:
        result.expect_found = False
        result.problem = (
            f"the kept head {expect.seq} is no longer in the log, which ends at event "
            f"{result.head.seq}: events were removed (the log was truncated)"
        )
    return result


def _check_event(expected_seq: int, prev: str, seq: int, at: str, case_id: int | None, kind: str, actor: str,
                 os_user: str, payload: str, prev_hash: str, digest: str) -> str | None:  # fmt: skip
    # The fast check proves a match; only event_hash (the reference) may refuse an event.
    if seq == expected_seq and prev_hash == prev and spliced_hash(prev, seq, at, case_id, kind, actor,
                                                                  os_user, payload) == digest:  # fmt: skip
        return None
    where = f"event {seq} ({kind}" + (f", case {case_id})" if case_id is not None else ")")
    if seq != expected_seq:
        if seq > expected_seq:
            return f"event {expected_seq} is missing (the next event is {seq}): an event was deleted"
        return f"{where} is out of order (expected event {expected_seq})"
    if prev_hash != prev:
        return f"{where} does not link to the event before it (prev_hash differs): the log was altered"
    try:
        body = {"seq": seq, "at": at, "case_id": case_id, "kind": kind, "actor": actor,
                "os_user": os_user, "payload": json.loads(payload)}  # fmt: skip
    except (TypeError, ValueError):
        return f"{where} has a payload that is not JSON: it was modified"
    if event_hash(prev, body) != digest:
        return f"{where} does not match its hash: it was modified"
    return None
