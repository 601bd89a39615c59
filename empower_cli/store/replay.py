"""Read queries of the services and the log check: the cases a simulation replays, what
came before it, and every event in order. SQL only; the callers do the work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from empower_cli.store.sqlite import Store

REPLAY_COLUMNS = ("id", "opened_at", "agent", "customer_id", "segment", "case_type", "action", "amount",
                  "facts", "justification", "reaction", "escalated", "status", "discretionary_amount",
                  "held_amount", "settled_at", "expires_at")  # fmt: skip


def count_cases(store: Store, since: str | None) -> int:
    """How many cases were opened at or after `since` (all when None)."""
    where, params = ("WHERE opened_at >= ?", (since,)) if since else ("", ())
    return int(store.conn.execute(f"SELECT COUNT(*) FROM cases {where}", params).fetchone()[0])


def cases_to_replay(store: Store, since: str | None) -> Iterator[dict[str, Any]]:
    """The cases opened at or after `since`, in the order they were opened (REPLAY_COLUMNS)."""
    where, params = ("WHERE opened_at >= ?", (since,)) if since else ("", ())
    sql = f"SELECT {', '.join(REPLAY_COLUMNS)} FROM cases {where} ORDER BY opened_at, id"
    for values in store.iterate(sql, params):
        yield dict(zip(REPLAY_COLUMNS, values, strict=True))


def budget_before(store: Store, since: str, window_start: str) -> Iterator[tuple[str, str, str, int, int, str, str]]:
    """(customer, opened_at, status, discretionary_amount, held_amount, settled_at, expires_at)
    of the cases opened before `since` that still weigh on a budget after it: discretion
    settled after `window_start`, or a hold that outlived `since`.

    `sql_unindexed` (a `+` on SQLite) keeps it from searching the status index (a table look-up per row): a scan
    of the narrow covering index on customers is far faster.
    """
    opened, status = store.sql_unindexed("opened_at"), store.sql_unindexed("status")
    yield from store.iterate(
        "SELECT customer_id, opened_at, status, discretionary_amount, held_amount, settled_at, expires_at "
        f"FROM cases WHERE {opened} < :since AND ("
        f"({status} = 'approved' AND discretionary_amount > 0 AND settled_at > :window_start) "
        "OR (held_amount > 0 AND COALESCE(settled_at, expires_at) > :since))",
        {"since": since, "window_start": window_start},
    )


def events_in_order(store: Store) -> Iterator[tuple[Any, ...]]:
    """Every event as (seq, at, case_id, kind, actor, os_user, payload, prev_hash, hash), by seq."""
    yield from store.iterate(
        "SELECT seq, at, case_id, kind, actor, os_user, payload, prev_hash, hash FROM events ORDER BY seq"
    )
