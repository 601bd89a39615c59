"""Shared tools of the hardening tests: run the real CLI as a process, and an oracle
that checks a database file's invariants independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from empower_cli.core.money import format_money
from empower_cli.core.timeutil import iso
from empower_cli.store.chain import GENESIS, event_hash

PENDING = ("pending_cosign", "pending_supervisor")
CASE_OPENING_KINDS = ("opened", "imported")


def cli_env(policy: Path, db: Path, agent: str = "alice", **extra: str) -> dict[str, str]:
    """Environment of a real `python -m empower_cli` process acting as AGENT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update({"EMPOWER_AGENT": agent, "EMPOWER_POLICY": str(policy), "EMPOWER_DB": str(db),
                "NO_COLOR": "1", "COLUMNS": "120"})  # fmt: skip
    env.update(extra)
    return env


def spawn(args: Sequence[str | bytes], env: Mapping[str, str], **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "empower_cli", *args], env=dict(env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def run(args: Sequence[str | bytes], env: Mapping[str, str], timeout: float = 60, **kw: Any) -> tuple[int, str, str]:
    """Run the CLI to completion; return (exit code, stdout, stderr) as text."""
    p = spawn(args, env, **kw)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def case_new_args(customer: str, amount: str, *, days: int = 20,
                  justification: str = "Loyal customer, unused item") -> list[str]:
    return ["case", "new", "--customer", customer, "--type", "late_return",
            "--fact", f"days_since_purchase={days}", "--fact", "has_receipt=yes",
            "--action", "refund", "--amount", amount, "--justification", justification, "--json"]  # fmt: skip


# -- the oracle ---------------------------------------------------------------------


def verify_chain(conn: sqlite3.Connection) -> list[str]:
    """Recompute the hash chain from the raw rows (independent of `audit verify`)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    for seq, at, case_id, kind, actor, os_user, payload, prev_hash, digest in conn.execute(
        "SELECT seq, at, case_id, kind, actor, os_user, payload, prev_hash, hash FROM events ORDER BY seq"
    ):
        if seq != expected_seq:
            problems.append(f"event seq {seq}: expected seq {expected_seq} (gap or reorder)")
        if prev_hash != prev:
            problems.append(f"event {seq}: prev_hash does not link to the previous event")
        event = {"seq": seq, "at": at, "case_id": case_id, "kind": kind, "actor": actor,
                 "os_user": os_user, "payload": json.loads(payload)}  # fmt: skip
        if event_hash(prev_hash, event) != digest:
            problems.append(f"event {seq}: hash does not match its content")
        prev = digest
        expected_seq = seq + 1
    return problems


def check_invariants(db: Path, *, limit_for: Callable[[str | None], int], window_days: int,
                     now: dt.datetime, digits: int = 2, may_exceed: bool = False) -> list[str]:  # fmt: skip
    """Every invariant a crash or fault must not break; returns the violations found."""
    if not db.exists():
        return []
    # Read-write (it writes nothing): after a kill the WAL may need recovering, which a
    # read-only connection cannot do ("attempt to write a readonly database").
    conn = sqlite3.connect(db)
    try:
        return _check(conn, limit_for, window_days, now, digits, may_exceed)
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, limit_for: Callable[[str | None], int], window_days: int,
           now: dt.datetime, digits: int, may_exceed: bool) -> list[str]:  # fmt: skip
    problems: list[str] = []
    integrity = conn.execute("PRAGMA integrity_check").fetchall()
    if integrity != [("ok",)]:
        return [f"integrity_check: {integrity[:3]}"]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "events" not in tables:
        return [] if not tables else [f"tables without events: {sorted(tables)}"]
    problems += verify_chain(conn)
    conn.row_factory = sqlite3.Row
    cases = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM cases")}
    first: dict[int, sqlite3.Row] = {}
    for e in conn.execute("SELECT * FROM events WHERE case_id IS NOT NULL ORDER BY seq"):
        if e["case_id"] not in cases:
            problems.append(f"event {e['seq']} names case {e['case_id']}, which has no row")
        first.setdefault(e["case_id"], e)
    for case_id, case in cases.items():
        ev = first.get(case_id)
        if ev is None:
            problems.append(f"case {case_id} has no events")
            continue
        if ev["kind"] not in CASE_OPENING_KINDS:
            problems.append(f"case {case_id}: first event is {ev['kind']!r}")
        payload = json.loads(ev["payload"])
        if ev["kind"] == "opened" and payload.get("discretionary_amount") != format_money(
            case["discretionary_amount"], digits
        ):
            problems.append(f"case {case_id}: discretionary amount differs from its event")
    problems += _check_ledger(cases.values(), conn, limit_for, window_days, now, may_exceed)
    return problems


def _check_ledger(cases: Any, conn: sqlite3.Connection, limit_for: Callable[[str | None], int],
                  window_days: int, now: dt.datetime, may_exceed: bool) -> list[str]:  # fmt: skip
    """Recompute spent and held per customer from the case rows, in Python."""
    problems: list[str] = []
    start, end = iso(now - dt.timedelta(days=window_days)), iso(now)
    spent: dict[str, int] = {}
    held: dict[str, int] = {}
    for c in cases:
        cust = c["customer_id"]
        spent.setdefault(cust, 0)
        held.setdefault(cust, 0)
        if c["status"] == "approved" and c["settled_at"] and start < c["settled_at"] <= end:
            spent[cust] += c["discretionary_amount"]
        elif c["status"] in PENDING and c["expires_at"] and c["expires_at"] > end:
            held[cust] += c["held_amount"]
    segments = dict(conn.execute("SELECT customer_id, segment FROM customers").fetchall())
    for cust in spent:
        limit = limit_for(segments.get(cust))
        remaining = limit - spent[cust] - held[cust]
        if limit != spent[cust] + held[cust] + remaining or (remaining < 0 and not may_exceed):
            problems.append(f"customer {cust}: limit {limit} < spent {spent[cust]} + held {held[cust]}")
    return problems


def budget_via_cli(cli_json: dict[str, Any]) -> tuple[int, int, int, int]:
    """(limit, spent, held, remaining) in cents from `customer show --json`."""
    from empower_cli.core.money import parse_money

    b = cli_json["budget"]
    return tuple(parse_money(b[k], field=k) for k in ("limit", "spent", "held", "remaining"))  # type: ignore[return-value]


# -- running empower as another OS account ---------------------------------------------------


def foreign_python(user: str) -> list[str] | None:
    """An interpreter USER can run that imports this checkout's empower (the venv's own
    interpreter may sit under root's home); None when there is none."""
    import shutil
    import sysconfig

    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join([str(root), sysconfig.get_paths()["purelib"]])
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}", shutil.which(f"python{version}")):
        if not candidate or not os.path.exists(candidate):
            continue
        probe = ["runuser", "-u", user, "--", "env", f"PYTHONPATH={path}", candidate, "-c",
                 "import empower_cli.cli.main, sqlite3, typer, rich, sqlite_utils"]  # fmt: skip
        try:
            ok = subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return ["env", f"PYTHONPATH={path}", candidate]
    return None


def run_as(user: str, python: list[str], args: Sequence[str], env: Mapping[str, str], *, umask: int = 0o022,
           timeout: float = 60) -> tuple[int, str, str]:  # fmt: skip
    """Run `python -m empower_cli ARGS` as USER (real uid, gid and groups) with UMASK."""
    import pwd

    pw = pwd.getpwnam(user)
    cmd = ["runuser", "-u", user, "--", *python, "-m", "empower_cli", *args]
    p = subprocess.run(cmd, env=dict(env, HOME=pw.pw_dir), capture_output=True, timeout=timeout, umask=umask)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
