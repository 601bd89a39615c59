"""PostgreSQL against SQLite in one run (issue 12): decisions per second from 16 processes
spending on distinct customers, and `empower import cases` rows per second.

Run by hand (not a test); it starts a throwaway PostgreSQL server (tests/pg_server.py) and
stops it at the end:

    .venv/bin/python bench/postgres.py                 # 200,000 import rows, 16 x 50 decisions
    .venv/bin/python bench/postgres.py -n 50000 --decisions 20
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg_server import Databases, running_server  # noqa: E402


def _import_bench() -> Any:
    """bench/import.py (a keyword as a name: loaded by path) for its generator and timer."""
    spec = importlib.util.spec_from_file_location("bench_import", ROOT / "bench" / "import.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _import_bench()
generate, importer_policy, measure = _bench.generate, _bench.importer_policy, _bench.measure

PROCESSES = 16
# One worker: records `count` decisions for its own customers through the service, as
# `case new` does, each one transaction with its budget check (start-up is not measured).
WORKER = """
import sys, time
from empower_cli.core.timeutil import utcnow
from empower_cli.services.cases import CaseInput, open_case
from empower_cli.services.governance import applied_policy
from empower_cli.services.identity import Identity
from empower_cli.store.backend import open_store, parse_location
db, worker, count, barrier = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open_store(parse_location(db)) as store:
    policy = applied_policy(store).policy
    me = Identity(agent=f"agent{worker}", os_user="bench", role=policy.roles["senior"])
    import os
    while not os.path.exists(barrier):
        time.sleep(0.001)
    start = time.perf_counter()
    for k in range(count):
        case = CaseInput(customer_id=f"C-{worker}-{k % 5}", case_type="late_return",
                         facts={"days_since_purchase": "20", "has_receipt": "yes"}, action="refund",
                         amount="20.00", justification="Loyal customer, item unused, receipt at hand")
        open_case(case, policy=policy, store=store, identity=me, now=utcnow())
    print(time.perf_counter() - start)
"""


def decisions(db: str, policy: Path, work: Path, count: int) -> float:
    """Decisions per second, all 16 processes together (first to last decision)."""
    env = {**os.environ, "EMPOWER_POLICY": str(policy), "PYTHONPATH": str(ROOT)}
    subprocess.run([str(Path(sys.executable).parent / "empower"), "--db", db, "init", str(work)], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    barrier = work / f"go-{time.monotonic_ns()}"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db, str(i), str(count), str(barrier)], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(PROCESSES)]  # fmt: skip
    time.sleep(2.0)
    start = time.perf_counter()
    barrier.touch()
    for p in procs:
        p.wait(timeout=600)
        if p.returncode:
            sys.exit("a decision worker failed")
    return PROCESSES * count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="rows to import")
    parser.add_argument("--decisions", type=int, default=50, help="decisions per process")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="empower-bench-pg-"))
    try:
        with running_server() as server:
            databases = Databases(server)
            run(work, databases, args.n, args.decisions)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, databases: Databases, n: int, count: int) -> None:
    policy = work / "policies.toml"
    shutil.copy(ROOT / "policies.toml", policy)
    importer_policy(policy)
    # On PostgreSQL the database login acts: the bench's login imports as a supervisor too.
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace('dave = "senior"', 'dave = "senior"\nempower_owner = "supervisor"'), "utf-8")
    data = work / "history.csv"
    generate(data, n)
    env = {**os.environ, "EMPOWER_POLICY": str(policy)}
    empower = str(Path(sys.executable).parent / "empower")
    rows: dict[str, float] = {}
    for name, db in (("SQLite", str(work / "import.db")), ("PostgreSQL", databases.url(databases.create()))):
        elapsed, rss, cpu = measure([empower, "--db", db, "--json", "import", "cases", str(data)], env)
        rows[name] = n / elapsed
        print(f"import {n:,} rows into {name:<10}: {elapsed:6.1f} s  {n / elapsed:9,.0f} rows/s  "
              f"empower's CPU {cpu:5.1f} s  peak RSS {rss:.0f} MiB")
    per_s: dict[str, float] = {}
    for name, db in (("SQLite", str(work / "decide.db")), ("PostgreSQL", databases.url(databases.create()))):
        per_s[name] = decisions(db, policy, work, count)
        print(f"{PROCESSES} processes x {count} decisions on {name:<10}: {per_s[name]:7.0f} decisions/s")
    print("(empower's CPU: the importer and its workers; PostgreSQL's server works on the same two cores here)")
    print(f"\nPostgreSQL / SQLite: import {rows['PostgreSQL'] / rows['SQLite']:.2f}x (target >= 1.0x), "
          f"decisions {per_s['PostgreSQL'] / per_s['SQLite']:.2f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
