"""What `empower --help`, `--version` and a recorded `case new --json` import, checked
without timing: heavy modules kept off those paths stay off (see bench/startup.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from tests.conftest import write_policy

# Typer itself imports rich (and rich.markdown) to render --help, and pydantic to
# convert option values of a command that runs: those are its floor, not ours.
NEVER_ON_HELP = {"sqlite_utils", "pydantic", "tomllib", "sqlite3", "empower_cli.policy.load",
                 "empower_cli.store.sqlite", "empower_cli.services.cases", "empower_cli.core.evaluate",
                 "empower_cli.render.terminal"}  # fmt: skip
NEVER_ON_VERSION = NEVER_ON_HELP | {"rich", "typer", "click"}  # issue 14: answered before Typer loads


def run_empower(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime -m empower_cli ARGS`; return the result and the modules imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "empower_cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False,
    )  # fmt: skip
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "empower_cli" in modules, done.stderr[-2000:]  # the parse found the -X importtime lines
    return done, modules


def test_help_imports_no_command_implementation(tmp_path: Path) -> None:
    done, modules = run_empower("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "case" in done.stdout
    assert not modules & NEVER_ON_HELP, sorted(modules & NEVER_ON_HELP)


def test_group_help_imports_no_store_or_policy(tmp_path: Path) -> None:
    done, modules = run_empower("case", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    heavy = {"sqlite_utils", "sqlite3", "tomllib", "empower_cli.store.sqlite", "empower_cli.policy.load"}
    assert not modules & heavy, sorted(modules & heavy)


def test_version_imports_neither_typer_nor_rich(tmp_path: Path) -> None:
    done, modules = run_empower("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not modules & NEVER_ON_VERSION, sorted(modules & NEVER_ON_VERSION)


def test_version_alone_prints_what_the_version_option_prints(tmp_path: Path) -> None:
    from empower_cli import __version__

    fast, _ = run_empower("--version", cwd=tmp_path)
    through_typer, _ = run_empower("--json", "--version", cwd=tmp_path)
    assert fast.returncode == through_typer.returncode == 0
    assert fast.stdout == through_typer.stdout == f"empower {__version__}\n"


def test_the_command_line_names_the_group_it_runs() -> None:
    from empower_cli.cli.main import invoked_group, root_app

    root = root_app()
    assert invoked_group(["--json", "case", "new", "--customer", "audit"], root) == "case"
    assert invoked_group(["--db", "case", "audit", "summary"], root) == "audit"  # "case" is --db's value
    assert invoked_group(["--policy", "import", "--json", "case", "list"], root) == "case"
    assert invoked_group(["--policy=p.toml", "customer", "show", "C-1"], root) == "customer"
    assert invoked_group(["cases"], root) is None
    assert invoked_group(["--help"], root) is None


def test_a_new_global_option_with_a_value_routes_to_the_group_after_its_value() -> None:
    from empower_cli.cli.main import invoked_group, root_app

    assert invoked_group(["--region", "audit", "case", "new"], root_app()) == "audit"  # not an option of ours
    root = typer.Typer()

    @root.callback()
    def with_region(
        region: Annotated[str | None, typer.Option("--region", "-r", help="A value.")] = None,
        quiet: Annotated[bool, typer.Option("--quiet/--loud", help="A flag.")] = False,
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="A counter.")] = 0,
    ) -> None:
        """A root with more global options than ours."""

    assert invoked_group(["--region", "audit", "case", "new"], root) == "case"
    assert invoked_group(["-r", "audit", "--loud", "-v", "customer", "show"], root) == "customer"
    assert invoked_group(["--quiet", "audit", "summary"], root) == "audit"


def test_a_case_command_loads_no_other_group(tmp_path: Path) -> None:
    write_policy(tmp_path)
    done, modules = run_empower("case", "list", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"rows": [], "truncated": False, "limit": 100}
    others = {"empower_cli.cli.audit_cmd", "empower_cli.cli.import_cmd", "empower_cli.cli.customer"}
    assert not modules & others, sorted(modules & others)


def test_the_top_level_help_lists_every_group_with_its_help(tmp_path: Path) -> None:
    from empower_cli.cli.app import app
    from empower_cli.cli.main import GROUPS

    done, _ = run_empower("--help", cwd=tmp_path)
    listed = " ".join(done.stdout.split())
    for name, (_, help_text) in GROUPS.items():
        assert name in listed
        assert " ".join(help_text.split()[:4]) in listed, name
    assert {g.name for g in app.registered_groups} == set(GROUPS)


def test_the_command_modules_on_the_hot_paths_give_typer_real_annotations() -> None:
    """Typer eval()s each string annotation of every command it converts, on every start
    (the six workflow steps cost ~1.5 ms more with `from __future__ import annotations`)."""
    import __future__

    import importlib

    from empower_cli.cli.main import GROUPS

    hot = ["empower_cli.cli.main", *(m for group in ("case", "customer", "policy") for m in GROUPS[group][0])]
    deferred = [m for m in hot if vars(importlib.import_module(m)).get("annotations") is __future__.annotations]
    assert deferred == []


# Loaded by nothing a flag-only `case new --json` needs (issue 14). `-X importtime` cannot
# show this: it misses modules loaded with importlib.import_module (the command modules),
# so these are read from sys.modules as the process exits.
HEAVY_FOR_A_JSON_DECISION = {
    "rich", "jinja2", "psycopg", "pydantic", "sqlite_utils", "csv", "multiprocessing", "typer.rich_utils",
    "empower_cli.render.terminal", "empower_cli.store.postgres", "empower_cli.cli.walkthrough",
    "empower_cli.cli.audit_cmd", "empower_cli.cli.import_cmd", "empower_cli.cli.customer", "empower_cli.cli.db_cmd",
    "empower_cli.imports.run", "empower_cli.audit.reports",
    "hashlib", "_hashlib",  # OpenSSL's libcrypto: ~2.5 ms to load for three small hashes (core.digest)
}  # fmt: skip


def modules_at_exit(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -m empower_cli ARGS` (the console script's code) in a real process; return
    the result and every module loaded when it exits (from an atexit hook around it)."""
    out = cwd / "modules.json"
    wrapper = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "runpy.run_module('empower_cli', run_name='__main__', alter_sys=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60, check=False)  # fmt: skip
    return done, set(json.loads(out.read_text(encoding="utf-8")))


