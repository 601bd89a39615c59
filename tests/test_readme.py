"""The README runs (issue 14): every shell example, in the order the README gives them, run
as written by bash in a fresh workspace, each later example using what earlier ones created.

What the harness adds, and only that: the workspace's policy (written into `shop/` before
`empower init ./shop`, which keeps it) lets EMPOWER_AGENT name the agent, and an `empower`
wrapper first on PATH acts as the person each step belongs to — a supervisor (carol) for
`approve`, `deny`, `customer segment`, `policy apply` and `import`, a colleague (dave) for
`cosign` and `object`, the agent alice for everything else. The two blocks of the Quick
start (they install the package and run this very suite) and the examples that need a
PostgreSQL server at the README's example host are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, training_policy_text

# Not run: the Quick start (it installs, and runs this very suite) and what needs a
# PostgreSQL server at the README's example host.
NOT_RUN = ("pip install", "postgresql://")
WRAPPER = """#!/bin/bash
case "$1 $2" in
  "case approve"|"case deny"|"customer segment"|"policy apply"|"import cases") agent=carol ;;
  "case cosign"|"case object") agent=dave ;;
  *) agent=alice ;;
esac
EMPOWER_AGENT=$agent exec {python} -m empower_cli "$@"
"""


def shell_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [b for b in blocks if not any(skip in b for skip in NOT_RUN)]


def test_the_readme_has_shell_examples_for_every_group() -> None:
    script = "\n".join(shell_examples())
    for group in ("init", "case new", "case cosign", "case approve", "customer show", "policy simulate",
                  "import cases", "audit verify"):  # fmt: skip
        assert f"empower {group}" in script, group


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_shell_example_of_the_readme_runs_in_order(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "empower"
    wrapper.write_text(WRAPPER.format(python=sys.executable), encoding="utf-8")
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    (work / "shop").mkdir(parents=True)
    policy = work / "shop" / "policies.toml"
    policy.write_text(training_policy_text(), encoding="utf-8")
    policy.chmod(0o644)
    # One bash for the whole README, so `cd shop` holds for what follows; the first failing
    # command is named, with the README's own text.
    script = "set -eu -o pipefail\ntrap 'echo \"README example failed ($?): $BASH_COMMAND\" >&2' ERR\n"
    script += "\n".join(shell_examples())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMPOWER_", "PYTHON"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path), NO_COLOR="1",
               COLUMNS="100")  # fmt: skip
    done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("error:")], done.stderr
    out = done.stdout
    assert "recorded case 2: pending_cosign" in out
    assert "recorded case 4: pending_supervisor" in out
    assert "co-signed case 2: now approved" in out
    assert "ok: the chain verifies" in out
    assert "the kept head" in out  # verify --expect found the head kept by `audit head`
    shop = work / "shop"
    assert (shop / "approved.csv").read_text(encoding="utf-8").startswith("case_id,opened_at,")
    assert (shop / "customers.csv").read_text(encoding="utf-8").startswith("customer_id,")
