"""The SQL of `empower case precedents`: comparable past cases found through the
`precedent_keys` index (store.schema, migration 7), then counted and summed on `cases`.

`precedent_keys` holds, for every case, one row with fact '' and one per number or date fact
(a date as its age in days when the case was opened), each under the case's type, action
and signature (its rules bent or blocked): a band of a bent rule is one range of that index.
Plain SQL (CTE, INTERSECT, CASE, COUNT, MIN/MAX, LIMIT/OFFSET): any backend runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from empower_cli.store.sqlite import Store


@dataclass(frozen=True)
class Range:
    """A bent rule's band as the store reads it: `fact` between lo and hi."""

    fact: str
    lo: float
    hi: float
    upper_closed: bool  # lo < value <= hi; else lo <= value < hi


@dataclass(frozen=True)
class Key:
    """What comparable cases share: type, action, signature, and a range per bent rule."""

    case_type: str
    action: str
    signature: str
    ranges: Sequence[Range]


def _matched(key: Key) -> tuple[str, dict[str, Any]]:
    """A query of the matching case ids, and its parameters."""
    ranges = key.ranges
    params: dict[str, Any] = {"case_type": key.case_type, "action": key.action, "signature": key.signature}
    head = ("SELECT case_id FROM precedent_keys"
            " WHERE case_type = :case_type AND action = :action AND signature = :signature")
    if not ranges:
        return f"{head} AND fact = ''", params
    parts = []
    for k, r in enumerate(ranges):
        lower, upper = ("value > ", "value <= ") if r.upper_closed else ("value >= ", "value < ")
        parts.append(f"{head} AND fact = :fact{k} AND {lower}:lo{k} AND {upper}:hi{k}")
        params.update({f"fact{k}": r.fact, f"lo{k}": r.lo, f"hi{k}": r.hi})
    return " INTERSECT ".join(parts), params


def precedent_counts(store: Store, key: Key, *, now: str) -> tuple[int, ...]:
    """matched, approved, denied, expired, pending, and the lowest and highest approved amount."""
    matched, params = _matched(key)
    row = store.conn.execute(
        f"""
        WITH m(id) AS ({matched})
        SELECT COUNT(*),
          COUNT(CASE WHEN status = 'approved' THEN 1 END),
          COUNT(CASE WHEN status = 'denied' THEN 1 END),
          COUNT(CASE WHEN status = 'expired' OR (status IN ('pending_cosign', 'pending_supervisor')
                                                 AND expires_at <= :now) THEN 1 END),
          COUNT(CASE WHEN status IN ('pending_cosign', 'pending_supervisor') AND expires_at > :now THEN 1 END),
          MIN(CASE WHEN status = 'approved' THEN amount END),
          MAX(CASE WHEN status = 'approved' THEN amount END)
        FROM cases WHERE id IN (SELECT id FROM m)
        """,
        {**params, "now": now},
    ).fetchone()
    return tuple(row)


def approved_amounts_at(store: Store, key: Key, *, offset: int, count: int) -> list[int]:
    """`count` approved amounts from the `offset`-th, smallest first (for the median)."""
    matched, params = _matched(key)
    rows = store.conn.execute(
        f"WITH m(id) AS ({matched}) SELECT amount FROM cases WHERE id IN (SELECT id FROM m) AND status = 'approved'"
        " ORDER BY amount LIMIT :count OFFSET :offset",
        {**params, "count": count, "offset": offset},
    ).fetchall()
    return [r[0] for r in rows]


def approved_at_or_below(store: Store, key: Key, *, amount: int) -> int:
    matched, params = _matched(key)
    row = store.conn.execute(
        f"WITH m(id) AS ({matched}) SELECT COUNT(*) FROM cases WHERE id IN (SELECT id FROM m)"
        " AND status = 'approved' AND amount <= :amount",
        {**params, "amount": amount},
    ).fetchone()
    return int(row[0])


Recent = tuple[int, str, str, int, str]


def recent_precedents(store: Store, key: Key, *, now: str, limit: int) -> list[Recent]:
    """(id, opened_at, effective status, amount, agent) of the newest matches."""
    matched, params = _matched(key)
    rows = store.conn.execute(
        f"""
        WITH m(id) AS ({matched})
        SELECT id, opened_at,
          CASE WHEN status IN ('pending_cosign', 'pending_supervisor') AND expires_at <= :now
               THEN 'expired' ELSE status END,
          amount, agent
        FROM cases WHERE id IN (SELECT id FROM m)
        ORDER BY opened_at DESC, id DESC LIMIT :limit
        """,
        {**params, "now": now, "limit": limit},
    ).fetchall()
    return [tuple(r) for r in rows]
