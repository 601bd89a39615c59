"""Limits a user meets from the outside (SPEC §9): sums never overflow, real text fits,
settlements are in the past.

- No amount exceeds MAX_MINOR_UNITS, small enough that the supported number of cases
  cannot overflow SQLite's 64-bit SUM: 9,300 imported cases at the largest allowed amount
  leave every report, `customer show` and the next `case new` working and exact.
- Justifications, notes and reasons of 100,000 characters are stored and shown whole.
- An imported settlement after the import's now is a rejected row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.money import MAX_MINOR_UNITS, MAX_SUPPORTED_CASES, format_money
from empower_cli.core.timeutil import utcnow
from tests.conftest import JUSTIFICATION, CliFn, as_json, report_rows, training_policy_text, write_policy
from tests.errors_support import said
from tests.hardening_support import case_new_args, cli_env, run

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


def import_csv(cli: CliFn, tmp_path: Path, rows: list[dict[str, str]], name: str = "history.csv",
               columns: Sequence[str] = IMPORT_COLUMNS) -> tuple[dict[str, Any], list[dict[str, str]]]:  # fmt: skip
    """Import ROWS as the supervisor (importing is a privileged step); the summary and rejects."""
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
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
        reports[name] = report_rows(name, as_json(r))
    assert reports["summary"]["discretion_spent"] == exact
    weekly = sum(int(w["spent"].replace(".", "")) for w in reports["summary"]["weekly_spend"])
    assert weekly == total
    assert [(a["agent"], a["spent"]) for a in reports["agents"]] == [("bob", exact)]
    assert {r["id"]: r["spent"] for r in reports["rules"]}["return-window"] == exact
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
    assert said(r) == f"error: amount: at most {CAP}, got {above}\n"
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
    assert (code, json.loads(err)["error"]["message"]) == (2, f"fact price: at most {CAP}, got 100000000.01")
    code, _, err = run([*args, f"price={CAP}"], env)
    assert code == 0, err


# -- 3. real text fits ---------------------------------------------------------------------------

NARRATIVE_UNIT = (
    'Customer wrote: "the kettle (café model, 1.7 l) leaked twice" — naïve Zürich 東京 😀 '
    "[red]not markup[/] 50% off? \tsee https://example.com/" + "a" * 90 + "\n"
)


def narrative(chars: int = 100_000, tag: str = "") -> str:
    """A long complaint narrative: mixed scripts, emoji, markup, a tab, an unbroken 110-char
    URL, and newlines; CHARS characters in all."""
    text = tag + NARRATIVE_UNIT * (chars // len(NARRATIVE_UNIT) + 1)
    return text[: chars - 1] + "."


def test_the_narratives_fit_one_argv_string() -> None:
    text = narrative()
    assert len(text) == 100_000
    assert len(text.encode("utf-8")) < 128 * 1024 - 1  # Linux's MAX_ARG_STRLEN, with the NUL


def shows_whole(stdout: str, text: str) -> bool:
    return text in stdout


def test_a_100000_character_justification_note_and_reason_go_in_by_argv_and_come_back_whole(
    tmp_path: Path,
) -> None:
    policy = write_policy(tmp_path)
    db = tmp_path / "data" / "empower.db"
    alice, bob = cli_env(policy, db, agent="alice"), cli_env(policy, db, agent="bob")
    why, note, reason = narrative(tag="J "), narrative(tag="N "), narrative(tag="R ")
    code, out, err = run(case_new_args("C-1", "150.00", justification=why), alice)
    assert code == 0, err
    cosigned = json.loads(out)["case_id"]
    code, _, err = run(["case", "cosign", str(cosigned), "--note", note, "--json"], bob)
    assert code == 0, err
    code, out, err = run(case_new_args("C-2", "150.00"), alice)
    assert code == 0, err
    objected = json.loads(out)["case_id"]
    code, _, err = run(["case", "object", str(objected), "--reason", reason, "--json"], bob)
    assert code == 0, err

    # the raw rows
    assert db_rows(db, "SELECT justification FROM cases WHERE id = ?", cosigned) == [(why,)]
    payloads = {k: json.loads(p) for k, p in db_rows(db, "SELECT kind, payload FROM events WHERE kind != 'opened'")}
    assert payloads["cosigned"]["note"] == note
    assert payloads["objected"]["reason"] == reason
    # case show --json
    code, out, err = run(["case", "show", str(cosigned), "--json"], alice)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["justification"] == why
    assert [e["payload"].get("note") for e in shown["events"]] == [None, note]
    code, out, err = run(["case", "show", str(objected), "--json"], alice)
    assert code == 0, err
    assert [e["payload"].get("reason") for e in json.loads(out)["events"]] == [None, reason]
    # case show as a table: every character, nothing cut short with "…"
    code, out, err = run(["case", "show", str(cosigned)], alice)
    assert code == 0, err
    assert shows_whole(out, why)
    assert shows_whole(out, note)
    assert "100,000 characters, in full below" in out
    code, out, err = run(["case", "show", str(objected)], alice)
    assert code == 0, err
    assert shows_whole(out, reason)


def test_a_justification_of_a_million_characters_is_the_most_accepted(cli: CliFn, db_path: Path) -> None:
    base = ("case", "new", "--customer", "C-1", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "40.00", "--json")  # fmt: skip
    most = narrative(1_000_000)
    r = cli(*base, "--justification", most + "!")
    assert r.exit_code == 2, r.output
    assert said(r) == "error: justification: is 1000001 characters long; at most 1000000 are allowed\n"
    r = cli(*base, "--justification", most)
    assert r.exit_code == 0, r.output
    assert db_rows(db_path, "SELECT justification FROM cases") == [(most,)]


def test_a_100000_character_justification_imports_whole_from_csv_and_jsonl(
    cli: CliFn, tmp_path: Path, db_path: Path
) -> None:
    from_csv, from_jsonl = narrative(tag="CSV "), narrative(tag="JSONL ")
    summary, rejected = import_csv(cli, tmp_path, [history_row("L-1", justification=from_csv)])
    assert (summary["imported"], rejected) == (1, [])
    record: dict[str, Any] = {k: v for k, v in history_row("L-2", justification=from_jsonl).items()
                              if v and "." not in k}  # fmt: skip
    record["facts"] = {"days_since_purchase": 20, "has_receipt": True}
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 1
    stored = dict(db_rows(db_path, "SELECT external_id, justification FROM cases"))
    assert stored == {"L-1": from_csv, "L-2": from_jsonl}
    for case_id, text in ((1, from_csv), (2, from_jsonl)):
        assert as_json(cli("case", "show", str(case_id), "--json"))["justification"] == text
        table = cli("case", "show", str(case_id))
        assert table.exit_code == 0, table.output
        assert shows_whole(table.stdout, text)


def test_a_short_justification_stays_in_the_panel(cli: CliFn) -> None:
    r = cli("case", "new", "--customer", "C-1", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "40.00",
            "--justification", JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = cli("case", "show", "1").stdout
    assert f"│ justification  {JUSTIFICATION}" in shown
    assert "in full below" not in shown


def test_a_policy_may_not_demand_more_than_10000_characters_of_justification(tmp_path: Path) -> None:
    for chars, code in ((10_000, 0), (10_001, 3)):
        text = training_policy_text().replace("min_justification_chars = 20", f"min_justification_chars = {chars}")
        policy = write_policy(tmp_path, text)
        got, _, err = run(["policy", "check", str(policy)], cli_env(policy, tmp_path / "e.db"))
        assert got == code, err
    assert "min_justification_chars: must be at most 10000, got 10001" in err


# -- 4. settlements are in the past -----------------------------------------------------------------


def test_an_imported_settlement_after_now_or_before_opening_is_a_rejected_row(
    cli: CliFn, tmp_path: Path, db_path: Path
) -> None:
    tomorrow = (utcnow() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    rows = [
        history_row("S-1", customer_id="C-7", opened_at="2019-03-01T10:00:00", settled_at="9999-12-31"),
        history_row("S-2", customer_id="C-7", opened_at=ago(2), settled_at=tomorrow),
        history_row("S-3", customer_id="C-7", opened_at="2019-03-01T10:00:00", settled_at="2019-02-01"),
        history_row("S-4", customer_id="C-7", opened_at=ago(400), settled_at=ago(399)),
        history_row("S-5", customer_id="C-7", opened_at=ago(5), settled_at=ago(4)),
    ]
    summary, rejected = import_csv(cli, tmp_path, rows)
    assert (summary["imported"], summary["rejected"]) == (2, 3)
    reasons = {x["external_id"]: x["reason"] for x in rejected}
    assert reasons["S-1"] == "settled_at: 9999-12-31T00:00:00.000000Z is in the future"
    assert reasons["S-2"].startswith("settled_at: ")
    assert reasons["S-2"].endswith(" is in the future")
    assert reasons["S-3"] == "settled_at: is before opened_at"
    assert sorted(e for (e,) in db_rows(db_path, "SELECT external_id FROM cases")) == ["S-4", "S-5"]
    # only S-5 was settled inside the rolling window: the 2019 case does not count for ever
    budget = as_json(cli("customer", "show", "C-7", "--json"))["budget"]
    assert budget["spent"] == "80.00"
