"""Limits a user meets from the outside (SPEC §9): sums never overflow.

- No amount exceeds MAX_MINOR_UNITS, small enough that the supported number of cases
  cannot overflow SQLite's 64-bit SUM: 9,300 imported cases at the largest allowed amount
  leave every report, `customer show` and the next `case new` working and exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from empower_cli.money import MAX_MINOR_UNITS, MAX_SUPPORTED_CASES, format_money
from empower_cli.timeutil import utcnow
from tests.conftest import JUSTIFICATION, CliFn, as_json, training_policy_text, write_policy
from tests.hardening_support import cli_env, run

IMPORT_COLUMNS = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
                  "discretionary_amount", "justification", "cosigner", "settled_at", "reaction", "retained",
                  "fact.days_since_purchase", "fact.has_receipt")  # fmt: skip


def ago(days: float) -> str:
    return (utcnow() - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def history_row(ext: str, **change: str) -> dict[str, str]:
    row = {"external_id": ext, "customer_id": "C-1", "agent": "bob", "opened_at": ago(3),
           "case_type": "late_return", "action": "refund", "amount": "80.00", "status": "approved",
           "discretionary_amount": "", "justification": JUSTIFICATION, "cosigner": "", "settled_at": "",
           "reaction": "satisfied", "retained": "yes", "fact.days_since_purchase": "20",
           "fact.has_receipt": "yes"}  # fmt: skip
    row.update(change)
    return row


def import_csv(cli: CliFn, tmp_path: Path, rows: list[dict[str, str]],
               name: str = "history.csv") -> tuple[dict[str, Any], list[dict[str, str]]]:  # fmt: skip
    """Import ROWS as the supervisor (importing is a privileged step); the summary and rejects."""
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=IMPORT_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    rejects = path.with_name(name + ".rejects.csv")
    if not rejects.exists():
        return as_json(r), []
    with rejects.open(encoding="utf-8", newline="") as f:
        return as_json(r), list(csv.DictReader(f))


def db_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


# -- 2. sums never overflow ------------------------------------------------------------------------


def test_the_largest_amount_times_the_supported_cases_fits_in_64_bits() -> None:
    assert MAX_MINOR_UNITS * MAX_SUPPORTED_CASES < 2**63
    assert MAX_MINOR_UNITS == 10**10
    assert format_money(MAX_MINOR_UNITS) == "100000000.00"


CAP = format_money(MAX_MINOR_UNITS)
ATTACK_ROWS = 9_300  # at the old cap (10**15) their sum, 9.3e18, was past 2**63 - 1


def test_thousands_of_cases_at_the_largest_amount_leave_every_sum_working_and_exact(
    cli: CliFn, tmp_path: Path, db_path: Path
) -> None:
    rows = [history_row(f"BIG-{k}", customer_id="C-9", amount=CAP, discretionary_amount=CAP, cosigner="dave",
                        opened_at=ago(1 + k % 300))
            for k in range(ATTACK_ROWS)]  # fmt: skip
    summary, rejected = import_csv(cli, tmp_path, rows)
    assert (summary["imported"], rejected) == (ATTACK_ROWS, [])
    stored = [a for (a,) in db_rows(db_path, "SELECT discretionary_amount FROM cases")]
    total = sum(stored)  # Python's int: no overflow
    assert total == ATTACK_ROWS * MAX_MINOR_UNITS
    exact = format_money(total)

    reports = {}
    for name in ("summary", "agents", "rules", "customers"):
        r = cli("audit", name, "--json", agent="carol")
        assert r.exit_code == 0, r.output
        reports[name] = as_json(r)
    assert reports["summary"]["discretion_spent"] == exact
    weekly = sum(int(w["spent"].replace(".", "")) for w in reports["summary"]["weekly_spend"])
    assert weekly == total
    assert [(a["agent"], a["spent"]) for a in reports["agents"]] == [("bob", exact)]
    assert {r["rule_id"]: r["spent"] for r in reports["rules"]}["return-window"] == exact
    assert [(c["customer_id"], c["spent"]) for c in reports["customers"]] == [("C-9", exact)]
    r = cli("audit", "summary", agent="carol")  # the table, with its weekly sparkline
    assert r.exit_code == 0, r.output

    shown = cli("customer", "show", "C-9", "--json")
    assert shown.exit_code == 0, shown.output
    budget = as_json(shown)["budget"]
    assert budget["spent"] == exact
    assert budget["remaining"] == format_money(200000 - total)
    r = cli("case", "new", "--customer", "C-9", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "40.00",
            "--justification", JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert as_json(r)["status"] == "pending_supervisor"  # far beyond the customer's budget
    assert as_json(r)["budget"]["spent"] == exact


def test_one_cent_above_the_largest_amount_is_refused_as_a_flag_and_as_an_import_row(
    cli: CliFn, tmp_path: Path, db_path: Path
) -> None:
    above = format_money(MAX_MINOR_UNITS + 1)
    r = cli("case", "new", "--customer", "C-1", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", above,
            "--justification", JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: amount: at most {CAP}, got {above}\n"
    rows = [history_row("A-1", amount=above), history_row("A-2", amount=CAP, discretionary_amount=above),
            history_row("A-3", amount=CAP, discretionary_amount=CAP, cosigner="dave")]  # fmt: skip
    summary, rejected = import_csv(cli, tmp_path, rows)
    assert (summary["imported"], summary["rejected"]) == (1, 2)
    assert [(x["external_id"], x["reason"]) for x in rejected] == [
        ("A-1", f"amount: at most {CAP}, got {above}"),
        ("A-2", f"discretionary_amount: at most {CAP}, got {above}"),
    ]
    assert db_rows(db_path, "SELECT external_id, amount FROM cases") == [("A-3", MAX_MINOR_UNITS)]


@pytest.mark.parametrize(
    ("currency", "key", "value", "cap"),
    [
        ("USD", 'per_customer = "2000.00"', 'per_customer = "100000000.01"', "100000000.00"),
        ("USD", 'max_discretion = "200.00"', 'max_discretion = "100000001"', "100000000.00"),
        ("USD", 'above = "100.00"', 'above = "999999999.99"', "100000000.00"),
        ("JPY", 'per_customer = "2000.00"', 'per_customer = "10000000001"', "10000000000"),
        ("KWD", 'per_customer = "2000.00"', 'per_customer = "10000000.001"', "10000000.000"),
    ],
)
def test_a_policy_limit_above_the_largest_amount_is_a_located_problem(
    tmp_path: Path, currency: str, key: str, value: str, cap: str
) -> None:
    text = training_policy_text().replace('currency = "USD"', f'currency = "{currency}"').replace(key, value, 1)
    if currency == "JPY":  # no minor digits: every other amount of the policy in whole yen
        text = text.replace('.00"', '"')
    if currency == "KWD":
        text = text.replace('.00"', '.000"')
    policy = write_policy(tmp_path, text)
    code, _, err = run(["policy", "check", str(policy)], cli_env(policy, tmp_path / "e.db"))
    assert code == 3, err
    assert f"at most {cap}, got " in err, err


def test_a_money_fact_above_the_largest_amount_is_refused(tmp_path: Path) -> None:
    extra = """
[case_types.big_ticket]
title = "Expensive item"
actions = ["refund"]
facts = [{ name = "price", type = "money", ask = "Price" }]
rules = [{ id = "price-cap", text = "Up to 500.", fact = "price", max = "500.00", bend_max = "900.00" }]
"""
    policy = write_policy(tmp_path, training_policy_text(extra))
    env = cli_env(policy, tmp_path / "data" / "e.db")
    args = ["case", "new", "--customer", "C-1", "--type", "big_ticket", "--action", "refund", "--amount", "1",
            "--justification", JUSTIFICATION, "--json", "--fact"]  # fmt: skip
    code, _, err = run([*args, f"price={format_money(MAX_MINOR_UNITS + 1)}"], env)
    assert (code, err) == (2, f"error: fact price: at most {CAP}, got 100000000.01\n")
    code, _, err = run([*args, f"price={CAP}"], env)
    assert code == 0, err
