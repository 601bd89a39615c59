"""Shared fixtures: a real policy file and a real SQLite database under tmp_path (or, for
the modules that run on both backends, a fresh database on a real PostgreSQL server), and
the real CLI through Typer's CliRunner.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from empower_cli.cli.app import app
from empower_cli.policy.load import load_policy
from empower_cli.services.admin import default_policy_text
from empower_cli.store.backend import open_store, parse_location
from empower_cli.store.sqlite import Store
from tests.pg_server import Databases, PgServer, process_alive

ROOT = Path(__file__).resolve().parent.parent


def training_policy_text(extra: str = "") -> str:
    """The shipped policy with identity override on (tests act as several agents)."""
    text = default_policy_text().replace(
        "allow_identity_override = false", "allow_identity_override = true"
    )
    return text + extra


def write_policy(folder: Path, text: str | None = None, name: str = "policies.toml") -> Path:
    path = folder / name
    path.write_text(training_policy_text() if text is None else text, encoding="utf-8")
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    return write_policy(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "empower.db"


def open_db(location: Path | str) -> Store:
    """The store at a test's database, whichever backend it is on."""
    return open_store(parse_location(location))


# -- PostgreSQL: one real server for the whole run, a fresh database per test ---------------

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway server (tests/pg_server.py), stopped by its pid at the end of the run. Where
    none can start, the PostgreSQL tests fail under CI (EMPOWER_REQUIRE_POSTGRES=1, set by
    .ci/run) and are skipped, with the reason, elsewhere."""
    try:
        server = PgServer().start()
    except Exception as e:  # no binaries, no account to run them as, a failed initdb
        if os.environ.get("EMPOWER_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"no PostgreSQL server could be started here ({e})")
    pid = server.pid
    try:
        yield server
    finally:
        server.stop()
    assert pid is not None
    assert not process_alive(pid), "the PostgreSQL server outlived the tests"


@pytest.fixture(scope="session")
def pg_databases(pg_server: PgServer) -> Iterator[Databases]:
    databases = Databases(pg_server)
    yield databases
    databases.drop_all()


@pytest.fixture
def pg_url(pg_databases: Databases) -> Iterator[str]:
    """A new, empty database owned by the login `empower_owner`, as a URL with its password."""
    name = pg_databases.create()
    yield pg_databases.url(name)
    pg_databases.drop(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked sqlite_only checks SQLite's own mechanics (a query plan, a file, a
    downgrade with the sqlite3 module): its PostgreSQL variant is not collected."""
    dropped = [i for i in items if i.get_closest_marker("sqlite_only") and "[postgresql" in i.nodeid]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def backend_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """For a module's `db_path` fixture parametrised over BACKENDS: the SQLite file's path, or
    a fresh PostgreSQL database's URL (a str: the helpers and the CLI take either)."""
    if request.param == "sqlite":
        return tmp_path / "data" / "empower.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def policy(policy_path: Path) -> Any:
    return load_policy(policy_path)


CliFn = Callable[..., Result]


@pytest.fixture
def cli(policy_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliFn:
    """Run `empower ARGS` as AGENT against the tmp policy and database."""
    monkeypatch.delenv("EMPOWER_POLICY", raising=False)
    monkeypatch.delenv("EMPOWER_DB", raising=False)
    runner = CliRunner()

    def run(*args: str, agent: str = "alice", input: str | None = None) -> Result:
        env = {"EMPOWER_AGENT": agent, "EMPOWER_POLICY": str(policy_path), "EMPOWER_DB": str(db_path)}
        return runner.invoke(app, list(args), env=env, input=input)

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


LATE_RETURN = (
    "case", "new", "--customer", "C-1", "--type", "late_return",
    "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes",
    "--action", "refund", "--json",
)  # fmt: skip
JUSTIFICATION = "Loyal customer, item unused, receipt at hand"


def report_rows(name: str, out: Any) -> Any:
    """A report's JSON: the summary as it is, a table's rows from its `{period, rows}`."""
    if name == "summary":
        return out
    assert set(out) == {"period", "rows"}, out
    return out["rows"]


def apply_policy(cli: CliFn, folder: Path, text: str, *, by: str = "carol") -> None:
    """Rewrite the policy file and make it govern the database, as a supervisor does: the
    database governs, so a changed file alone changes nothing."""
    write_policy(folder, text)
    r = cli("policy", "apply", "--note", "changed for the test", agent=by)
    assert r.exit_code == 0, r.output


def acting_as(cli: CliFn, default_agent: str) -> CliFn:
    """The same CLI with another default agent (import needs can_approve or can_import)."""

    def run(*args: str, agent: str = default_agent, input: str | None = None) -> Result:
        return cli(*args, agent=agent, input=input)

    return run


# What the hardening modules tried, printed once at the end of the run (`pytest -q` shows it):
# module, its tally, and the sentence the figure goes in.
HARDENING_FIGURES = (
    ("tests.test_hardening_input", "_tried", "hostile input: {count} inputs tried through the CLI"),
    ("tests.test_hardening_policy", "_tally", "policy loader fuzz: {documents} documents, every problem located"),
    ("tests.test_hardening_env", "_faults", "environment faults: {count} runs against damaged or hostile environments"),
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    import sys

    lines = [text.format(**getattr(sys.modules[name], tally)) for name, tally, text in HARDENING_FIGURES
             if name in sys.modules and hasattr(sys.modules[name], tally)]  # fmt: skip
    if lines:
        terminalreporter.write_sep("-", "hardening figures")
        for line in lines:
            terminalreporter.write_line(line)
