"""The edge of the program (cli/main.py, cli/common.py): every failure of every command leaves
through one place, as one line on stderr with the SPEC §5 exit code, and each group module
adds its commands only when asked to.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from empower_cli.cli.app import app
from empower_cli.cli.common import Root
from empower_cli.cli.main import GROUPS, build_app
from empower_cli.core import errors
from tests.conftest import CliFn

# One command of each module that registers commands; each reads the applied policy first.
COMMANDS = [
    ("case", "list"),
    ("case", "queue"),
    ("customer", "show", "C-1"),
    ("policy", "log"),
    ("policy", "simulate", "new.toml"),
    ("import", "cases", "history.csv"),
    ("audit", "summary"),
]
FAILURES = [
    (errors.InvalidInput("--note", "is required"), 2, "error: --note: is required"),
    (errors.PolicyError("policies.toml: 2 problems", ("line 1: a", "line 2: b")), 3,
     "error: policies.toml: 2 problems\n  line 1: a\n  line 2: b"),
    (errors.NotAllowed("bob (agent) may not do this"), 4, "error: bob (agent) may not do this"),
    (errors.NotFound("case 7 does not exist"), 5, "error: case 7 does not exist"),
    (errors.Conflict("case 7 is already settled"), 6, "error: case 7 is already settled"),
    (RuntimeError("boom"), 1, "error: internal error: RuntimeError: boom (set EMPOWER_DEBUG=1 for details)"),
    (sqlite3.OperationalError("disk I/O error"), 1,
     "error: the database failed: disk I/O error; nothing more was recorded"),
    (KeyboardInterrupt(), 130, "error: interrupted: nothing was recorded"),
]  # fmt: skip


def failing_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Every command that reads the applied policy fails with ERROR there."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr("empower_cli.services.governance.applied_policy", fail)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("error", "code", "message"), FAILURES, ids=lambda v: type(v).__name__)
def test_every_failure_of_every_group_leaves_as_one_message_and_its_exit_code(
    cli: CliFn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], error: BaseException,
    code: int, message: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "history.csv").write_text("external_id\n", encoding="utf-8")
    failing_with(monkeypatch, error)
    r = cli(*command)
    assert r.exit_code == code, r.output
    assert r.stderr == message + "\n"
    assert r.stdout == ""
    r = cli(*command, "--json")  # under --json: one line of JSON on stderr, the same exit code
    assert r.exit_code == code, r.output
    assert r.stdout == ""
    [line] = r.stderr.splitlines()
    shown = json.loads(line)["error"]
    assert shown["exit_code"] == code
    assert shown["code"] == {1: "internal", 2: "invalid_input", 3: "policy", 4: "not_allowed", 5: "not_found",
                             6: "conflict", 130: "interrupted"}[code]  # fmt: skip
    first, *problems = message.split("\n")
    assert shown["message"] == first.removeprefix("error: ")
    assert shown.get("problems", []) == [p.strip() for p in problems]


def test_a_root_command_fails_through_the_same_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise errors.Conflict("the database is busy")

    monkeypatch.setattr("empower_cli.services.admin.initialise", fail)
    r = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert r.exit_code == 6, r.output
    assert r.stderr == "error: the database is busy\n"


def test_with_empower_debug_an_unexpected_failure_keeps_its_traceback(
    cli: CliFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_with(monkeypatch, RuntimeError("boom"))
    monkeypatch.setenv("EMPOWER_DEBUG", "1")
    r = cli("case", "list")
    assert isinstance(r.exception, RuntimeError), r.output
    assert "internal error" not in r.stderr
    failing_with(monkeypatch, errors.NotFound("case 7 does not exist"))  # a business error stays one line
    r = cli("case", "show", "7")
    assert r.exit_code == 5, r.output
    assert r.stderr == "error: case 7 does not exist\n"


def test_a_missing_required_option_exits_2_in_one_line_not_1() -> None:
    root = typer.Typer(cls=Root, add_completion=False)

    @root.callback()
    def options() -> None:
        """A root like ours."""

    @root.command()
    def greet(name: Annotated[str, typer.Option("--name", help="Required: no default.")]) -> None:
        """Needs --name."""

    r = CliRunner().invoke(root, ["greet"])
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines() == ["error: Missing option '--name'. (see: root greet --help)"]


@pytest.mark.parametrize("args", [(), ("case",), ("audit",)], ids=lambda a: " ".join(("empower", *a)))
def test_the_root_or_a_group_without_arguments_shows_its_help_and_exits_2(args: tuple[str, ...]) -> None:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 2, r.output
    assert f"Usage: {' '.join(('empower', *args))} [OPTIONS] COMMAND [ARGS]..." in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("name", list(GROUPS))
def test_a_group_module_adds_its_commands_only_when_asked(name: str) -> None:
    modules, _ = GROUPS[name]
    for module in map(importlib.import_module, modules):
        assert callable(module.register), module.__name__
        assert not [v for v in vars(module).values() if isinstance(v, typer.Typer)], module.__name__
    first, second = commands_of(build_app(name), name), commands_of(build_app(name), name)
    assert first == second  # built afresh each time: nothing was added to a shared app
    assert len(set(first)) == len(first) > 0


def commands_of(root: typer.Typer, name: str) -> list[str | None]:
    (group,) = [g.typer_instance for g in root.registered_groups if g.name == name]
    assert group is not None
    return [c.name for c in group.registered_commands]
