"""A closed stdout (`empower … | head -1`, `| head -0`) ends every command quietly with exit 0,
as git and gh do: no message, no traceback. Checked through real pipes, in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliFn
from tests.workflow_support import new_case

FORMATS = ("table", "tsv", "json", "csv", "markdown")
REPORTS = ("summary", "agents", "rules", "customers", "pairs", "outcomes")
FLAG_DECISION = ("case", "new", "--customer", "C-9", "--type", "late_return", "--fact", "days_since_purchase=20",
                 "--fact", "has_receipt=yes", "--action", "refund", "--amount", "20.00", "--justification",
                 "Long-time customer, item unused, receipt at hand")  # fmt: skip
COMMANDS = [
    *[("audit", report, "--format", fmt) for report in REPORTS for fmt in FORMATS],
    ("audit", "head"), ("audit", "verify"), ("audit", "verify", "--json"),
    *[(*command, "--format", fmt) for command in (("case", "list"), ("case", "queue"), ("customer", "show", "C-1"))
      for fmt in ("table", "tsv", "csv", "json")],
    ("case", "list"), ("case", "list", "--json"), ("case", "queue"), ("case", "queue", "--json"),
    ("case", "show", "1"), ("case", "show", "1", "--json"),
    ("customer", "show", "C-1"), ("customer", "show", "C-1", "--json"),
    ("policy", "show"), ("policy", "log"), ("policy", "check"),
    ("--help",), ("-h",), ("case", "--help"), ("audit", "summary", "--help"), ("--version",),
    FLAG_DECISION, (*FLAG_DECISION, "--json"),
]  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database with cases in every state the reports show, and the environment to reach it."""
    from typer.testing import CliRunner

    from empower_cli.cli.app import app
    from tests.conftest import write_policy

    folder = tmp_path_factory.mktemp("pipes")
    env = {"EMPOWER_POLICY": str(write_policy(folder)), "EMPOWER_DB": str(folder / "data" / "empower.db")}
    runner = CliRunner()

    def cli(*args: str, agent: str = "alice", input: str | None = None) -> object:
        return runner.invoke(app, list(args), env={**env, "EMPOWER_AGENT": agent}, input=input)

    run: CliFn = cli  # type: ignore[assignment]
    for n in range(3):
        new_case(run, customer=f"C-{n + 1}")  # 150.00: waits for a co-sign
    new_case(run, customer="C-4", amount="50.00")
    run("case", "cosign", "1", "--note", "Checked, fair", agent="bob")
    run("case", "object", "2", "--reason", "Too many exceptions", agent="bob")
    run("case", "outcome", "1", "--reaction", "satisfied", "--retained", agent="bob")
    return {**{k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}, **env,
            "EMPOWER_AGENT": "carol", "COLUMNS": "100"}  # fmt: skip


def run_into_closed_pipe(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `empower ARGS` with stdout a pipe whose reader has already gone."""
    child = subprocess.Popen([sys.executable, "-m", "empower_cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=cwd)  # fmt: skip
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()  # the reader is gone before the first write, like `| head -0`
    err = child.stderr.read().decode(errors="replace")
    return child.wait(timeout=60), err


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_stdout_ends_the_command_quietly(args: tuple[str, ...], workspace: dict[str, str],
                                                  tmp_path: Path) -> None:  # fmt: skip
    code, err = run_into_closed_pipe(args, workspace, tmp_path)
    # stderr keeps what it always shows (an evaluation panel, a note), and nothing about the pipe
    assert not [w for w in ("error", "Traceback", "Exception", "Broken") if w in err], err
    assert code == 0, err


def test_head_1_of_a_long_csv_report_prints_its_header_and_ends_quietly(workspace: dict[str, str],
                                                                          tmp_path: Path) -> None:  # fmt: skip
    script = f"set -o pipefail; {sys.executable} -m empower_cli audit summary --format csv | head -1"
    done = subprocess.run(["bash", "-c", script], env=workspace, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "metric,value\n"
    assert "error" not in done.stderr
    assert "Traceback" not in done.stderr
