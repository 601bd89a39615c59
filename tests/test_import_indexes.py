"""Migration 4: the agent and exceptions report indexes keyed in insertion order (so an
import appends to them), still read whole, covering, by `audit agents` and `audit rules`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from empower_cli.audit import reports as audit
from empower_cli.core.models import Policy
from empower_cli.core.timeutil import utcnow
from empower_cli.store.schema import MIGRATIONS, SCHEMA_VERSION
from empower_cli.store.sqlite import Store
from tests.conftest import CliFn, acting_as, as_json
from tests.test_import import HEADER, row, write


@pytest.fixture
def cli(cli: CliFn) -> CliFn:
    """Importing is a supervisor's step (can_approve or can_import): these tests act as carol."""
    return acting_as(cli, "carol")


def version_3_database(path: Path) -> None:
    with sqlite3.connect(path, isolation_level=None) as conn:
        db = Database(conn)
        for migration in MIGRATIONS[:3]:
            migration(db)
        conn.execute("PRAGMA user_version = 3")


def history(tmp_path: Path) -> Path:
    # days_since_purchase 20/45: the late_return rule is kept or bent (out of policy).
    lines = [row(f"LEG-{k}", customer=f"C-{k % 3}", agent=("bob", "alice")[k % 2], days=("20", "45")[k % 2])
             for k in range(8)]  # fmt: skip
    return write(tmp_path, HEADER + "".join(lines))


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        sql = "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'cases'"
        return {r[0] for r in conn.execute(sql)}


def test_a_version_3_database_gets_the_append_order_indexes_and_imports_into_them(
    cli: CliFn, db_path: Path, tmp_path: Path
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    version_3_database(db_path)
    assert {"cases_exceptions", "cases_by_agent"} <= indexes(db_path)
    r = cli("--json", "import", "cases", str(history(tmp_path)))
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 8
    found = indexes(db_path)
    assert {"cases_exceptions_by_id", "cases_by_agent_id"} <= found
    assert not {"cases_exceptions", "cases_by_agent"} & found
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    agents = {a["agent"]: a for a in as_json(cli("--json", "audit", "agents"))["rows"]}
    assert agents["bob"]["cases"] == 4
    assert agents["alice"]["cases"] == 4


def test_agents_and_rules_reports_read_the_covering_indexes(
    cli: CliFn, db_path: Path, tmp_path: Path, policy: Policy
) -> None:
    assert cli("--json", "import", "cases", str(history(tmp_path))).exit_code == 0
    statements: list[str] = []
    with Store(db_path) as store:
        assert isinstance(store.conn, sqlite3.Connection)  # SQLite's planner is what this checks
        store.conn.set_trace_callback(statements.append)
        period = audit.Period(now=utcnow())
        audit.agents(store, period, digits=policy.digits)
        audit.rules(store, period, policy=policy)
        store.conn.set_trace_callback(None)
        plans = {}
        for sql in statements:
            if "GROUP BY agent ORDER BY agent" in sql or "json_each(c.rules)" in sql:
                select = sql[sql.index("SELECT") :]
                plans[sql] = " | ".join(p[3] for p in store.conn.execute(f"EXPLAIN QUERY PLAN {select}"))
    assert len(plans) == 2, statements
    assert sorted(p.split(" | ")[0] for p in plans.values()) == [
        "SCAN c USING COVERING INDEX cases_exceptions_by_id",
        "SCAN cases USING COVERING INDEX cases_by_agent_id",
    ]
