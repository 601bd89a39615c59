"""Every command is documented: help text, an `Example:` line in its docstring (its --help),
and a mention in the README ("empower case new"). New commands fail here until documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from empower_cli.cli.app import app
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


# Typer 0.26+ ships its own copy of Click: test the shape, not click's classes.
Command = Any


def is_group(command: Command) -> bool:
    return hasattr(command, "commands")


def walk(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    if is_group(command):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(typer.main.get_command(app)))
LEAVES = [(path, cmd) for path, cmd in COMMANDS if path and not is_group(cmd)]
GROUPS = [(path, cmd) for path, cmd in COMMANDS if is_group(cmd)]


def name(path: tuple[str, ...]) -> str:
    return " ".join(("empower", *path))


def test_the_walk_finds_the_core_commands() -> None:
    found = {name(path) for path, _ in LEAVES}
    assert {"empower init", "empower case new", "empower case show", "empower case list",
            "empower customer show", "empower policy check", "empower policy show"} <= found  # fmt: skip


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[name(p) for p, _ in COMMANDS])
def test_every_command_and_group_has_help_text(path: tuple[str, ...], command: Command) -> None:
    assert (command.help or "").strip(), f"{name(path)} has no help text"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[name(p) for p, _ in LEAVES])
def test_every_command_docstring_ends_with_an_example(path: tuple[str, ...], command: Command) -> None:
    lines = [line.strip() for line in (command.help or "").strip().splitlines()]
    examples = [line for line in lines if line.startswith("Example:")]
    assert examples, f"{name(path)}: its docstring has no 'Example:' line"
    assert examples[0].removeprefix("Example:").strip().startswith(name(path)), (
        f"{name(path)}: the example should show the command itself, got {examples[0]!r}"
    )
    assert lines[-1].startswith("Example:") or lines[-1].startswith(name(path)), (
        f"{name(path)}: the docstring should end with its Example: line"
    )


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[name(p) for p, _ in LEAVES])
def test_every_command_is_in_the_readme(path: tuple[str, ...], command: Command) -> None:
    assert name(path) in README, f"README.md does not mention `{name(path)}`"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[name(p) for p, _ in LEAVES])
def test_every_option_has_help(path: tuple[str, ...], command: Command) -> None:
    missing = [p.name for p in command.params if p.param_type_name == "option" and not (p.help or "").strip()]
    assert not missing, f"{name(path)}: options without help: {missing}"


def test_help_runs_for_every_command() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    for path, _ in COMMANDS:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (name(path), r.output)
        assert "Usage:" in r.output
