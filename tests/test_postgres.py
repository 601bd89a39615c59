"""PostgreSQL as a second backend (issue 12), against a real server the tests start
(tests/pg_server.py): identity is the database login, the log is append-only by the database
itself, errors are one line, the import streams with COPY, `db copy` proves nothing changed,
one history gives byte-identical reports on both backends, and 16 processes on 16
connections never overspend one budget.

The store, workflow, four-eyes, expiry and report suites also run on PostgreSQL: their
`db_path` fixture is parametrised over both backends (tests/conftest.py, BACKENDS).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from empower_cli.cli.app import app
from empower_cli.services.admin import default_policy_text
from tests.conftest import JUSTIFICATION, ROOT, open_db, write_policy
from tests.pg_server import Databases, PgServer
from tests.test_audit_differential import REPORTS, World, listed_cases, make_world
from tests.test_concurrency import PROCESSES, race_policy, spend


def run(policy: Path, url: str, *args: str, agent: str | None = None) -> Result:
    """`empower ARGS` on the database at `url` (whose login acts), as no OS account in particular."""
    env = {"EMPOWER_POLICY": str(policy), "EMPOWER_DB": url, "EMPOWER_AGENT": agent}
    return CliRunner().invoke(app, list(args), env=env)


def production_policy(folder: Path) -> Path:
    """The shipped policy (no identity override), with alice and bob as agents, carol supervisor."""
    text = default_policy_text().replace('carol = "supervisor"', 'carol = "supervisor"\nalice = "agent"\nbob = "agent"')
    return write_policy(folder, text)


def open_late_return(policy: Path, url: str, amount: str = "150.00", agent: str | None = None) -> Result:
    return run(policy, url, "case", "new", "--customer", "C-1", "--type", "late_return",
               "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes", "--action", "refund",
               "--amount", amount, "--justification", JUSTIFICATION, "--json", agent=agent)  # fmt: skip


@pytest.fixture
def team(pg_databases: Databases, tmp_path: Path) -> dict[str, str]:
    """A database set up by its owner with `empower init`, and a URL for each agent's own login
    (alice, bob, carol), each a member of the agents' role and nothing more."""
    name = pg_databases.create()
    pg_databases.server.sql("CREATE ROLE empower_agents NOLOGIN") if not _role_exists(pg_databases.server) else None
    policy = production_policy(tmp_path)
    owner = pg_databases.url(name)
    r = run(policy, owner, "init", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert "granted role empower_agents" in r.stdout
    urls = {"owner": owner, "policy": str(policy)}
    for login in ("alice", "bob", "carol"):
        pg_databases.login(login)
        pg_databases.server.sql(f"GRANT empower_agents TO {login}", f"GRANT CONNECT ON DATABASE {name} TO {login}")
        urls[login] = pg_databases.url(name, login)
    return urls


def _role_exists(server: PgServer) -> bool:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'empower_agents'").fetchone() is not None


# -- identity: the database login acts ----------------------------------------------------


def test_the_acting_agent_is_the_database_login_and_the_four_eyes_hold_across_logins(team: dict[str, str]) -> None:
    policy = Path(team["policy"])
    opened = open_late_return(policy, team["alice"], agent="bob")  # EMPOWER_AGENT plays no part
    assert opened.exit_code == 0, opened.output
    case = json.loads(opened.stdout)
    assert case["status"] == "pending_cosign"
    cid = str(case["case_id"])
    # alice cannot co-sign her own case, whatever she claims
    r = run(policy, team["alice"], "case", "cosign", cid, agent="bob")
    assert r.exit_code == 4, r.output
    r = run(policy, team["alice"], "case", "approve", cid, "--note", "fine", agent="carol")
    assert r.exit_code == 4, r.output  # alice is an agent: she may not approve as carol
    # bob, on his own login, co-signs; the events name the logins
    r = run(policy, team["bob"], "case", "cosign", cid)
    assert r.exit_code == 0, r.output
    shown = json.loads(run(policy, team["carol"], "case", "show", cid, "--json").stdout)
    assert [(e["kind"], e["by"]) for e in shown["events"]] == [("opened", "alice"), ("cosigned", "bob")]


def test_a_login_without_a_role_is_refused_when_the_policy_has_no_default(team: dict[str, str], tmp_path: Path,
                                                                         pg_databases: Databases) -> None:  # fmt: skip
    policy = Path(team["policy"])
    text = policy.read_text().replace('default_role = "agent"', "")
    policy.write_text(text)
    assert run(policy, team["carol"], "policy", "apply", "--note", "no default role").exit_code == 0
    r = open_late_return(policy, team["owner"])  # the owner's login is in no role
    assert r.exit_code == 4, r.output
    assert "empower_owner" in r.output


# -- the log is append-only by the database itself ------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE events SET actor = 'mallory'",
    "DELETE FROM events",
    "TRUNCATE events",
    "ALTER TABLE events DISABLE TRIGGER events_no_update",
    "DROP TRIGGER events_no_update ON events",
])  # fmt: skip
def test_an_agents_connection_cannot_rewrite_history(team: dict[str, str], statement: str) -> None:
    assert open_late_return(Path(team["policy"]), team["alice"]).exit_code == 0
    with psycopg.connect(team["alice"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())
        assert conn.execute("SELECT COUNT(*) FROM events WHERE actor = 'alice'").fetchone() == (1,)


@pytest.mark.parametrize("statement", [
    "UPDATE empower_meta SET schema_version = 99",
    "DELETE FROM policies",
    "UPDATE policies SET text = ''",
    "DELETE FROM cases",
    "DELETE FROM customers",
    "INSERT INTO case_texts (case_id, kind, source, actor, at, text) VALUES (1, 'note', 'x', 'x', 'x', 'planted')",
    "DELETE FROM precedent_keys",
    "UPDATE precedent_keys SET status = 'approved'",
    "SELECT empower_add_precedent_keys(c) FROM cases c",
    "ALTER FUNCTION empower_derive_after(BIGINT) SECURITY INVOKER",
])  # fmt: skip
def test_an_agents_connection_cannot_touch_the_policy_the_schema_or_the_derived_tables(
    team: dict[str, str], statement: str
) -> None:
    assert open_late_return(Path(team["policy"]), team["alice"]).exit_code == 0
    with psycopg.connect(team["alice"], autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement.encode())
    r = run(Path(team["policy"]), team["carol"], "audit", "verify")
    assert r.exit_code == 0, r.output


def test_deriving_again_adds_nothing(team: dict[str, str]) -> None:
    """The bulk derivation is open to every login (an agent's import calls it): run again, by
    anyone, it finds nothing missing and adds nothing."""
    assert open_late_return(Path(team["policy"]), team["alice"]).exit_code == 0
    with psycopg.connect(team["alice"], autocommit=True) as conn:
        tables = ("case_texts", "precedent_keys")
        before = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone() for t in tables]
        conn.execute("SELECT empower_derive_after(0)")
        assert [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone() for t in tables] == before


