"""Full-text search over what people wrote on cases: justifications, co-sign, approval and
denial notes, objection reasons (`empower case search`).

The texts live in `case_texts`, filled from the events by a trigger (store.schema, migration
7) and indexed by SQLite FTS5 (`case_texts_fts`, kept current by sqlite-utils' triggers).
Only `match_sqlite` speaks FTS5 (MATCH, snippet(), bm25()); another backend's Store
overrides `match_case_texts` to return the same rows (store.postgres: a tsvector).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from empower_cli.store.sqlite import STATUS_SQL, Store

# Around each matching term in a snippet; control characters that no stored text can hold
# (free text refuses them), turned into the renderer's own markers.
MARK_START, MARK_END = "\x02", "\x03"
SNIPPET_TOKENS = 16


@dataclass(frozen=True)
class Hit:
    case_id: int
    kind: str  # justification, note (co-sign, approval, denial), objection
    source: str  # the event kind: opened, imported, cosigned, approved, denied, objected
    actor: str
    at: str
    snippet: str  # with MARK_START / MARK_END around each match
    rank: float  # lower is better (bm25)
    status: str  # the case's effective status
    customer_id: str
    case_type: str
    opened_at: str


def fts_query(terms: Sequence[str]) -> str:
    """Every term must appear (AND), each quoted so that no character a user types is FTS5
    syntax: `double-charge` is the phrase "double charge", `"` and `*` are plain text."""
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search(store: Store, terms: Sequence[str], *, limit: int | None, now: str) -> list[Hit]:
    """The texts that hold every term, best match first (then the most recently recorded)."""
    return [Hit(*row) for row in store.match_case_texts(terms, limit=limit, now=now)]


def match_sqlite(store: Store, query: str, *, limit: int | None, now: str) -> list[tuple[Any, ...]]:
    """The best matches are chosen on the index alone (rank, then the newest text); only
    they are joined to their case and given a snippet, however many texts match."""
    tail = "LIMIT :limit" if limit else ""
    # status and expires_at (in STATUS_SQL) are the case's: case_texts has no such columns.
    sql = f"""
        WITH best(id, rank) AS (
          SELECT rowid, bm25(case_texts_fts) FROM case_texts_fts WHERE case_texts_fts MATCH :query
          ORDER BY 2, 1 DESC {tail})
        SELECT t.case_id, t.kind, t.source, t.actor, t.at,
               snippet(case_texts_fts, 0, :start, :end, '…', {SNIPPET_TOKENS}), best.rank,
               {STATUS_SQL}, c.customer_id, c.case_type, c.opened_at
        FROM best
        JOIN case_texts_fts ON case_texts_fts.rowid = best.id
        JOIN case_texts t ON t.id = best.id
        JOIN cases c ON c.id = t.case_id
        WHERE case_texts_fts MATCH :query
        ORDER BY best.rank, best.id DESC
    """
    params = {"query": query, "start": MARK_START, "end": MARK_END, "now": now, "limit": limit}
    return store.conn.execute(sql, params).fetchall()
