"""Completion and choices (issue 14): shell completion offers commands, closed value sets and
the policy's case types and actions; `-h` is `--help`; closed sets are declared choices shown in
help; required options say so; a bad choice is still a usage error (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliFn, write_policy


def complete(words: str, tmp_path: Path) -> list[str]:
    """What bash completion offers for the last word of WORDS (Typer's complete_bash protocol)."""
    policy = write_policy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
               _EMPOWER_COMPLETE="complete_bash", EMPOWER_POLICY=str(policy))  # fmt: skip
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'empower'; "
                           "from empower_cli.cli.entry import main; main()"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        ("empower au", ["audit"]),
        ("empower case l", ["list"]),
        ("empower case list --status pending", ["pending_cosign", "pending_supervisor"]),
        ("empower case outcome 1 --reaction ", ["satisfied", "neutral", "dissatisfied"]),
        ("empower audit agents --format ", ["table", "tsv", "json", "csv", "markdown"]),
        ("empower case queue --format ", ["table", "tsv", "csv", "json"]),
        ("empower import cases f.csv --format ", ["csv", "jsonl"]),
        ("empower case new --type l", ["late_return"]),
        ("empower case new --type missed_flight --action ", ["rebook", "fee_waiver", "goodwill_credit"]),
    ],
)  # fmt: skip
def test_completion_offers_commands_choices_and_the_policys_values(words: str, offered: list[str],
                                                                   tmp_path: Path) -> None:  # fmt: skip
    assert complete(words, tmp_path) == offered


def test_completion_can_be_shown_and_installed(cli: CliFn) -> None:
    r = cli("--show-completion", "bash")
    assert r.exit_code == 0, r.output
    assert "_EMPOWER_COMPLETE=complete_bash" in r.stdout
    assert "--install-completion" in cli("--help").stdout


@pytest.mark.parametrize("command", [(), ("case",), ("case", "list"), ("audit", "summary"), ("import", "cases")])
def test_dash_h_is_help(cli: CliFn, command: tuple[str, ...]) -> None:
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.exit_code == long.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert "Usage:" in short.stdout


def test_help_shows_the_choices_and_what_is_required(cli: CliFn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # each option on one line
    assert "<approved|pending_cosign|pending_supervisor|denied|expired>" in cli("case", "list", "--help").stdout
    assert "<satisfied|neutral|dissatisfied>" in cli("case", "outcome", "--help").stdout
    assert "<table|tsv|csv|json>" in cli("customer", "show", "--help").stdout
    for command, flag in [("approve", "--note"), ("deny", "--note"), ("object", "--reason"),
                          ("outcome", "--reaction")]:  # fmt: skip
        text = cli("case", command, "--help").stdout
        line = next(line for line in text.splitlines() if f"│ * {flag}" in " ".join(line.split()))
        assert "*" in line, line  # Typer's mark of a required option
        assert "[required]" in text
    assert "[required]" in cli("customer", "segment", "--help").stdout


@pytest.mark.parametrize(
    "args",
    [("case", "list", "--status", "aproved"), ("case", "list", "--format", "xml"),
     ("audit", "summary", "--format", "xml"), ("case", "outcome", "1", "--reaction", "furious", "--lost"),
     ("case", "approve", "1"), ("case", "object", "1")],
)  # fmt: skip
def test_a_value_outside_its_choices_or_a_missing_required_option_exits_2(cli: CliFn,
                                                                          args: tuple[str, ...]) -> None:  # fmt: skip
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: ")


def test_choices_are_case_insensitive(cli: CliFn) -> None:
    assert cli("case", "list", "--status", "APPROVED").exit_code == 0
    assert cli("audit", "summary", "--format", "JSON").exit_code == 0


def test_the_declared_choices_match_the_cores_values() -> None:
    from empower_cli.cli.common import CaseStatus, ReactionChoice
    from empower_cli.core.models import REACTIONS, STATUSES

    assert tuple(s.value for s in CaseStatus) == STATUSES
    assert tuple(r.value for r in ReactionChoice) == REACTIONS


def test_under_json_a_usage_error_is_json_on_stderr_too(cli: CliFn) -> None:
    import json

    r = cli("case", "list", "--status", "aproved", "--json")
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    error = json.loads(r.stderr)["error"]
    assert (error["code"], error["exit_code"]) == ("usage", 2)
    assert "'aproved' is not one of" in error["message"]


def test_a_value_typer_cannot_parse_is_told_in_clicks_words_not_a_validation_librarys(cli: CliFn) -> None:
    """Typer 0.29 converted values with pydantic: "Input should be a valid integer, unable to
    parse string as an integer" leaked into errors (issue 14); the pin keeps Click's words."""
    r = cli("case", "list", "--limit", "x")
    assert r.exit_code == 2, r.output
    assert "Input should be" not in r.stderr
    assert "'x' is not a valid" in r.stderr
