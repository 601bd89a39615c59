"""The hash chain of the event log (SPEC §6): the canonical JSON of an event, its SHA-256
chained from GENESIS, and the fast form of that hash that the import and `audit verify` use.

`event_hash` is the reference. `EventFrame.hash` (and `spliced_hash` for one stored event)
gives the same digest without encoding the payload again: it splices the payload's canonical
JSON, as the store keeps it, into the event's; tests/test_chain.py holds them byte-equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from empower_cli.core.digest import sha256_hex

GENESIS = "0" * 64
EVENT_FIELDS = ("seq", "at", "case_id", "kind", "actor", "os_user", "payload")

# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False), with the
# encoder made once: json.dumps builds a new one on every call with these arguments.
_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode

json_text = json.encoder.encode_basestring
"""A string's canonical JSON (as `canonical_json` writes a str), without the type dispatch."""


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, text as itself (no \\u escapes): the JSON the chain hashes."""
    return _canonical(value)


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the event (the reference)."""
    body = {k: event[k] for k in EVENT_FIELDS}
    return sha256_hex((prev_hash + canonical_json(body)).encode("utf-8"))


@dataclass(frozen=True)
class Head:
    """The last event of the chain, as `audit head` prints it (seq 0: the empty log)."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


class EventFrame:
    """The canonical JSON of events that share an actor, a time, a kind and an account, with
    their case, payload and number left open: hashing one of them joins text instead of
    encoding JSON (an import's events all share one frame)."""

    __slots__ = ("head", "mid", "sha256")

    def __init__(self, *, actor: Any, at: Any, kind: Any, os_user: Any) -> None:
        # The keys in canonical (sorted) order: actor, at, case_id, kind, os_user, payload, seq.
        # Any type (not just str): `audit verify` frames whatever a damaged log holds.
        self.head = '{"actor":' + canonical_json(actor) + ',"at":' + canonical_json(at) + ',"case_id":'
        self.mid = ',"kind":' + canonical_json(kind) + ',"os_user":' + canonical_json(os_user) + ',"payload":'
        self.sha256 = _bulk_sha256()

    def hash(self, prev: str, seq: int, case_id: int | None, payload: str) -> str:
        """`event_hash(prev, event)` for this frame's event numbered `seq`, of case `case_id`,
        whose payload's canonical JSON is `payload`."""
        # An int is written as JSON writes it; anything else (None, or what a damaged log
        # holds) goes through the encoder, so that a match always proves the event.
        case = case_id if type(case_id) is int else canonical_json(case_id)
        return str(self.sha256(f'{prev}{self.head}{case}{self.mid}{payload},"seq":{seq}}}'.encode()).hexdigest())

    def chain(self, prev: str, seq: int, case_id: int, payloads: list[str]) -> list[str]:
        """The hashes of events numbered from `seq`, of cases numbered from `case_id` (one
        event each), with these payloads, each chained to the one before from `prev`: as
        many `hash` calls, without a call per event (an import's whole chunk)."""
        head, mid, sha256 = self.head, self.mid, self.sha256
        digests: list[str] = []
        append = digests.append
        for payload in payloads:
            prev = sha256(f'{prev}{head}{case_id}{mid}{payload},"seq":{seq}}}'.encode()).hexdigest()
            append(prev)
            seq += 1
            case_id += 1
        return digests


@cache
def _bulk_sha256() -> Callable[[bytes], Any]:
    """hashlib's SHA-256 (OpenSSL's: fastest per byte) for hashing many events; loaded when
    the first frame is made, so that a command hashing one event never loads OpenSSL
    (core.digest)."""
    import hashlib

    return hashlib.sha256


def spliced_hash(prev: str, seq: int, at: str, case_id: int | None, kind: str, actor: str, os_user: str,
                 payload: str) -> str:  # fmt: skip
    """`event_hash` of one stored event, its payload given as the text stored. The store writes
    the payload as its canonical JSON, so a match proves the event; a payload stored in other
    spelling misses, and only `event_hash` may then judge the event."""
    return EventFrame(actor=actor, at=at, kind=kind, os_user=os_user).hash(prev, seq, case_id, payload)
