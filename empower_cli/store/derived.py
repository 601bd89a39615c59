"""The tables derived from new cases by triggers (case_texts, its full-text index, and
precedent_keys: store.schema, migration 7), kept set-based during a bulk write.

A trigger that writes a full-text table makes SQLite open a statement journal per row, and
FTS5 then flushes its pending index on each: row by row, the import paid ten times what one
statement per chunk costs. `set_based` drops those triggers inside the write transaction,
lets the caller insert, runs the same work as one statement per table, and puts the
triggers back before the commit: other connections never see them missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from empower_cli.store.schema import FULL_TEXT_SINCE, PER_CASE_TRIGGERS, PRECEDENTS_SINCE, TEXTS_SINCE
from empower_cli.store.sqlite import Store


@contextmanager
def set_based(store: Store) -> Iterator[None]:
    """Around inserts of new cases, inside store.write(); on an error the caller's rollback
    restores the triggers."""
    conn = store.conn
    assert conn.in_transaction, "set_based outside a write transaction"
    marks = ", ".join("?" * len(PER_CASE_TRIGGERS))
    triggers = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})", PER_CASE_TRIGGERS
    ).fetchall()
    if len(triggers) != len(PER_CASE_TRIGGERS):  # a schema without them: nothing to keep
        yield
        return
    last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM cases").fetchone()[0]
    last_text = conn.execute("SELECT COALESCE(MAX(id), 0) FROM case_texts").fetchone()[0]
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    yield
    conn.execute(TEXTS_SINCE, {"last": last})
    conn.execute(FULL_TEXT_SINCE, {"last_text": last_text})
    conn.execute(PRECEDENTS_SINCE, {"last": last})
    for _, sql in triggers:
        conn.execute(sql)
