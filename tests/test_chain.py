"""The hash chain has one format (store.chain): the fast hash that the import and `audit
verify` use, which splices a stored payload's text into the event's canonical JSON, is
byte for byte the reference `event_hash`, whatever the event holds."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from empower_cli.store.chain import GENESIS, EventFrame, canonical_json, event_hash, spliced_hash

# Any text JSON can carry as UTF-8: quotes, backslashes, control characters, U+2028, emoji…
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
case_ids = st.none() | st.integers(min_value=1, max_value=2**63 - 1)
digests = st.sampled_from([GENESIS, "ab" * 32])


def reference(prev: str, seq: int, at: Any, case_id: Any, kind: Any, actor: Any, os_user: Any, payload: Any) -> str:
    return event_hash(prev, {"seq": seq, "at": at, "case_id": case_id, "kind": kind, "actor": actor,
                             "os_user": os_user, "payload": payload})  # fmt: skip


@given(prev=digests, seq=st.integers(min_value=1, max_value=2**63 - 1), at=text, case_id=case_ids, kind=text,
       actor=text, os_user=text, payload=json_values)  # fmt: skip
@example(prev=GENESIS, seq=3, at="2026-11-20T12:00:00.000000Z", case_id=None, kind="opened", actor="alice",
         os_user="root", payload={})  # fmt: skip
@example(prev="ab" * 32, seq=3, at="2026-11-20T12:00:00.000000Z", case_id=7, kind="opened", actor="Zoë \u202e",
         os_user="root", payload={"note": 'a "quoted" \\ line\nnext', "amount": "12.50", "n": [1, 2.5, None, True]})
@example(prev="ab" * 32, seq=3, at="2026-11-20T12:00:00.000000Z", case_id=2**40, kind="opened", actor="[red]x[/]",
         os_user="root", payload={"nested": {"b": 1, "a": {"é": "ü"}}, "emoji": "\U0001f600"})  # fmt: skip
def test_the_fast_hash_is_the_reference_hash(prev: str, seq: int, at: str, case_id: int | None, kind: str,
                                             actor: str, os_user: str, payload: Any) -> None:  # fmt: skip
    expected = reference(prev, seq, at, case_id, kind, actor, os_user, payload)
    stored = canonical_json(payload)  # as the store writes a payload
    assert spliced_hash(prev, seq, at, case_id, kind, actor, os_user, stored) == expected
    frame = EventFrame(actor=actor, at=at, kind=kind, os_user=os_user)  # as the import hashes its events
    assert frame.hash(prev, seq, case_id, stored) == expected


@given(case_id=st.text(max_size=5) | st.floats() | st.booleans(), actor=st.integers() | st.none())
def test_the_fast_hash_is_exact_for_whatever_a_damaged_log_holds(case_id: Any, actor: Any) -> None:
    # A column edited to another type must not make the fast check accept what the reference refuses.
    at = "2026-11-20T12:00:00.000000Z"
    expected = reference(GENESIS, 2, at, case_id, "opened", actor, "root", {"a": 1})
    assert spliced_hash(GENESIS, 2, at, case_id, "opened", actor, "root", '{"a":1}') == expected


@given(prev=digests, seq=st.integers(min_value=1, max_value=2**40), case_id=st.integers(min_value=1, max_value=2**40),
       actor=text, payloads=st.lists(json_values, max_size=5))  # fmt: skip
def test_a_chunk_chained_at_once_is_the_reference_chain(prev: str, seq: int, case_id: int, actor: str,
                                                       payloads: list[Any]) -> None:  # fmt: skip
    """EventFrame.chain (the import's chunk of events, one per case) hashes each event as the
    reference does, each chained to the one before."""
    at = "2026-11-20T12:00:00.000000Z"
    frame = EventFrame(actor=actor, at=at, kind="imported", os_user="root")
    expected, last = [], prev
    for i, payload in enumerate(payloads):
        last = reference(last, seq + i, at, case_id + i, "imported", actor, "root", payload)
        expected.append(last)
    assert frame.chain(prev, seq, case_id, [canonical_json(p) for p in payloads]) == expected


def test_a_payload_stored_in_other_spelling_misses_the_fast_hash_only() -> None:
    at, payload = "2026-11-20T12:00:00.000000Z", {"b": [1, 2], "a": "x"}
    expected = reference(GENESIS, 1, at, 1, "opened", "alice", "root", payload)
    spaced = json.dumps(payload, indent=1)
    assert spliced_hash(GENESIS, 1, at, 1, "opened", "alice", "root", spaced) != expected
    assert reference(GENESIS, 1, at, 1, "opened", "alice", "root", json.loads(spaced)) == expected


@given(json_values)
def test_canonical_json_is_sorted_compact_and_unescaped(value: Any) -> None:
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
