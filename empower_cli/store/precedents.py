"""The SQL of `empower case precedents`: comparable past cases found, counted and summed in
the `precedent_keys` table alone (store.schema, migration 7): one key range, no case rows read.

`precedent_keys` holds, for every case, one row with fact '' and one per number or date fact
(a date as its age in days when the case was opened), each under the case's type, action
and signature (its rules bent or blocked): a band of a bent rule is one range of that index.
Plain SQL (CTE, IN, CASE, COUNT, MIN/MAX, LIMIT/OFFSET): any backend runs it.
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
    """A query of the matching cases, one row each (case_id, opened_at, status, expires_at,
    amount, agent), read from precedent_keys alone, and its parameters."""
    ranges = key.ranges
    params: dict[str, Any] = {"case_type": key.case_type, "action": key.action, "signature": key.signature}
    head = ("SELECT {columns} FROM precedent_keys"
            " WHERE case_type = :case_type AND action = :action AND signature = :signature")
    if not ranges:
        return head.format(columns=_COLUMNS) + " AND fact = ''", params
    parts = []
    for k, r in enumerate(ranges):
        lower, upper = ("value > ", "value <= ") if r.upper_closed else ("value >= ", "value < ")
        parts.append(f" AND fact = :fact{k} AND {lower}:lo{k} AND {upper}:hi{k}")
        params.update({f"fact{k}": r.fact, f"lo{k}": r.lo, f"hi{k}": r.hi})
    sql = head.format(columns=_COLUMNS) + parts[0]
    for part in parts[1:]:  # every other bent rule's band holds the case too
        sql += f" AND case_id IN ({head.format(columns='case_id')}{part})"
    return sql, params


_COLUMNS = "case_id, opened_at, status, expires_at, amount, agent, value"
_EXPIRED = "status IN ('pending_cosign', 'pending_supervisor') AND expires_at <= :now"


def precedent_counts(store: Store, key: Key, *, now: str) -> tuple[int, ...]:
    """matched, approved, denied, expired, pending, and the lowest and highest approved amount."""
    matched, params = _matched(key)
    row = store.conn.execute(
        f"""
        WITH m AS ({matched})
        SELECT COUNT(*),
          COUNT(CASE WHEN status = 'approved' THEN 1 END),
          COUNT(CASE WHEN status = 'denied' THEN 1 END),
          COUNT(CASE WHEN status = 'expired' OR ({_EXPIRED}) THEN 1 END),
          COUNT(CASE WHEN status IN ('pending_cosign', 'pending_supervisor') AND expires_at > :now THEN 1 END),
          MIN(CASE WHEN status = 'approved' THEN amount END),
          MAX(CASE WHEN status = 'approved' THEN amount END)
        FROM m
        """,
        {**params, "now": now},
    ).fetchone()
    return tuple(row)


def approved_amounts_at(store: Store, key: Key, *, offset: int, count: int) -> list[int]:
    """`count` approved amounts from the `offset`-th, smallest first (for the median)."""
    matched, params = _matched(key)
    # With no rule bent, a case's key row holds its amount as `value`: read in key order, no sort.
    order = "amount" if key.ranges else "value"
    rows = store.conn.execute(
        f"WITH m AS ({matched}) SELECT amount FROM m WHERE status = 'approved' ORDER BY {order}"
        " LIMIT :count OFFSET :offset",
        {**params, "count": count, "offset": offset},
    ).fetchall()
    return [r[0] for r in rows]


def approved_at_or_below(store: Store, key: Key, *, amount: int) -> int:
    matched, params = _matched(key)
    row = store.conn.execute(
        f"WITH m AS ({matched}) SELECT COUNT(*) FROM m WHERE status = 'approved' AND amount <= :amount",
        {**params, "amount": amount},
    ).fetchone()
    return int(row[0])


Recent = tuple[int, str, str, int, str]


def recent_precedents(store: Store, key: Key, *, now: str, limit: int) -> list[Recent]:
    """(id, opened_at, effective status, amount, agent) of the newest matches."""
    matched, params = _matched(key)
    rows = store.conn.execute(
        f"""
        WITH m AS ({matched})
        SELECT case_id, opened_at, CASE WHEN {_EXPIRED} THEN 'expired' ELSE status END, amount, agent
        FROM m ORDER BY opened_at DESC, case_id DESC LIMIT :limit
        """,
        {**params, "now": now, "limit": limit},
    ).fetchall()
    return [tuple(r) for r in rows]