@pytest.mark.parametrize("statement", ["UPDATE events SET actor = 'mallory'", "DELETE FROM events"])
def test_the_trigger_refuses_even_the_owner(team: dict[str, str], statement: str) -> None:
    with psycopg.connect(team["owner"], autocommit=True) as conn, pytest.raises(psycopg.errors.RaiseException,
                                                                              match="append-only"):
        conn.execute(statement.encode())


def test_a_case_row_edited_by_an_agents_login_is_caught_by_verify(team: dict[str, str]) -> None:
    policy = Path(team["policy"])
    cid = json.loads(open_late_return(policy, team["alice"], amount="50.00").stdout)["case_id"]
    with psycopg.connect(team["alice"], autocommit=True) as conn:
        conn.execute("UPDATE cases SET discretionary_amount = 1 WHERE id = %s", (cid,))
    r = run(policy, team["carol"], "audit", "verify")
    assert r.exit_code == 6, r.output
    assert f"case {cid}" in r.output


# -- errors: one line, exit code, never the password -------------------------------------------


def test_a_wrong_password_is_one_line_naming_the_database_and_never_the_password(team: dict[str, str]) -> None:
    url = team["alice"].replace("alice-", "wrong-")
    secret = url.split(":", 2)[2].split("@")[0]
    r = run(Path(team["policy"]), url, "case", "list")
    assert r.exit_code == 1, r.output
    assert "cannot connect" in r.output
    assert "/t_" in r.output  # names the database
    assert secret not in r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_an_unreachable_server_is_exit_1(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    r = run(policy, f"postgresql://nobody:pw@/empower?host={tmp_path}", "case", "list")
    assert r.exit_code == 1, r.output
    assert "postgresql://nobody@/empower" in r.output
    assert "pw@" not in r.output


def test_a_write_lock_held_past_the_lock_timeout_is_exit_6_and_records_nothing(team: dict[str, str]) -> None:
    policy = Path(team["policy"])
    url = team["alice"] + "&options=-c%20lock_timeout%3D300"
    with psycopg.connect(team["owner"]) as holder:  # a transaction holding the write lock
        holder.execute("SELECT id FROM empower_meta WHERE id = 1 FOR UPDATE")
        started = time.monotonic()
        r = open_late_return(policy, url, amount="50.00")
        assert r.exit_code == 6, r.output
        assert "busy" in r.output
        assert time.monotonic() - started < 10
    assert json.loads(run(policy, team["carol"], "case", "list", "--json").stdout)["rows"] == []


# -- import with COPY --------------------------------------------------------------------------


def test_import_is_idempotent_and_rejects_bad_rows_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from tests.test_import import HEADER, ago, row, write

    policy = write_policy(tmp_path)
    rows = [row(f"H-{k}", opened=ago(days=30 + k)) for k in range(50)] + [row("H-bad", amount="-1")]
    path = write(tmp_path, HEADER + "".join(rows))
    first = run(policy, pg_url, "--json", "import", "cases", str(path), agent="carol")
    assert first.exit_code == 0, first.output
    assert (json.loads(first.stdout)["imported"], json.loads(first.stdout)["rejected"]) == (50, 1)
    again = run(policy, pg_url, "--json", "import", "cases", str(path), "--rejects", str(tmp_path / "r2.csv"),
                agent="carol")  # fmt: skip
    assert json.loads(again.stdout)["imported"] == 0
    assert run(policy, pg_url, "audit", "verify", agent="carol").exit_code == 0


# -- the same history on both backends -----------------------------------------------------------


EXTRA_ROWS = 3_000


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, pg_databases: Databases) -> tuple[World, World]:
    """One generated history (imports, co-signs, objections, denials, expiries, outcomes: the
    differential test's, tests/differential_history.py), then 3,000 more imported rows of
    every case type (bench/import.py's generator), recorded into SQLite and into PostgreSQL
    at the same moment."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    on_sqlite = make_world(tmp_path_factory.mktemp("twin-sqlite"), now)
    on_postgres = make_world(tmp_path_factory.mktemp("twin-pg"), now, pg_databases.url(pg_databases.create()))
    more = tmp_path_factory.mktemp("twin-rows") / "more.csv"
    _bench_generator()(more, EXTRA_ROWS)
    imported = [w.json("import", "cases", str(more)) for w in (on_sqlite, on_postgres)]
    counts = [{k: i[k] for k in ("read", "imported", "skipped", "rejected")} for i in imported]
    assert counts[0] == counts[1]
    assert imported[0]["imported"] > 2_500, imported[0]
    for w in (on_sqlite, on_postgres):
        w.after = w.reports()
    return on_sqlite, on_postgres


def _bench_generator() -> Any:
    spec = importlib.util.spec_from_file_location("bench_import", ROOT / "bench" / "import.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def test_every_report_prints_the_same_json_on_both_backends(twins: tuple[World, World]) -> None:
    on_sqlite, on_postgres = twins
    assert on_sqlite.after == on_postgres.after  # every report over five periods, after the refusals
    for name in REPORTS:
        for fmt in ("csv", "markdown"):
            args = ("audit", name, "--format", fmt)
            assert on_sqlite.cli(*args).stdout == on_postgres.cli(*args).stdout


def test_every_case_row_and_event_is_the_same_on_both_backends(twins: tuple[World, World]) -> None:
    """The tables whole: every case row, customer and event. The imports and the first policy
    were written at different moments: those events' times, and every hash chained from them,
    differ (the same hashes for the same events: test_db_copy_both_ways_keeps_the_audit_head)."""
    tables = []
    for w in twins:
        with open_db(w.db) as store:
            # (the first policy was applied by the OS account on SQLite, by the database login
            # on PostgreSQL, from a file in another folder: its event differs by design)
            events = [(e["seq"], e["case_id"], e["kind"], e["actor"], e["payload"],
                       e["at"] if e["kind"] != "imported" else None)
                      for e in store.events() if e["kind"] != "policy_applied"]  # fmt: skip
            # the derived tables: SQLite's by per-chunk statements and triggers, PostgreSQL's by
            # its own SQL and PL/pgSQL: the same rows
            keys = store.conn.execute(
                "SELECT case_type, action, signature, fact, value, case_id, opened_at, status, expires_at, amount,"
                " agent FROM precedent_keys ORDER BY case_id, fact").fetchall()
            texts = store.conn.execute(
                "SELECT case_id, kind, source, actor, at, text FROM case_texts ORDER BY case_id, kind, at").fetchall()
            tables.append((list(store.table_rows("cases")), list(store.table_rows("customers")), events,
                           [tuple(k) for k in keys], [tuple(t) for t in texts]))  # fmt: skip
    assert tables[0] == tables[1]
    assert len(tables[0][0]) > 3_000
    assert len(tables[0][3]) > 3_000


def test_case_show_prints_the_same_on_both_backends(twins: tuple[World, World]) -> None:
    """`case show --json` of every case of the differential history (co-signs, objections,
    expiries, outcomes…) and of every 20th generated import."""
    on_sqlite, on_postgres = twins
    listed = listed_cases(on_sqlite.json("case", "list", "--limit", "0"))
    assert listed == listed_cases(on_postgres.json("case", "list", "--limit", "0"))
    with open_db(on_sqlite.db) as store:
        generated = {r["id"] for r in store.cases_by_id() if str(r["external_id"]).startswith("LEG-")}
    chosen = [c["case_id"] for c in listed if c["case_id"] not in generated or c["case_id"] % 20 == 0]
    assert len(chosen) > 500
    for case_id in chosen:
        a, b = (w.json("case", "show", str(case_id)) for w in twins)
        for shown in (a, b):
            for event in shown.get("events", []):
                event.pop("hash", None)
                if event["kind"] == "imported":
                    event.pop("at", None)
        assert a == b, case_id


def test_simulate_prints_the_same_on_both_backends(twins: tuple[World, World]) -> None:
    on_sqlite, on_postgres = twins
    stricter = on_sqlite.policy_file("stricter.toml", ('above = "100.00"', 'above = "20.00"'))
    on_postgres.policy_file("stricter.toml", ('above = "100.00"', 'above = "20.00"'))
    assert on_sqlite.simulate(stricter) == on_postgres.simulate(on_postgres.folder / "stricter.toml")


def test_db_copy_both_ways_keeps_the_audit_head(twins: tuple[World, World], pg_databases: Databases,
                                                 tmp_path: Path) -> None:  # fmt: skip
    on_sqlite, _ = twins
    head = on_sqlite.cli("audit", "head").stdout.strip()
    target = pg_databases.url(pg_databases.create())
    r = on_sqlite.cli("db", "copy", str(on_sqlite.db), target, "--json")
    assert r.exit_code == 0, r.output
    copied = json.loads(r.stdout)
    assert copied["head"] == head
    assert target.split(":", 2)[2].split("@")[0] not in r.stdout  # the password is never printed
    back = tmp_path / "back.db"
    r = on_sqlite.cli("db", "copy", target, str(back))
    assert r.exit_code == 0, r.output
    assert on_sqlite.cli("--db", str(back), "audit", "head").stdout.strip() == head
    # search and precedents answer the same from the copies (their rows derived on the way)
    for db in (target, str(back)):
        for args in (("case", "search", "loyal", "--limit", "0"),
                     ("case", "precedents", "--type", "late_return", "--action", "refund",
                      "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes")):  # fmt: skip
            found, original = on_sqlite.json("--db", db, *args), on_sqlite.json(*args)
            if args[1] == "search":  # the same matches; PostgreSQL ranks them its own way
                found, original = ({(h["case_id"], h["kind"], h["at"]) for h in out["rows"]}
                                   for out in (found, original))
            assert found == original, args
    # a non-empty target is refused, and nothing is added to it
    r = on_sqlite.cli("db", "copy", str(on_sqlite.db), target)
    assert r.exit_code == 6, r.output
    assert "not empty" in r.output
    assert on_sqlite.cli("--db", target, "audit", "head").stdout.strip() == head


# -- 16 processes on 16 connections ------------------------------------------------------------


def test_sixteen_processes_spending_one_budget_on_postgresql_approve_exactly_what_fits(
    tmp_path: Path, pg_url: str
) -> None:
    barrier = tmp_path / "go"
    policy = race_policy(tmp_path)
    procs = [spend(barrier, policy, pg_url, f"agent{i}") for i in range(PROCESSES)]
    time.sleep(1.5)
    barrier.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    statuses = sorted(json.loads(out)["status"] for _, out, _ in results)
    assert statuses == ["approved"] * 5 + ["pending_supervisor"] * 11
    with psycopg.connect(pg_url) as conn:
        totals = conn.execute(
            "SELECT SUM(CASE WHEN status = 'approved' THEN discretionary_amount ELSE 0 END),"
            " SUM(CASE WHEN status LIKE 'pending%%' THEN held_amount ELSE 0 END) FROM cases"
        ).fetchone()
        assert totals == (50000, 0)
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, PROCESSES + 2))
    assert all(p.poll() is not None for p in procs)  # every process we started has ended


# -- the store on PostgreSQL ---------------------------------------------------------------------


def test_a_newer_schema_is_refused_with_one_line_and_exit_1(tmp_path: Path, pg_url: str) -> None:
    policy = write_policy(tmp_path)
    assert run(policy, pg_url, "case", "list").exit_code == 0  # creates the schema
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE empower_meta SET schema_version = 99")
    r = run(policy, pg_url, "case", "list")
    assert r.exit_code == 1, r.output
    assert "schema version 99" in r.output
    assert "upgrade empower" in r.output


def test_a_dry_run_import_creates_nothing_on_an_empty_database(tmp_path: Path, pg_url: str) -> None:
    from tests.test_import import HEADER, row, state, write

    policy = write_policy(tmp_path)
    r = run(policy, pg_url, "--json", "import", "cases", str(write(tmp_path, HEADER + row("D-1"))), "--dry-run",
            agent="carol")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["imported"] == 1
    assert state(pg_url) == ([], None)  # not even the schema


def test_an_import_killed_mid_way_keeps_whole_chunks_and_a_rerun_completes_it(tmp_path: Path, pg_url: str) -> None:
    """kill -9 during a COPY: PostgreSQL keeps the chunks already committed, nothing of the one
    in flight; the same file imported again adds exactly the rest, and the log verifies."""
    import os
    import signal
    import subprocess
    import sys

    policy = write_policy(tmp_path)
    history = tmp_path / "big.csv"
    _bench_generator()(history, 40_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(EMPOWER_POLICY=str(policy), EMPOWER_DB=pg_url, EMPOWER_AGENT="carol", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "empower_cli", "--json", "import", "cases", str(history)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    with psycopg.connect(pg_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT to_regclass('cases') IS NOT NULL").fetchone() == (True,) and _cases(conn) > 0:
                break
            time.sleep(0.02)
        workers = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == proc.pid]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        kept = _cases(conn)
    assert 0 < kept < 40_000
    # its validating workers die with it (PR_SET_PDEATHSIG)
    assert workers, "the import ran no worker processes"
    deadline = time.monotonic() + 5
    while any(_parent(p) is not None for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in workers if _parent(p) is not None] == []
    again = run(policy, pg_url, "--json", "import", "cases", str(history), agent="carol")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["skipped"] == kept
    assert summary["imported"] + summary["skipped"] + summary["rejected"] == 40_000
    assert run(policy, pg_url, "audit", "verify", agent="carol").exit_code == 0


def _cases(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT COUNT(*) FROM cases").fetchone()
    assert row is not None
    return int(row[0])


def _parent(pid: str) -> int | None:
    """The parent of a live process (None once it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[1])


