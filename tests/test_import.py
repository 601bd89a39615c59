"""`empower import cases`: round trips, idempotency, conflicts, rejects with line numbers,
messy files, dry runs, four-eyes and budgets at historical times — through the real CLI
on a real database file, read back afterwards."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from empower_cli.core.timeutil import iso, utcnow
from empower_cli.store.chain import GENESIS, event_hash
from tests.conftest import BACKENDS, CliFn, acting_as, as_json, backend_db, open_db


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The import tests run on SQLite and on PostgreSQL (COPY)."""
    return backend_db(request, tmp_path)


def state(db: Path | str) -> Any:
    """What a database holds, to show that a command wrote nothing: its files, byte for byte
    (None when there are none), or on PostgreSQL its tables and every row."""
    if isinstance(db, Path):
        return {p.name: p.read_bytes() for p in db.parent.iterdir()} if db.parent.exists() else None
    import psycopg

    with psycopg.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return tables, (dump(db) if tables else None)

HEADER = (
    "external_id,customer_id,agent,opened_at,case_type,action,amount,status,justification,"
    "cosigner,supervisor,reaction,retained,fact.days_since_purchase,fact.has_receipt\n"
)
WHY = "Loyal customer, item unused, receipt at hand"


@pytest.fixture
def cli(cli: CliFn) -> CliFn:
    """Importing is a supervisor's step (can_approve or can_import): these tests act as carol."""
    return acting_as(cli, "carol")