def test_a_recorded_json_decision_loads_no_heavy_module(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    db = tmp_path / "empower.db"
    created, _ = modules_at_exit("--policy", str(policy), "--db", str(db), "init", str(tmp_path), cwd=tmp_path)
    assert created.returncode == 0, created.stderr[-2000:]
    done, modules = modules_at_exit(
        "--json", "--policy", str(policy), "--db", str(db), "case", "new", "--customer", "C-1",
        "--type", "late_return", "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes",
        "--action", "refund", "--amount", "42.00", "--justification", "Loyal customer, item unused, receipt at hand",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    decision = json.loads(done.stdout)
    assert decision["status"] == "approved"
    assert {"empower_cli.cli.case", "empower_cli.services.cases", "sqlite3"} <= modules  # the hook saw the run
    assert not modules & HEAVY_FOR_A_JSON_DECISION, sorted(modules & HEAVY_FOR_A_JSON_DECISION)
    import sqlite3

    with sqlite3.connect(db) as conn:  # recorded, without the modules it did not load
        row = conn.execute("SELECT customer_id, amount, status FROM cases WHERE id = ?",
                           (decision["case_id"],)).fetchone()  # fmt: skip
    assert row == ("C-1", 4200, "approved")


def test_the_command_line_names_the_command_it_runs() -> None:
    from empower_cli.cli.main import invoked_command, root_app

    root = root_app()
    assert invoked_command(["--json", "case", "new", "--customer", "C-1"], root) == ("case", "new")
    assert invoked_command(["--db", "case", "audit", "summary"], root) == ("audit", "summary")
    assert invoked_command(["case"], root) == ("case", None)
    assert invoked_command(["case", "--help", "new"], root) == ("case", None)  # the group's help
    assert invoked_command(["--help", "case", "new"], root) == ("case", None)  # the root's help
    assert invoked_command(["-h", "case", "new"], root) == ("case", None)
    assert invoked_command(["init", "."], root) == (None, None)
    assert invoked_command([], root) == (None, None)


def test_a_command_line_converts_only_the_command_it_runs() -> None:
    from empower_cli.cli.app import app
    from empower_cli.cli.main import build_app

    def commands(root: typer.Typer, group: str) -> list[str | None]:
        (info,) = [g for g in root.registered_groups if g.name == group]
        assert info.typer_instance is not None
        return [c.name for c in info.typer_instance.registered_commands]

    only = build_app("case", "new")
    assert commands(only, "case") == ["new"]
    assert only.registered_commands == []  # no `init` either
    assert commands(build_app("case", "neww"), "case") == commands(app, "case")  # "Did you mean 'new'?"
    assert len(commands(app, "case")) > 1


def test_a_command_built_alone_answers_as_in_the_whole_app(tmp_path: Path) -> None:
    """What the console script prints for one command's --help or a usage error is what the
    complete app prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")} | {"COLUMNS": "100"}
    whole = "from empower_cli.cli.app import app; app(prog_name='empower')"
    for args in (["case", "new", "--help"], ["case", "show", "-h"], ["case", "new", "--amount"],
                 ["case", "show", "x"], ["customer", "show"], ["case", "neww"]):  # fmt: skip
        alone = subprocess.run([str(Path(sys.executable).parent / "empower"), *args], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=60, check=False)  # fmt: skip
        full = subprocess.run([sys.executable, "-c", whole, *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=60, check=False)  # fmt: skip
        assert (alone.returncode, alone.stdout, alone.stderr) == (full.returncode, full.stdout, full.stderr), args


def test_the_collector_is_paused_for_start_up_only() -> None:
    import gc

    from empower_cli.cli import entry

    assert gc.isenabled()
    try:
        entry.pause_collector()
        assert not gc.isenabled()
        entry.resume_collector()  # what Root.invoke does before the command
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
    frozen = gc.get_freeze_count()
    entry.resume_collector()  # not paused (a test's CliRunner): nothing is frozen
    assert gc.get_freeze_count() == frozen == 0


def test_every_model_class_has_a_docstring() -> None:
    """Python 3.11's dataclass builds a missing docstring with inspect.signature(): on every start."""
    import dataclasses

    from empower_cli.core import models

    classes = [c for c in vars(models).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]
    assert len(classes) >= 12
    assert [c.__name__ for c in classes if not c.__doc__ or c.__doc__.startswith(c.__name__ + "(")] == []


def test_the_builtin_sha256_gives_hashlibs_digest() -> None:
    import hashlib

    from empower_cli.core.digest import sha256_hex

    for data in (b"", b"abc", "politique ✓".encode(), bytes(range(256)) * 300):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