def test_the_views_show_what_the_cli_shows_to_an_agents_login(team: dict[str, str]) -> None:
    """`cases_now` and `budgets_now`, written by the owner's `init`, read by an agent's own
    connection: effective statuses (an expired case included) and money as the CLI prints them."""
    from empower_cli.policy.load import load_policy
    from tests.workflow_support import open_in_past

    policy = Path(team["policy"])
    assert open_late_return(policy, team["alice"]).exit_code == 0
    loaded = load_policy(policy)
    open_in_past(team["owner"], loaded, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=30))
    listed = json.loads(run(policy, team["carol"], "case", "list", "--json").stdout)["rows"]
    assert "expired" in {c["status"] for c in listed}
    budget = json.loads(run(policy, team["carol"], "customer", "show", "C-1", "--json").stdout)["budget"]
    with psycopg.connect(team["bob"], autocommit=True) as conn:
        rows = conn.execute("SELECT case_id, status, amount, discretionary_amount FROM cases_now ORDER BY case_id")
        assert [tuple(r) for r in rows] == sorted(
            (c["case_id"], c["status"], c["amount"], c["discretionary_amount"]) for c in listed)
        found = conn.execute(
            'SELECT "limit", spent, held, remaining FROM budgets_now WHERE customer_id = %s', ("C-1",)).fetchone()
        assert found == (budget["limit"], budget["spent"], budget["held"], budget["remaining"])


def test_the_store_sql_is_translated_for_psycopg_without_touching_quoted_text(pg_url: str) -> None:
    from empower_cli.store.postgres import translate

    with open_db(pg_url) as store:  # a literal % beside parameters reaches the server as itself
        row = store.conn.execute("SELECT 'a%b:c?' || CAST(:x AS TEXT), 7 % 4", {"x": 5}).fetchone()
        assert tuple(row) == ("a%b:c?5", 3)

    assert translate("SELECT 1 FROM t WHERE a = ? AND b LIKE 'x%' AND c = :name AND d::text = 'a:b?' AND e % 2 = 0") \
        == "SELECT 1 FROM t WHERE a = %s AND b LIKE 'x%%' AND c = %(name)s AND d::text = 'a:b?' AND e %% 2 = 0"
