"""The tables derived from cases (case_texts, its FTS5 index, precedent_keys) hold the same
rows whichever way a case arrived: a live case (row-by-row triggers), an import (set-based
per chunk, store.derived) or a migration (set-based over every case)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from empower_cli.store import schema
from tests.conftest import JUSTIFICATION, LATE_RETURN, CliFn, acting_as
from tests.test_import import HEADER, row, write


def test_live_imported_and_migrated_cases_derive_the_same_rows(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    for days, amount in (("20", "40.00"), ("25", "300.00"), ("10", "20.00")):
        args = [a if a != "days_since_purchase=20" else f"days_since_purchase={days}" for a in LATE_RETURN]
        r = cli(*args, "--amount", amount, "--justification", f"{JUSTIFICATION} after the flood, {days} days")
        assert r.exit_code == 0, r.output
    lines = "".join(row(f"OLD-{k}", days=str(10 + k), amount=f"{10 + k}.00", status=("approved", "denied")[k % 2],
                        justification=f"Imported flood case number {k}") for k in range(30))  # fmt: skip
    r = acting_as(cli, "carol")("import", "cases", str(write(tmp_path, HEADER + lines)))
    assert r.exit_code == 0, r.output
    r = cli(*LATE_RETURN, "--amount", "55.00", "--justification", "A live case after the import, flood again")
    assert r.exit_code == 0, r.output
    with sqlite3.connect(db_path) as conn:
        stored = sorted(conn.execute(f"SELECT {schema._PRECEDENT_COLUMNS} FROM precedent_keys"))
        derived = sorted(conn.execute(schema._PRECEDENT_BACKFILL.format(where="")))
        assert stored == derived
        assert len(stored) == 34
        # The import's statement (a signature per distinct rules text) and the migration's agree.
        by_rules = sorted(conn.execute(schema._PRECEDENTS_BY_RULES, {"last": 0}))
        assert by_rules == derived
        texts = [r[1:] for r in conn.execute("SELECT * FROM case_texts ORDER BY case_id")]
        again = list(conn.execute(schema._JUSTIFICATION.format(c="c", tail="FROM cases c WHERE c.justification != ''"
                                                                          " ORDER BY c.id")))  # fmt: skip
        assert texts == again
        conn.execute("INSERT INTO case_texts_fts (case_texts_fts) VALUES ('integrity-check')")  # raises if not
        found = conn.execute("SELECT COUNT(*) FROM case_texts_fts WHERE case_texts_fts MATCH 'flood'").fetchone()[0]
        assert found == 34
        triggers = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert set(schema.PER_CASE_TRIGGERS) <= triggers  # put back after every chunk
