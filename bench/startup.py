"""Start-up benchmark: how long `empower` takes to answer, next to its floors and a peer.

Run by hand (not a test): `.venv/bin/python bench/startup.py [--runs N]`. Every round runs
each command once, in a shuffled order, so all of them see the same machine state; the
table shows the median wall time per command and the ratios the project targets.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

TRIVIAL_APP = '''\
import typer

app = typer.Typer()


@app.command()
def main(name: str = typer.Option("world", "--name", help="Who to greet.")) -> None:
    """Say hello."""
    print(f"hello {name}")


if __name__ == "__main__":
    app()
'''

# The floor of a recorded decision: a bare script that reads the TOML policy, opens SQLite
# and inserts one row in a transaction, with nothing else (no CLI framework, no checks).
BARE_INSERT = '''\
import sqlite3
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    policy = tomllib.load(f)
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS rows (customer_id TEXT, amount INTEGER, version TEXT)")
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO rows VALUES (?, ?, ?)", ("C-1", 8990, policy["policy"]["version"]))
conn.execute("COMMIT")
conn.close()
'''

# (numerator, denominator, target, what the target means): the targets of issue 14
RATIOS = [
    ("empower --help", "trivial typer --help", 1.1, "target <="),
    ("empower --version", "python -c pass", 1.5, "target <="),
    ("empower case new --json", "sqlite-utils insert 1 row", 0.6, "target <="),
    ("empower case new --json", "bare python insert", 2.0, "stretch <="),
]


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found next to {sys.executable} or on PATH")
    return found


def prepare(work: Path) -> dict[str, list[str]]:
    """Write the temporary files and return the commands to time, by label."""
    app = work / "trivial_app.py"
    app.write_text(TRIVIAL_APP, encoding="utf-8")
    policy = work / "policies.toml"
    shutil.copyfile(ROOT / "empower_cli" / "default_policies.toml", policy)
    os.chmod(policy, 0o644)
    db = work / "empower.db"
    row = work / "row.json"
    row.write_text(json.dumps({"customer_id": "C-1", "amount": 8990, "note": "one row"}) + "\n", encoding="utf-8")
    empower = tool("empower")
    python = sys.executable
    # Create the database (and run the migrations) once, outside the timing.
    subprocess.run([empower, "--policy", str(policy), "--db", str(db), "init", str(work)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    # One new customer per run (see run()) so every decision takes the same path.
    decision = [
        empower, "--json", "--policy", str(policy), "--db", str(db), "case", "new",
        "--customer", "{customer}", "--type", "late_return", "--fact", "days_since_purchase=20",
        "--fact", "has_receipt=yes", "--action", "refund", "--amount", "42.00",
        "--justification", "Loyal customer, item unused, receipt at hand",
    ]  # fmt: skip
    bare = work / "bare_insert.py"
    bare.write_text(BARE_INSERT, encoding="utf-8")
    return {
        "python -c pass": [python, "-c", "pass"],
        "bare python insert": [python, str(bare), str(policy), str(work / "bare.db")],
        "trivial typer --help": [python, str(app), "--help"],
        "trivial typer command": [python, str(app), "--name", "bench"],
        "empower --version": [empower, "--version"],
        "empower --help": [empower, "--help"],
        "empower case new --json": decision,
        "sqlite-utils insert 1 row": [tool("sqlite-utils"), "insert", str(work / "peer.db"), "rows", str(row)],
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str], counter: int) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of the command."""
    args = [a.replace("{customer}", f"B-{counter}") for a in argv]
    cpu = cpu_seconds()
    start = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return elapsed, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command (at least 20)")
    runs = max(20, parser.parse_args().runs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMPOWER_", "PYTHON"))}
    env["COLUMNS"] = "100"
    with tempfile.TemporaryDirectory(prefix="empower-bench-") as tmp:
        commands = prepare(Path(tmp))
        times: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        counter = 0
        rng = random.Random(2)
        for round_no in range(runs + 1):  # round 0 warms caches and writes .pyc files
            order = list(commands)
            rng.shuffle(order)
            for label in order:
                counter += 1
                elapsed, used = run(commands[label], env, counter)
                if round_no:
                    times[label].append(elapsed)
                    cpu[label].append(used)
    medians = {label: statistics.median(ts) * 1000 for label, ts in times.items()}
    floor = medians["python -c pass"]
    print(f"{runs} runs each, interleaved; Python {sys.version.split()[0]}\n")
    # "- python": above the interpreter's own start; "cpu": median user + system time, which
    # other load on the machine disturbs less than wall time.
    print(f"{'command':<28}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'- python':>10}{'cpu ms':>9}")
    for label, ts in times.items():
        print(f"{label:<28}{medians[label]:>11.1f}{min(ts) * 1000:>9.1f}{max(ts) * 1000:>9.1f}"
              f"{medians[label] - floor:>10.1f}{statistics.median(cpu[label]) * 1000:>9.1f}")  # fmt: skip
    print()
    # Judged on wall time; the CPU-time ratio is shown beside it as a check on a busy machine.
    cpu_medians = {label: statistics.median(ts) for label, ts in cpu.items()}
    for num, den, target, kind in RATIOS:
        ratio = medians[num] / medians[den]
        ok = ratio <= target
        print(f"{num} / {den}: {ratio:.2f} (cpu {cpu_medians[num] / cpu_medians[den]:.2f})"
              f"  ({kind} {target}: {'ok' if ok else 'MISSED'})")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