def ago(days: float) -> str:
    return (utcnow() - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")


def row(ext: str, *, customer: str = "C-1", agent: str = "bob", opened: str | None = None,
        amount: str = "80.00", status: str = "approved", justification: str = WHY, cosigner: str = "",
        supervisor: str = "", reaction: str = "satisfied", retained: str = "yes", days: str = "20",
        receipt: str = "yes") -> str:  # fmt: skip
    cells = [ext, customer, agent, opened or ago(3), "late_return", "refund", amount, status,
             justification, cosigner, supervisor, reaction, retained, days, receipt]  # fmt: skip
    out = []
    for cell in cells:
        needs_quotes = any(c in cell for c in ',"\n\r')
        out.append('"' + cell.replace('"', '""') + '"' if needs_quotes else cell)
    return ",".join(out) + "\n"


def write(tmp_path: Path, text: str | bytes, name: str = "history.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def cases(db: Path | str) -> list[dict[str, Any]]:
    with open_db(db) as store:
        return list(store.cases_by_id())


def rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def chain_ok(db: Path | str) -> int:
    """Recompute the whole hash chain; return the number of events of cases (the database's
    first policy is an event too, of no case)."""
    with open_db(db) as store:
        stored = list(store.table_rows("events"))
    prev, count = GENESIS, 0
    for seq, at, case_id, kind, actor, os_user, payload, prev_hash, digest in stored:
        event = {"seq": seq, "at": at, "case_id": case_id, "kind": kind, "actor": actor,
                 "os_user": os_user, "payload": json.loads(payload)}  # fmt: skip
        assert prev_hash == prev, f"event {seq}: prev_hash does not match"
        assert event_hash(prev, event) == digest, f"event {seq}: hash does not match"
        prev, count = digest, count + (case_id is not None)
    return count


def dump(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that holds history or state, on either backend."""
    with open_db(db) as store:
        return {table: list(store.table_rows(table)) for table in store.COPIED_TABLES}


def test_every_csv_field_round_trips(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    text = (
        "external_id,customer_id,agent,opened_at,case_type,action,amount,status,justification,"
        "cosigner,supervisor,reaction,retained,discretionary_amount,segment,settled_at,"
        "fact.days_since_purchase,fact.has_receipt\n"
        'OLD-1,C-7,bob,2026-01-05T09:30:00+02:00,late_return,refund,150.00,approved,"Long, loyal ""VIP""\n'
        'customer",dave,carol,dissatisfied,no,120.50,vip,2026-01-06T10:00:00Z,25,yes\n'
    )
    r = cli("import", "cases", str(write(tmp_path, text)), "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 1
    [case] = cases(db_path)
    assert case["external_id"] == "OLD-1"
    assert case["imported"] == 1
    assert case["customer_id"] == "C-7"
    assert case["agent"] == "bob"
    assert case["opened_at"] == "2026-01-05T07:30:00.000000Z"
    assert case["settled_at"] == "2026-01-06T10:00:00.000000Z"
    assert (case["case_type"], case["action"]) == ("late_return", "refund")
    assert case["amount"] == 15000
    assert case["discretionary_amount"] == 12050
    assert case["status"] == "approved"
    assert case["justification"] == 'Long, loyal "VIP"\ncustomer'
    assert (case["cosigner"], case["supervisor"]) == ("dave", "carol")
    assert (case["reaction"], case["retained"]) == ("dissatisfied", 0)
    assert case["segment"] == "vip"
    assert json.loads(case["facts"]) == {"days_since_purchase": "25", "has_receipt": "yes"}
    # Today's policy: 25 days is a bent return window and 150.00 > the 100.00 co-sign threshold.
    assert case["today_status"] == "pending_cosign"
    assert case["today_discretionary"] == 15000
    assert len(case["content_hash"]) == 64
    shown = as_json(cli("case", "show", str(case["id"]), "--json"))
    assert shown["imported"] is True
    assert shown["status"] == "approved"


def test_every_jsonl_field_round_trips_with_exact_numbers(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    record = {
        "external_id": "J-1", "customer_id": "C-8", "agent": "bob", "opened_at": "2026-02-01",
        "case_type": "late_return", "action": "refund", "amount": 89.9, "status": "denied",
        "justification": WHY, "cosigner": None, "supervisor": "carol", "reaction": "neutral",
        "retained": True, "segment": "vip", "facts": {"days_since_purchase": 12, "has_receipt": True},
    }  # fmt: skip
    path = write(tmp_path, json.dumps(record) + "\n", name="history.jsonl")
    r = cli("import", "cases", str(path), "--json")
    assert r.exit_code == 0, r.output
    [case] = cases(db_path)
    assert case["amount"] == 8990
    assert case["status"] == "denied"
    assert case["opened_at"] == "2026-02-01T00:00:00.000000Z"
    assert case["settled_at"] == case["opened_at"]
    assert case["retained"] == 1
    assert case["supervisor"] == "carol"
    assert case["cosigner"] is None
    assert json.loads(case["facts"]) == {"days_since_purchase": "12", "has_receipt": "yes"}
    # Absent discretionary_amount: what today's policy computes (in policy: 12 days, receipt).
    assert case["discretionary_amount"] == 0
    assert case["today_status"] == "approved"


def test_the_same_record_as_csv_or_jsonl_has_the_same_content_hash(cli: CliFn, tmp_path: Path,
                                                                  db_path: Path) -> None:  # fmt: skip
    opened = "2026-03-01T12:00:00Z"
    write(tmp_path, HEADER + row("X-1", opened=opened, retained="", reaction=""))
    record = {"external_id": "X-1", "customer_id": "C-1", "agent": "bob", "opened_at": opened,
              "case_type": "late_return", "action": "refund", "amount": "80.00", "justification": WHY,
              "facts": {"days_since_purchase": "20", "has_receipt": "yes"}}  # fmt: skip
    write(tmp_path, json.dumps(record) + "\n", name="same.jsonl")
    assert cli("import", "cases", str(tmp_path / "history.csv")).exit_code == 0
    r = cli("import", "cases", str(tmp_path / "same.jsonl"), "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["skipped"] == 1


def test_importing_twice_changes_nothing(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    path = write(tmp_path, HEADER + "".join(row(f"R-{i}", customer=f"C-{i % 3}") for i in range(25)))
    first = cli("import", "cases", str(path), "--json")
    assert first.exit_code == 0, first.output
    assert as_json(first)["imported"] == 25
    before = dump(db_path)
    second = cli("import", "cases", str(path), "--json")
    assert second.exit_code == 0, second.output
    summary = as_json(second)
    assert (summary["read"], summary["imported"], summary["skipped"], summary["rejected"]) == (25, 0, 25, 0)
    assert set(summary) >= {"read", "imported", "skipped", "rejected", "elapsed", "rows_per_second"}
    assert dump(db_path) == before
    assert chain_ok(db_path) == 25


def test_same_external_id_with_other_content_is_a_conflict_never_overwritten(cli: CliFn, tmp_path: Path,
                                                                             db_path: Path) -> None:  # fmt: skip
    opened = ago(5)
    assert cli("import", "cases", str(write(tmp_path, HEADER + row("K-1", opened=opened)))).exit_code == 0
    changed = write(tmp_path, HEADER + row("K-1", opened=opened, amount="99.00") + row("K-2"), name="again.csv")
    r = cli("import", "cases", str(changed), "--json")
    assert r.exit_code == 0, r.output
    assert (as_json(r)["imported"], as_json(r)["rejected"]) == (1, 1)
    [bad] = rejects(tmp_path / "again.csv.rejects.csv")
    assert (bad["line"], bad["external_id"]) == ("2", "K-1")
    assert "conflict" in bad["reason"]
    assert [c["amount"] for c in cases(db_path) if c["external_id"] == "K-1"] == [8000]


def test_a_duplicate_inside_one_file_is_skipped_or_a_conflict(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    opened = ago(2)
    text = HEADER + row("D-1", opened=opened) + row("D-1", opened=opened) + row("D-1", opened=opened, amount="1.00")
    r = cli("import", "cases", str(write(tmp_path, text)), "--json")
    summary = as_json(r)
    assert (summary["imported"], summary["skipped"], summary["rejected"]) == (1, 1, 1)
    assert len(cases(db_path)) == 1


def test_rejects_carry_the_line_where_each_record_starts(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    text = (
        HEADER                                                     # line 1
        + row("A-1")                                               # line 2
        + row("A-2", justification="Three\nline\njustification")   # lines 3-5
        + "\n"                                                     # line 6, blank
        + row("A-3", amount="12,50")                               # line 7: bad amount
        + "   \r\n"                                                # line 8, blank
        + row("A-4", days="soon")                                  # line 9: bad fact
        + row("A-5", agent="")                                     # line 10: no agent
        + row("A-6")                                               # line 11
        + row("A-7", customer="")                                  # line 12: no customer
    )  # fmt: skip
    r = cli("import", "cases", str(write(tmp_path, text)), "--json")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["read"], summary["imported"], summary["rejected"]) == (7, 3, 4)
    bad = rejects(tmp_path / "history.csv.rejects.csv")
    assert [(b["line"], b["external_id"]) for b in bad] == [("7", "A-3"), ("9", "A-4"), ("10", "A-5"), ("12", "A-7")]
    assert bad[0]["reason"].startswith("amount:")
    assert bad[1]["reason"].startswith("fact days_since_purchase:")
    assert bad[2]["reason"].startswith("agent:")
    assert bad[3]["reason"] == "customer_id: is required"
    assert bad[0]["record"].startswith("A-3,C-1,bob,")
    assert {c["external_id"] for c in cases(db_path)} == {"A-1", "A-2", "A-6"}


def test_a_byte_order_mark_and_crlf_line_ends_are_read(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    crlf = [line[:-1] + "\r\n" for line in (HEADER, row("B-1"), row("B-2", justification="two\r\nlines"))]
    text = "".join(crlf)
    path = write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    r = cli("import", "cases", str(path), "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["imported"] == 2
    assert cases(db_path)[1]["justification"] == "two\nlines"  # a CRLF inside a quoted cell reads as LF
    assert [c["external_id"] for c in cases(db_path)] == ["B-1", "B-2"]


def test_a_nul_byte_or_undecodable_bytes_reject_only_that_row(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    body = (
        HEADER.encode() + row("N-1").encode()
        + row("N-2", justification="has a NUL \x00 inside it, among other words").encode()
        + row("N-3", justification="Latin-1 caf\u00e9 bytes here, long enough").encode().replace(b"\xc3\xa9", b"\xe9")
        + row("N-4", justification="caf\u00e9 in proper UTF-8, long enough").encode()
    )  # fmt: skip
    r = cli("import", "cases", str(write(tmp_path, body)), "--json")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["rejected"]) == (2, 2)
    bad = rejects(tmp_path / "history.csv.rejects.csv")
    assert [b["line"] for b in bad] == ["3", "4"]
    assert "NUL" in bad[0]["reason"]
    assert "UTF-8" in bad[1]["reason"]
    assert "\\xe9" in bad[1]["record"]
    assert [c["external_id"] for c in cases(db_path)] == ["N-1", "N-4"]
    assert cases(db_path)[1]["justification"] == "caf\u00e9 in proper UTF-8, long enough"


def test_very_long_fields_are_read_and_overlong_ones_explained(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    long_ok = "x" * 900_000 + "\n" + "y" * 99_999  # 1,000,000 characters: the most a text may hold
    too_long = "z" * 1_000_001
    text = HEADER + row("L-1", justification=long_ok) + row("L-2", justification=too_long) + row("L-3")
    r = cli("import", "cases", str(write(tmp_path, text)), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    bad = rejects(tmp_path / "history.csv.rejects.csv")
    assert [(b["line"], b["external_id"]) for b in bad] == [("4", "L-2")]
    assert bad[0]["reason"] == "justification: is 1000001 characters long; at most 1000000 are allowed"
    assert [c["justification"] for c in cases(db_path) if c["external_id"] == "L-1"] == [long_ok]
    assert {c["external_id"] for c in cases(db_path)} == {"L-1", "L-3"}


def test_missing_required_columns_stop_before_any_row(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    text = "external_id,customer_id,opened_at,case_type,action,fact.days_since_purchase\nZ-1,C-1,2026-01-01,x,y,1\n"
    path = write(tmp_path, text)
    r = cli("import", "cases", str(path))
    assert r.exit_code == 2, r.output
    assert "missing required columns: agent, amount" in r.stderr
    assert not (tmp_path / "history.csv.rejects.csv").exists()
    assert state(db_path) in (None, ([], None)) or cases(db_path) == []


def test_an_unknown_column_is_refused_before_any_row(cli: CliFn, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.replace("justification", "justifcation") + row("U-1"))
    r = cli("import", "cases", str(path))
    assert r.exit_code == 2, r.output
    assert "'justifcation'" in r.stderr


def test_a_dry_run_writes_nothing(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    opened = ago(3)
    path = write(tmp_path, HEADER + row("Y-1", opened=opened) + row("Y-2", amount="bad") + row("Y-1", opened=opened))
    r = cli("import", "cases", str(path), "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["skipped"], summary["rejected"], summary["dry_run"]) == (1, 1, 1, True)
    assert state(db_path) in (None, ([], None))  # no file; no table
    assert not (tmp_path / "history.csv.rejects.csv").exists()
    # On an existing database: not a byte changes, and recorded rows count as skipped.
    one = write(tmp_path, HEADER + row("Y-1", opened=opened), name="one.csv")
    assert cli("import", "cases", str(one)).exit_code == 0
    before = state(db_path)
    r = cli("import", "cases", str(path), "--dry-run", "--json")
    assert (as_json(r)["imported"], as_json(r)["skipped"]) == (0, 2)
    assert state(db_path) == before


def test_a_dry_run_writes_rejects_only_where_asked(cli: CliFn, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("W-1", amount="-3"))
    target = tmp_path / "out" / "bad.csv"
    target.parent.mkdir()
    r = cli("import", "cases", str(path), "--dry-run", "--rejects", str(target))
    assert r.exit_code == 0, r.output
    assert [b["external_id"] for b in rejects(target)] == ["W-1"]


@pytest.mark.parametrize("column", ["cosigner", "supervisor"])
def test_four_eyes_a_row_signed_by_its_own_agent_is_rejected(cli: CliFn, tmp_path: Path, db_path: Path,
                                                            column: str) -> None:  # fmt: skip
    path = write(tmp_path, HEADER + row("F-1", **{column: "bob"}) + row("F-2", **{column: "dave"}))
    r = cli("import", "cases", str(path), "--json")
    assert (as_json(r)["imported"], as_json(r)["rejected"]) == (1, 1)
    [bad] = rejects(tmp_path / "history.csv.rejects.csv")
    assert bad["external_id"] == "F-1"
    assert "four-eyes" in bad["reason"]
    assert [c["external_id"] for c in cases(db_path)] == ["F-2"]


def test_approved_discretion_counts_in_the_budget_window_at_its_historical_time(cli: CliFn, tmp_path: Path) -> None:
    text = (
        HEADER
        + row("H-1", customer="C-9", opened=ago(400), amount="150.00", cosigner="dave")
        + row("H-2", customer="C-9", opened=ago(10), amount="90.00")
    )
    assert cli("import", "cases", str(write(tmp_path, text))).exit_code == 0
    budget = as_json(cli("customer", "show", "C-9", "--json"))["budget"]
    assert budget == {"limit": "2000.00", "spent": "90.00", "held": "0.00", "remaining": "1910.00"}


def test_a_pending_import_past_hold_hours_is_expired(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    text = (
        HEADER
        + row("P-1", customer="C-5", opened=ago(2), amount="150.00", status="pending_cosign")
        + row("P-2", customer="C-5", opened=ago(0.25), amount="120.00", status="pending_cosign")
    )
    assert cli("import", "cases", str(write(tmp_path, text))).exit_code == 0
    listed = as_json(cli("case", "list", "--customer", "C-5", "--json"))["rows"]
    statuses = {c["case_id"]: c["status"] for c in (listed if isinstance(listed, list) else listed["cases"])}
    old, recent = (c["id"] for c in cases(db_path))
    assert statuses == {old: "expired", recent: "pending_cosign"}
    # Only the live hold counts against the budget.
    assert as_json(cli("customer", "show", "C-5", "--json"))["budget"]["held"] == "120.00"


def test_rows_from_the_future_or_with_an_unknown_status_are_rejected(cli: CliFn, tmp_path: Path) -> None:
    future = iso(utcnow() + dt.timedelta(days=3))
    path = write(tmp_path, HEADER + row("T-1", opened=future) + row("T-2", status="maybe"))
    r = cli("import", "cases", str(path), "--json")
    assert as_json(r)["rejected"] == 2
    reasons = [b["reason"] for b in rejects(tmp_path / "history.csv.rejects.csv")]
    assert reasons[0].startswith("opened_at:")
    assert reasons[1].startswith("status:")


def test_jsonl_lines_that_are_not_objects_are_rejected_with_their_line(cli: CliFn, tmp_path: Path) -> None:
    good = {"external_id": "G-1", "customer_id": "C-1", "agent": "bob", "opened_at": ago(1),
            "case_type": "late_return", "action": "refund", "amount": "10.00",
            "facts": {"days_since_purchase": "3", "has_receipt": "yes"}}  # fmt: skip
    exponent = json.dumps({**good, "external_id": "G-2"}).replace('"10.00"', "1e3")
    text = json.dumps(good) + "\n\n[1, 2]\n{broken\n" + exponent + "\n"
    r = cli("import", "cases", str(write(tmp_path, text, name="h.jsonl")), "--json")
    assert r.exit_code == 0, r.output
    assert (as_json(r)["imported"], as_json(r)["rejected"]) == (1, 3)
    bad = rejects(tmp_path / "h.jsonl.rejects.csv")
    assert [b["line"] for b in bad] == ["3", "4", "5"]
    assert bad[2]["reason"].startswith("amount:")  # 1e3 is not plain decimal text


def test_the_import_event_alone_holds_the_row(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    assert cli("import", "cases", str(write(tmp_path, HEADER + row("E-1")))).exit_code == 0
    with open_db(db_path) as store:
        [event] = [e for e in store.events() if e["case_id"] is not None]
    kind, payload = event["kind"], event["payload"]
    content = json.loads(payload)["content"]
    assert kind == "imported"
    assert content["external_id"] == "E-1"
    assert content["justification"] == WHY
    assert content["facts"] == {"days_since_purchase": "20", "has_receipt": "yes"}
    assert chain_ok(db_path) == 1


def test_an_unknown_format_or_missing_file_is_refused(cli: CliFn, tmp_path: Path) -> None:
    r = cli("import", "cases", str(write(tmp_path, "x", name="h.txt")))
    assert r.exit_code == 2, r.output
    assert "--format" in r.stderr
    r = cli("import", "cases", str(tmp_path / "absent.csv"))
    assert r.exit_code == 5, r.output


@pytest.mark.parametrize("json_output", [False, True])
def test_a_progress_bar_shows_on_a_terminal_but_never_in_json(tmp_path: Path, policy_path: Path, db_path: Path,
                                                              json_output: bool) -> None:  # fmt: skip
    import os
    import sys

    import pexpect

    path = write(tmp_path, HEADER + "".join(row(f"Q-{i}") for i in range(3000)))
    env = {**os.environ, "EMPOWER_POLICY": str(policy_path), "EMPOWER_DB": str(db_path), "EMPOWER_AGENT": "carol"}
    args = ["-m", "empower_cli", "import", "cases", str(path), *(["--json"] if json_output else [])]
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=60, dimensions=(24, 120))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = child.before
    if json_output:
        assert "importing" not in screen
        assert json.loads(screen)["imported"] == 3000
    else:
        assert "importing" in screen
        assert "read 3000, imported 3000" in screen


def test_worker_processes_record_exactly_what_one_process_records(tmp_path: Path, policy: Any) -> None:
    from empower_cli.imports.run import Importer, WriteInto
    from empower_cli.services.identity import Identity
    from empower_cli.store.sqlite import Store

    body = "".join(row(f"M-{i}", customer=f"C-{i % 7}", amount=f"{i % 300}.{i % 100:02d}") for i in range(2500))
    path = write(tmp_path, HEADER + body + row("M-bad", amount="x") + row("M-7", amount="1.00"))
    now = utcnow()
    results = []
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.db"
        with Store(db) as store, Importer(
            path, "csv", policy=policy, identity=Identity("carol", "carol", policy.role_of("carol")), now=now,
            target=WriteInto(store), rejects=tmp_path / f"w{workers}.rejects.csv", workers=workers, chunk_rows=700,
        ) as importer:  # fmt: skip
            summary = importer.run()
        assert summary.rejects_file == str(tmp_path / f"w{workers}.rejects.csv")
        results.append(((summary.read, summary.imported, summary.rejected), dump(db),
                        (tmp_path / f"w{workers}.rejects.csv").read_text()))  # fmt: skip
    assert results[0][0] == (2502, 2500, 2)
    assert results[0] == results[1]


def test_an_importer_closes_what_it_opened_when_its_run_fails(tmp_path: Path, policy: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A dry run's read-only database and the rejects file are the importer's: its `with`
    block closes them, however the run ends (a closed database leaves no -wal or -shm)."""
    from empower_cli.imports.run import DryRun, Importer
    from empower_cli.services.identity import Identity
    from empower_cli.store import bulk
    from empower_cli.store.sqlite import Store

    db = tmp_path / "db" / "empower.db"
    Store(db).close()
    before = sorted(p.name for p in db.parent.iterdir())
    path = write(tmp_path, HEADER + row("E-1") + row("E-2", amount="bad"))

    def broken(*a: object, **kw: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bulk.SeenIds, "lookup", broken)
    importer = Importer(path, "csv", policy=policy, identity=Identity("carol", "carol", policy.role_of("carol")),
                        now=utcnow(), target=DryRun(db), rejects=tmp_path / "bad.csv")  # fmt: skip
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        importer.run()
    with pytest.raises(RuntimeError, match="a bug"), importer:
        importer.run()
    assert sorted(p.name for p in db.parent.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["history.csv", "policies.toml"]


def test_a_customer_is_first_seen_at_their_earliest_case_and_keeps_a_segment(cli: CliFn, tmp_path: Path,
                                                                             db_path: Path) -> None:  # fmt: skip
    text = HEADER.replace("fact.days", "segment,fact.days") + "".join(
        line.replace(",20,yes", f",{seg},20,yes")
        for line, seg in ((row("S-1", customer="C-3", opened="2026-03-01T00:00:00"), ""),
                          (row("S-2", customer="C-3", opened="2025-12-01T00:00:00"), "vip"),
                          (row("S-3", customer="C-3", opened="2026-04-01T00:00:00"), ""))
    )  # fmt: skip
    r = cli("import", "cases", str(write(tmp_path, text)), "--json")
    assert as_json(r)["imported"] == 3, r.output
    with open_db(db_path) as store:
        customers = {r[0]: r[1:] for r in store.table_rows("customers")}
    assert customers["C-3"] == ("vip", "2025-12-01T00:00:00.000000Z")
    assert as_json(cli("customer", "show", "C-3", "--json"))["budget"]["limit"] == "5000.00"


def test_an_unclosed_quote_is_rejected_where_its_record_starts(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    opened_quote = row("O-2", justification="No commas in this long enough text").replace(",approved,", ',approved,"')
    text = HEADER + row("O-1") + opened_quote + row("O-3")
    r = cli("import", "cases", str(write(tmp_path, text)), "--json")
    assert r.exit_code == 0, r.output
    [bad] = rejects(tmp_path / "history.csv.rejects.csv")
    assert (bad["line"], bad["external_id"]) == ("3", "O-2")
    assert "fields; the header has 15" in bad["reason"]
    assert [c["external_id"] for c in cases(db_path)] == ["O-1"]
