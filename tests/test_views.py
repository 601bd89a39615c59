"""The database read by other tools: the views `cases_now` and `budgets_now` agree with what
the CLI prints, read with Python's sqlite3 alone (as a data analyst would); every table, view
and column is documented (docs/schema.md) and titled for Datasette (data/datasette.yaml)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.audit_support import Spec, seed
from tests.conftest import JUSTIFICATION, LATE_RETURN, ROOT, CliFn, acting_as, as_json, write_policy
from tests.test_import import HEADER, row, write

CASE_KEYS = ("case_id", "opened_at", "customer_id", "agent", "case_type", "action", "amount", "discretionary_amount",
             "status")  # fmt: skip


def read(db: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def history(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    """Cases in every state: approved, pending (live), expired, denied, co-signed, imported."""
    for amount in ("89.90", "150.00", "150.00", "600.00"):
        r = cli(*LATE_RETURN, "--amount", amount, "--justification", JUSTIFICATION)
        assert r.exit_code == 0, r.output
    assert cli("case", "cosign", "2", agent="bob").exit_code == 0
    assert cli("case", "deny", "4", "--note", "Too much for a late return", agent="carol").exit_code == 0
    r = cli("case", "new", "--customer", "C-2", "--type", "missed_flight", "--fact", "minutes_late=200",
            "--fact", "cause=traffic", "--action", "rebook", "--amount", "120.00", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    seed(db_path, [Spec(customer="C-3", status="pending_cosign", expires_in_hours=-1, amount=12_345),
                   Spec(customer="C-3", status="pending_supervisor", expires_in_hours=3, amount=5_000)])  # fmt: skip
    with sqlite3.connect(db_path) as conn:  # seed() writes cases only; a command records the customer too
        conn.execute("INSERT INTO customers (customer_id, first_seen) VALUES ('C-3', '2026-01-01T00:00:00.000000Z')")
    carol = acting_as(cli, "carol")
    r = carol("import", "cases", str(write(tmp_path, HEADER + row("OLD-1", customer="C-4", amount="70.00"))))
    assert r.exit_code == 0, r.output


def test_cases_now_agrees_with_case_list_for_every_case(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    history(cli, db_path, tmp_path)
    listed = as_json(cli("case", "list", "--limit", "0", "--json"))["rows"]
    viewed = read(db_path, "SELECT * FROM cases_now ORDER BY opened_at DESC, case_id DESC")
    assert len(viewed) == len(listed) == 8
    for mine, theirs in zip(viewed, listed, strict=True):
        assert {k: mine[k] for k in CASE_KEYS} == {k: theirs[k] for k in CASE_KEYS}
        assert bool(mine["imported"]) == theirs["imported"]
        assert mine["currency"] == "USD"
    statuses = {r["status"] for r in viewed}
    assert {"approved", "pending_cosign", "pending_supervisor", "denied", "expired"} <= statuses
    expired = next(r for r in viewed if r["status"] == "expired")
    assert (expired["recorded_status"], expired["amount"], expired["held"]) == ("pending_cosign", "123.45", "0.00")
    flight = next(r for r in viewed if r["case_type"] == "missed_flight")
    assert (flight["fact_minutes_late"], flight["fact_cause"], flight["fact_days_since_purchase"]) == (
        "200", "traffic", None)  # fmt: skip


def test_budgets_now_agrees_with_customer_show(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    history(cli, db_path, tmp_path)
    assert cli("customer", "segment", "C-2", "vip", "--note", "Gold card", agent="carol").exit_code == 0
    budgets = {r["customer_id"]: r for r in read(db_path, "SELECT * FROM budgets_now")}
    assert set(budgets) == {"C-1", "C-2", "C-3", "C-4"}
    for customer, mine in budgets.items():
        shown = as_json(cli("customer", "show", customer, "--json"))
        assert {k: mine[k] for k in ("limit", "spent", "held", "remaining")} == shown["budget"], customer
        assert mine["segment"] == shown["segment"]
        assert mine["discretion_cases"] == shown["discretionary_cases"]
    assert budgets["C-2"]["limit"] == "5000.00"


def test_the_views_follow_the_applied_policy(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    assert cli("case", "list").exit_code == 0
    folder = tmp_path / "next"
    folder.mkdir()
    text = (ROOT / "policies.toml").read_text(encoding="utf-8").replace('per_customer = "2000.00"',
                                                                        'per_customer = "2500.00"')
    text = text.replace("allow_identity_override = false", "allow_identity_override = true")
    new = write_policy(folder, text.replace('version = "2026.11"', 'version = "2026.12"'))
    r = cli("--policy", str(new), "policy", "apply", "--note", "larger budgets", agent="carol")
    assert r.exit_code == 0, r.output
    r = cli(*LATE_RETURN, "--amount", "10.00", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    [budget] = read(db_path, "SELECT * FROM budgets_now")
    assert (budget["limit"], budget["policy_version"]) == ("2500.00", "2026.12")


def test_the_views_are_written_for_a_database_from_before_schema_7(cli: CliFn, db_path: Path) -> None:
    assert cli(*LATE_RETURN, "--amount", "10.00", "--justification", JUSTIFICATION).exit_code == 0
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP VIEW cases_now")
        conn.execute("DROP VIEW budgets_now")
    assert cli("case", "list").exit_code == 0
    assert [r["amount"] for r in read(db_path, "SELECT amount FROM cases_now")] == ["10.00"]


# -- documented ---------------------------------------------------------------------------------

SHADOW = re.compile(r"case_texts_fts_(data|idx|docsize|config)$")


def schema_objects(db: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(db)
    try:
        names = [n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")
            if not SHADOW.match(n)]  # fmt: skip
        return {n: [c[1] for c in conn.execute(f'PRAGMA table_info("{n}")')] for n in names}
    finally:
        conn.close()


def test_every_table_view_and_column_is_documented(cli: CliFn, db_path: Path) -> None:
    assert cli("case", "list").exit_code == 0
    schema_md = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    datasette = (ROOT / "data" / "datasette.yaml").read_text(encoding="utf-8")
    for name, columns in schema_objects(db_path).items():
        assert f"`{name}`" in schema_md, f"docs/schema.md does not describe {name}"
        assert f"\n      {name}:\n" in datasette, f"data/datasette.yaml has no entry for {name}"
        undocumented = [c for c in columns if f"`{c}`" not in schema_md and not c.startswith("fact_")]
        assert undocumented == [], f"{name}: columns missing from docs/schema.md: {undocumented}"
