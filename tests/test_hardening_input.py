"""Hostile input everywhere: every flag, prompt answer, environment value, import field
and policy value tried with quotes, SQL, control characters, ANSI escapes, bidi marks,
emoji, 100,000-character strings, undecodable bytes and pathological numbers.

Each one is either stored and read back exactly, or refused with exit 2 and one line;
never a traceback, never a partial record, never a raw escape reaching the terminal.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner, Result

from empower_cli.cli.app import app
from tests.conftest import write_policy
from tests.errors_support import said
from tests.hardening_support import cli_env, run

HOSTILE_TEXT: tuple[str, ...] = (
    "'; DROP TABLE cases; --", '" OR 1=1 --', "Robert'); DELETE FROM events; --", "'\"`\\",
    "%s %d {0} {name} $(id) `id`", "\x00nul", "bell\x07", "\x1b[31mred\x1b[0m", "\x1b]0;pwned\x07",
    "\x1b[2J\x1b[H", "line\nbreak", "cr\roverwrite", "tab\tbed", "del\x7f", "c1\x9bcsi", "\u202eevil\u202c",
    "\u2066isolate\u2069", "rlm\u200f", "zero\u200bwidth", "emoji 😀", "family 👨‍👩‍👧", "e\u0301\u0301\u0301",
    "[red]markup[/red]", "[link=http://x]y[/link]", ":smile:", "\ufeffbom", "\u2028sep", "A" * 100_000,
    "é" * 10_001, "", "   ", "-x", "--help", "\ud800lone", "NULL", "None", "0",
)  # fmt: skip
HOSTILE_NUMBERS: tuple[str, ...] = (
    "-1", "-0", "-0.01", "0", "1e2", "1E-2", "1e309", "-1e309", "NaN", "nan", "inf", "-inf", "Infinity",
    "0x10", "0b1", "1_000", "1,000", "99999999999999999999999999", "9" * 400, "10000000000000.00", ".5",
    "5.", "5.001", "+5", " 5 ", "٣", "１２", "5 5", "", "--1", "1.0.0",
)  # fmt: skip
ALL = HOSTILE_TEXT + HOSTILE_NUMBERS
_RAW_ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_tried = {"count": 0}


@functools.cache
def _command() -> Any:
    return typer.main.get_command(app)


def _base() -> dict[str, Any]:
    return {"--customer": "C-1", "--type": "late_return", "--action": "refund", "--amount": "40.00",
            "--justification": "Loyal customer, unused item", "--reaction": "satisfied",
            "--segment": None, "facts": {"days_since_purchase": "20", "has_receipt": "yes"}}  # fmt: skip


def _args(values: dict[str, Any]) -> list[str]:
    args = ["case", "new", "--json"]
    for flag, value in values.items():
        if flag == "facts":
            for name, v in value.items():
                args += ["--fact", f"{name}={v}"]
        elif value is not None:
            args += [flag, value]
    return args


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.policy = write_policy(tmp)
        self.db = tmp / "data" / "empower.db"
        self.runner = CliRunner()

    def __call__(self, *args: str, agent: str = "alice", env: dict[str, str] | None = None) -> Result:
        _tried["count"] += 1
        full = {"EMPOWER_AGENT": agent, "EMPOWER_POLICY": str(self.policy), "EMPOWER_DB": str(self.db),
                "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}  # fmt: skip
        # The same real app; Typer's conversion to a command is done once, not per call (half the time).
        with patch.object(typer.testing, "_get_command", lambda _app: _command()):
            return self.runner.invoke(app, list(args), env=full)

    def count(self, table: str = "cases") -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def refused_cleanly(r: Result, what: str, allowed: tuple[int, ...] = (0, 2)) -> list[str]:
    """Exit 0, or exit 2 with exactly one short line on stderr; never a traceback."""
    problems = []
    if "Traceback" in r.output or (r.exception and not isinstance(r.exception, SystemExit)):
        problems.append(f"{what}: crashed: {r.exception!r}")
    if r.exit_code not in allowed:
        problems.append(f"{what}: exit {r.exit_code}: {r.output[-200:]!r}")
    if r.exit_code != 0:
        lines = r.stderr.strip("\n").splitlines()
        if len(lines) != 1 or len(lines[0]) > 400:
            problems.append(f"{what}: refusal is not one short line: {r.stderr[:300]!r}")
    return problems


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


# -- case new: every flag ----------------------------------------------------------------


@pytest.mark.slow
def test_every_case_new_flag_stores_hostile_text_exactly_or_refuses_with_one_line(cli: Cli) -> None:
    problems: list[str] = []
    fields = ("--customer", "--segment", "--type", "--action", "--amount", "--justification", "--reaction",
              "fact:days_since_purchase", "fact:has_receipt", "fact-name")  # fmt: skip
    tried = 0
    for field in fields:
        for value in ALL:
            values = _base()
            if field.startswith("fact:"):
                values["facts"][field[5:]] = value
            elif field == "fact-name":
                values["facts"][value] = "1"
            else:
                values[field] = value
            before = cli.count()
            r = cli(*_args(values))
            tried += 1
            what = f"{field}={value[:30]!r}"
            problems += refused_cleanly(r, what)
            if r.exit_code == 2 and cli.count() != before:
                problems.append(f"{what}: refused but a case was recorded")
            if r.exit_code == 0:
                problems += _reads_back(cli, json.loads(r.stdout)["case_id"], field, value)
    print(f"\nhostile input, case new flags: {tried} tried, {len(problems)} violations")
    assert problems == [], "\n".join(problems[:30])


def _reads_back(cli: Cli, case_id: int, field: str, value: str) -> list[str]:
    shown = json.loads(cli("case", "show", str(case_id), "--json").stdout)
    column = {"--customer": "customer_id", "--segment": "segment", "--justification": "justification",
              "--reaction": "reaction", "--type": "case_type", "--action": "action"}.get(field)  # fmt: skip
    if column and shown[column] != value:
        return [f"{field}={value[:30]!r} came back as {str(shown[column])[:30]!r}"]
    if field == "--amount" and shown["amount"] != _exact(value):
        return [f"--amount {value!r} came back as {shown['amount']!r}"]
    return []


def _exact(text: str) -> str:
    from decimal import Decimal

    return f"{Decimal(text.strip()):.2f}"


def test_a_hostile_text_fact_is_stored_exactly(cli: Cli) -> None:
    problems: list[str] = []
    for value in HOSTILE_TEXT:
        r = cli("case", "new", "--json", "--customer", "C-7", "--type", "financial_advice", "--fact", f"topic={value}",
                "--action", "fee_waiver", "--amount", "10.00", "--escalate",
                "--justification", "Customer asked for tax advice on a refund")  # fmt: skip
        problems += refused_cleanly(r, f"topic={value[:30]!r}")
        if r.exit_code == 0:
            case = json.loads(cli("case", "show", str(json.loads(r.stdout)["case_id"]), "--json").stdout)
            if case["facts"]["topic"] != value:
                problems.append(f"topic {value[:30]!r} came back as {case['facts']['topic'][:30]!r}")
    assert problems == [], "\n".join(problems)


def test_stored_hostile_text_is_never_interpreted_by_the_terminal(cli: Cli) -> None:
    """Everything accepted above is shown with its escapes made visible in every view."""
    accepted = []
    for i, value in enumerate(HOSTILE_TEXT):
        # Short text is shown in the panel, text with a line break in full below it: both ways.
        for why in (f"Fair because {value}", f"Fair because {value}\nand still fair: {value}"):
            r = cli(*_args({**_base(), "--customer": f"C-{value}"[:200], "--justification": why}))
            if r.exit_code == 2 and said(r).startswith("error: customer:"):
                # An identifier may not hold invisible or control characters: the text still
                # reaches the terminal as a justification.
                r = cli(*_args({**_base(), "--customer": f"C-{i}", "--justification": why}))
            if r.exit_code == 0:
                accepted.append(json.loads(r.stdout)["case_id"])
    assert len(accepted) >= 40
    views = [cli("case", "list", "--limit", "1000"), *(cli("case", "show", str(i)) for i in accepted)]
    views += [cli("customer", "show", c) for c in {f"C-{v}"[:200] for v in HOSTILE_TEXT if "\x00" not in v}]
    for v in views:
        assert v.exit_code in (0, 2), v.output
        assert not _RAW_ESCAPES.search(v.stdout), repr(_RAW_ESCAPES.search(v.stdout))


# -- the workflow, queries and environment -------------------------------------------------


@pytest.mark.slow
def test_every_workflow_text_and_query_flag_survives_hostile_values(cli: Cli) -> None:
    problems: list[str] = []
    for i, value in enumerate(ALL):
        opened = cli(*_args({**_base(), "--customer": f"W-{i}", "--amount": "150.00"}))
        case_id = str(json.loads(opened.stdout)["case_id"])
        steps: list[tuple[tuple[str, ...], str]] = [
            (("case", "cosign", case_id, "--note", value, "--json"), "bob"),
            (("case", "outcome", case_id, "--reaction", value, "--retained", "--json"), "alice"),
            (("case", "list", "--customer", value, "--json"), "alice"),
            (("case", "list", "--agent", value, "--json"), "alice"),
            (("case", "list", "--status", value, "--json"), "alice"),
            (("case", "list", "--since", value, "--json"), "alice"),
            (("case", "list", "--limit", value, "--json"), "alice"),
            (("customer", "show", value, "--json"), "alice"),
        ]
        for args, agent in steps:
            r = cli(*args, agent=agent)
            problems += refused_cleanly(r, f"{' '.join(args[:3])}: {value[:30]!r}")
        for args, agent in ((("case", "show", value), "alice"), (("case", "cosign", value), "bob")):
            # A case number that parses ("+5", "1_000") may name no case (5) or a settled one (6).
            r = cli(*args, agent=agent)
            problems += refused_cleanly(r, f"{' '.join(args[:2])} {value[:30]!r}", allowed=(0, 2, 5, 6))
        pending = cli(*_args({**_base(), "--customer": f"W-{i}", "--amount": "150.00"}))
        pid = str(json.loads(pending.stdout)["case_id"])
        r = cli("case", "object", pid, "--reason", value, "--json", agent="bob")
        problems += refused_cleanly(r, f"object --reason {value[:30]!r}")
        for verb in ("approve", "deny"):
            r = cli("case", verb, pid, "--note", value, "--json", agent="carol")
            problems += refused_cleanly(r, f"{verb} --note {value[:30]!r}") if r.exit_code != 6 else []
    problems += _notes_read_back(cli)
    print(f"\nhostile input, workflow and query flags: {len(ALL) * 13} tried, {len(problems)} violations")
    assert problems == [], "\n".join(problems[:30])


def _notes_read_back(cli: Cli) -> list[str]:
    """Every note or reason that was accepted is in its event exactly as typed."""
    with sqlite3.connect(cli.db) as conn:
        rows = conn.execute("SELECT payload FROM events WHERE kind NOT IN ('opened', 'policy_applied')")
        texts = [json.loads(p) for (p,) in rows]
    stored = {t.get("note") or t.get("reason") for t in texts} - {None}
    allowed = set(ALL)
    return [f"a note was stored altered: {s[:30]!r}" for s in stored if s not in allowed]


def test_a_hostile_empower_agent_is_refused_or_recorded_exactly(cli: Cli) -> None:
    problems = []
    for value in HOSTILE_TEXT:
        if "\x00" in value or "\ud800" in value or value == "":
            continue  # an environment variable cannot hold these; an empty one means "not set"
        r = cli(*_args(_base()), agent=value)
        problems += refused_cleanly(r, f"EMPOWER_AGENT={value[:30]!r}")
        if r.exit_code == 0:
            with sqlite3.connect(cli.db) as conn:
                (actor,) = conn.execute("SELECT actor FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            if actor != value:
                problems.append(f"agent {value[:30]!r} recorded as {actor[:30]!r}")
    assert problems == [], "\n".join(problems)


UNDECODABLE = (b"\xff\xfe", b"C-\x80\x81", b"\xed\xa0\x80", b"ok\xc3")


def test_undecodable_argv_bytes_are_refused_with_one_line(tmp_path: Path) -> None:
    """Real processes get raw bytes in argv; Python hands them over as surrogate escapes."""
    policy = write_policy(tmp_path)
    env = cli_env(policy, tmp_path / "data" / "empower.db")
    problems = []
    for raw in UNDECODABLE:
        for flag in (b"--customer", b"--justification", b"--fact"):
            value = b"days_since_purchase=" + raw if flag == b"--fact" else raw
            args: list[str | bytes] = [b"case", b"new", b"--type", b"late_return", b"--action", b"refund",
                                       b"--amount", b"40.00", b"--fact", b"has_receipt=yes", b"--json"]  # fmt: skip
            base: dict[bytes, bytes] = {b"--customer": b"C-1", b"--justification": b"Loyal customer, unused",
                                        b"--fact": b"days_since_purchase=3"}  # fmt: skip
            base[flag] = value
            for k, v in base.items():
                args += [k, v]
            code, _out, err = run(args, env)
            _tried["count"] += 1
            if code != 2 or "Traceback" in err or len(err.strip().splitlines()) != 1:
                problems.append(f"{flag!r}={raw!r}: exit {code}: {err[-200:]!r}")
    assert problems == [], "\n".join(problems)
    assert not (tmp_path / "data" / "empower.db").exists() or _cases(tmp_path / "data" / "empower.db") == 0


def _cases(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0])


# -- import fields ---------------------------------------------------------------------------

IMPORT_COLUMNS = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
                  "justification", "cosigner", "supervisor", "reaction", "retained", "discretionary_amount",
                  "segment", "fact.days_since_purchase", "fact.has_receipt")  # fmt: skip
GOOD_ROW = {"external_id": "H-0", "customer_id": "C-1", "agent": "erin", "opened_at": "2026-03-01T10:00:00",
            "case_type": "late_return", "action": "refund", "amount": "40.00", "status": "approved",
            "justification": "Old case from the previous system", "cosigner": "", "supervisor": "",
            "reaction": "satisfied", "retained": "yes", "discretionary_amount": "", "segment": "",
            "fact.days_since_purchase": "20", "fact.has_receipt": "yes"}  # fmt: skip


@pytest.mark.slow
def test_every_import_field_takes_hostile_values_row_by_row(cli: Cli, tmp_path: Path) -> None:
    """CSV and JSON Lines: each hostile cell is imported exactly or rejected with its line."""
    import csv

    rows: list[dict[str, str]] = []
    for column in IMPORT_COLUMNS:
        for value in ALL:
            if "\ud800" in value:
                continue  # not encodable in a UTF-8 file; undecodable bytes are tried below
            row = dict(GOOD_ROW, external_id=f"H-{len(rows)}")
            row[column] = value if column != "external_id" else f"{value}-{len(rows)}"
            rows.append(row)
    path = tmp_path / "hostile.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=IMPORT_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with path.open("ab") as f:  # undecodable bytes and a NUL, each in its own row
        for i, raw in enumerate((*UNDECODABLE, b"nul\x00byte")):
            f.write(b"X-%d,C-1,erin,2026-03-01T10:00:00,late_return,refund,40.00,approved,%s,,,,,,,20,yes\n" % (i, raw))
    r = cli("import", "cases", str(path), "--json", "--rejects", str(tmp_path / "rej.csv"), agent="carol")
    _tried["count"] += len(rows) + len(UNDECODABLE) + 1
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["read"] == len(rows) + len(UNDECODABLE) + 1
    assert summary["imported"] + summary["rejected"] + summary["skipped"] == summary["read"]
    assert summary["rejected"] >= len(UNDECODABLE) + 1
    problems = _imported_exactly(cli.db, {r["external_id"]: r for r in rows})
    jsonl = tmp_path / "hostile.jsonl"
    numbers: list[Any] = [1e308, -1.0, 0.1, 10**30, -(10**30), True, None, [], {}, "NaN", 1.5e-7]
    with jsonl.open("w", encoding="utf-8") as f:
        for i, n in enumerate(numbers):
            for field in ("amount", "discretionary_amount", "retained", "opened_at"):
                obj: dict[str, Any] = {k: v for k, v in GOOD_ROW.items() if not k.startswith("fact.")}
                obj.update(external_id=f"J-{field}-{i}", facts={"days_since_purchase": n, "has_receipt": True})
                obj[field] = n
                f.write(json.dumps(obj) + "\n")
        f.write('{"external_id": "J-nan", "amount": NaN}\n{"external_id": "J-inf", "amount": Infinity}\n')
        f.write('{"external_id": "J-big", "amount": 1e999}\n[1, 2]\n"text"\n{"unterminated": \n')
    r = cli("import", "cases", str(jsonl), "--json", "--rejects", str(tmp_path / "rej2.csv"), agent="carol")
    _tried["count"] += len(numbers) * 4 + 6
    problems += refused_cleanly(r, "jsonl import")
    assert r.exit_code == 0, r.output
    print(f"\nhostile input, import fields: {len(rows) + len(numbers) * 4 + 11} rows tried, {len(problems)} violations")
    assert problems == [], "\n".join(problems[:30])


def _imported_exactly(db: Path, rows: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        for case in conn.execute("SELECT * FROM cases WHERE imported = 1"):
            row = rows.get(case["external_id"])
            if row is None:
                problems.append(f"imported {case['external_id'][:30]!r}, which is not in the file as written")
                continue
            for column in ("customer_id", "agent", "justification"):
                if case[column] != (row[column] or None):  # an empty cell is no value
                    problems.append(f"{case['external_id'][:20]!r}: {column} {row[column][:30]!r} "
                                    f"came back as {str(case[column])[:30]!r}")  # fmt: skip
    return problems


# -- the walk-through's prompts --------------------------------------------------------------


def test_the_walk_through_reasks_every_hostile_answer_and_never_crashes(tmp_path: Path) -> None:
    import os

    import pexpect

    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(EMPOWER_POLICY=str(write_policy(tmp_path)), EMPOWER_DB=str(tmp_path / "data" / "empower.db"),
               EMPOWER_AGENT="alice", NO_COLOR="1", TERM="dumb", COLUMNS="200")  # fmt: skip
    child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "case", "new"], env=env, encoding="utf-8",
                          timeout=15, codec_errors="replace")  # fmt: skip
    bad_numbers = [v for v in HOSTILE_NUMBERS if v.strip() and not re.fullmatch(r"\s*[+-]?\d+\s*", v)]
    bad_text = ["\x1b[31mred", "A" * 5000, "'; DROP TABLE cases; --", "😀", "\u202eevil"]
    plan: list[tuple[str, list[str], str]] = [
        ("Customer id:", ["   "], "C-1"),
        ("Case type (number or id):", [*bad_text, "0", "99", "-1"], "1"),
        ("Days since purchase", bad_numbers + bad_text, "20"),
        ("receipt?", [*bad_text, "maybe"], "yes"),
        ("Action (number or id):", [*bad_text, "0", "99"], "refund"),
        ("Amount", [v for v in HOSTILE_NUMBERS if not _is_money(v)] + bad_text, "40.00"),
    ]
    sent = 0
    for prompt, bad, good in plan:
        child.expect_exact(prompt)
        for answer in bad:
            child.sendline(answer)
            sent += 1
            child.expect_exact(prompt)  # asked again: nothing was accepted, nothing crashed
        child.sendline(good)
    _tried["count"] += sent
    child.expect_exact("Justification")  # every answer given: now Ctrl-C records nothing
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    transcript = child.before or ""
    child.wait()
    assert "Traceback" not in transcript
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, transcript[-300:])
    assert not (tmp_path / "data" / "empower.db").exists() or _cases(tmp_path / "data" / "empower.db") == 0
    print(f"\nhostile input, walk-through prompts: {sent} bad answers re-asked, 0 crashes")


def _is_money(text: str) -> bool:
    from empower_cli.core.errors import InvalidInput
    from empower_cli.core.money import parse_money

    try:
        parse_money(text, field="amount")
    except InvalidInput:
        return False
    return True




