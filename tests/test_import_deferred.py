"""A large import drops the report indexes keyed in random order and builds them once at
its end. After a kill they stay listed in `deferred_indexes`: every command still answers
correctly, and the next import or `empower init` builds them, exactly as a migration would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from empower_cli.imports import run as importer
from empower_cli.store import bulk as store_import
from empower_cli.store.sqlite import Store
from tests.conftest import CliFn, acting_as, as_json
from tests.test_import import HEADER, ago, chain_ok, row, write
from tests.test_import_crash import committed, kill_after_first_chunk


@pytest.fixture
def cli(cli: CliFn) -> CliFn:
    """Importing is a supervisor's step (can_approve or can_import): these tests act as carol."""
    return acting_as(cli, "carol")


def index_sql(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        sql = "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"
        return dict(conn.execute(sql).fetchall())


def deferred(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM deferred_indexes ORDER BY name")]


def history(tmp_path: Path, rows: int, name: str = "history.csv", prefix: str = "LEG") -> Path:
    lines = [row(f"{prefix}-{k:06d}", customer=f"C-{k % 97}", opened=ago(40 + k % 300), amount=f"{k % 90 + 1}.25",
                 days=("12", "20")[k % 2]) for k in range(rows)]  # fmt: skip
    return write(tmp_path, HEADER + "".join(lines), name)


def fresh_schema(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "fresh" / "empower.db"
    Store(path).close()
    return index_sql(path)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every import 'large' (threshold 1 row) and record when indexes are deferred."""
    calls: list[str] = []
    real = store_import.defer_indexes

    def recording(store: Store) -> None:
        calls.append("defer")
        real(store)

    monkeypatch.setattr(importer, "DEFER_INDEXES_MIN_ROWS", 1)
    monkeypatch.setattr(store_import, "defer_indexes", recording)
    return calls


def test_a_large_import_ends_with_the_same_indexes_a_new_database_has(cli: CliFn, tmp_path: Path, db_path: Path,
                                                                      spy: list[str]) -> None:  # fmt: skip
    r = cli("--json", "import", "cases", str(history(tmp_path, 40)))
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 40
    assert spy == ["defer"]
    assert index_sql(db_path) == fresh_schema(tmp_path)
    assert deferred(db_path) == []
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_small_import_into_a_larger_database_keeps_its_indexes(cli: CliFn, tmp_path: Path, db_path: Path,
                                                                 spy: list[str]) -> None:  # fmt: skip
    assert cli("import", "cases", str(history(tmp_path, 60))).exit_code == 0
    assert spy == ["defer"]  # into an empty database: deferred
    small = history(tmp_path, 10, name="more.csv", prefix="NEW")
    r = cli("--json", "import", "cases", str(small))
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 10
    assert spy == ["defer"]  # 10 rows into 60: maintained row by row, not rebuilt
    assert index_sql(db_path) == fresh_schema(tmp_path)


def test_empower_init_builds_indexes_an_interrupted_import_left(cli: CliFn, tmp_path: Path, db_path: Path,
                                                                policy_path: Path) -> None:  # fmt: skip
    assert cli("import", "cases", str(history(tmp_path, 30))).exit_code == 0
    with Store(db_path) as store:
        store_import.defer_indexes(store)  # as a killed import leaves it
    assert deferred(db_path) == sorted(store_import.DEFERRABLE_INDEXES)
    assert not set(store_import.DEFERRABLE_INDEXES) & set(index_sql(db_path))
    # Without them every command still answers, from the table itself.
    r = cli("--json", "audit", "summary")
    assert as_json(r)["cases"] == 30
    assert "report indexes are not built yet" in r.stderr
    shown = as_json(cli("--json", "customer", "show", "C-1"))
    assert shown["customer_id"] == "C-1"

    r = cli("--db", str(db_path), "init", str(policy_path.parent))
    assert r.exit_code == 0, r.output
    assert "rebuilt 4 report indexes" in r.stdout
    assert index_sql(db_path) == fresh_schema(tmp_path)
    assert deferred(db_path) == []
    r = cli("--db", str(db_path), "--json", "init", str(policy_path.parent))
    assert as_json(r)["indexes_rebuilt"] == 0
    assert as_json(cli("--json", "customer", "show", "C-1")) == shown
    assert cli("--json", "audit", "summary").stderr == ""


def test_kill_9_during_a_deferred_import_then_rerun_rebuilds_everything(cli: CliFn, tmp_path: Path,
                                                                         policy_path: Path, db_path: Path) -> None:
    rows = importer.DEFER_INDEXES_MIN_ROWS + 10_000  # large enough to defer, in a subprocess
    path = history(tmp_path, rows, name="big.csv")
    kill_after_first_chunk(path, policy_path, db_path)
    done = committed(db_path)
    assert 0 < done < rows, "the kill did not land mid-import"
    assert deferred(db_path) == sorted(store_import.DEFERRABLE_INDEXES)
    assert chain_ok(db_path) == done

    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["skipped"], summary["rejected"]) == (rows - done, done, 0)
    assert deferred(db_path) == []
    assert index_sql(db_path) == fresh_schema(tmp_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(DISTINCT external_id) FROM cases").fetchone() == (rows,)
    assert chain_ok(db_path) == rows


def test_a_failed_index_build_loses_no_row_and_says_what_to_run(cli: CliFn, tmp_path: Path, db_path: Path,
                                                                 policy_path: Path, spy: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from empower_cli.core.errors import StoreError

    def full_disk(store: Store) -> int:
        raise StoreError(f"{db_path}: the disk holding the database is full (database or disk is full)")

    monkeypatch.setattr(store_import, "rebuild_indexes", full_disk)
    r = cli("--json", "import", "cases", str(history(tmp_path, 25)))
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 25
    assert "the report indexes were not built" in r.stderr
    assert "empower init" in r.stderr
    assert deferred(db_path) == sorted(store_import.DEFERRABLE_INDEXES)
    monkeypatch.undo()
    assert cli("--db", str(db_path), "init", str(policy_path.parent)).exit_code == 0
    assert index_sql(db_path) == fresh_schema(tmp_path)
