"""Benchmark `empower import cases` against `sqlite-utils insert DB cases FILE --csv`.

Run by hand (not a test): generates N synthetic historical cases for the shipped policy's
case types in two shapes, times both tools on the same CSV file in one run, and prints for
each shape the medians of wall time, CPU seconds (worker processes included), rows/s,
their ratios and peak RSS.

- wide: 20 columns (every case type's facts), justifications of 60-120 characters,
  about 210 bytes a row;
- narrow: 11 columns (one case type), justifications just over the policy's
  min_justification_chars, about 120 bytes a row: per-row costs dominate.

    .venv/bin/python bench/import.py              # 1,000,000 rows, both shapes
    .venv/bin/python bench/import.py -n 200000 --repeat 3 --shape narrow   # medians of 3 rounds
    git archive main | tar -x -C /tmp/base      # an earlier empower, timed in the same rounds:
    .venv/bin/python bench/import.py -n 200000 --repeat 3 --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORDS = ("customer", "loyal", "item", "unused", "receipt", "store", "manager", "agreed", "long", "time",
         "delay", "courier", "damaged", "box", "original", "packaging", "flight", "traffic", "gate", "family",
         "warranty", "repair", "week", "late", "apologised", "goodwill", "first", "complaint", "years")  # fmt: skip
AGENTS = ("alice", "bob", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory")
HEADER = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
          "justification", "cosigner", "supervisor", "reaction", "retained",
          "fact.days_since_purchase", "fact.has_receipt", "fact.days_past_warranty",
          "fact.minutes_late", "fact.cause", "fact.nights", "fact.topic")  # fmt: skip


NARROW_HEADER = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
                 "justification", "fact.days_since_purchase", "fact.has_receipt")  # fmt: skip
SHAPES = ("wide", "narrow")


def justification(rng: random.Random, low: int = 60, high: int = 120) -> str:
    target = rng.randint(low, high)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < target:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:target].capitalize()


def row(i: int, rng: random.Random, now: dt.datetime) -> list[str]:
    kind = rng.random()
    facts = [""] * 7
    if kind < 0.35:
        ctype, action = "late_return", rng.choice(("refund", "exchange", "goodwill_credit"))
        facts[0], facts[1] = str(rng.randint(0, 40)), rng.choice(("yes", "yes", "yes", "no"))
    elif kind < 0.6:
        ctype, action = "expired_warranty", rng.choice(("free_repair", "goodwill_credit"))
        facts[2] = str(rng.randint(0, 120))
    elif kind < 0.85:
        ctype, action = "missed_flight", rng.choice(("rebook", "fee_waiver", "goodwill_credit"))
        facts[3], facts[4] = str(rng.randint(0, 900)), rng.choice(("traffic", "medical", "airline", "other"))
    elif kind < 0.97:
        ctype, action = "hotel_complaint", rng.choice(("free_night", "goodwill_credit"))
        facts[5] = str(rng.randint(1, 14))
    else:
        ctype, action = "financial_advice", rng.choice(("fee_waiver", "goodwill_credit"))
        facts[6] = rng.choice(("mortgage rates", "pension transfer", "medication dosage"))
    opened = now - dt.timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
    agent = rng.choice(AGENTS)
    status = rng.choices(("approved", "denied", "pending_cosign", "expired"), (85, 8, 4, 3))[0]
    cosigner = rng.choice([a for a in AGENTS if a != agent]) if rng.random() < 0.2 else ""
    return [
        f"LEG-{opened:%Y}-{i:08d}", f"C-{rng.randint(1, 250_000):06d}", agent,
        opened.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(("", "Z", "+02:00")), ctype, action,
        f"{rng.randint(500, 60_000) / 100:.2f}", status, justification(rng), cosigner,
        "carol" if status == "denied" else "", rng.choice(("satisfied", "neutral", "dissatisfied", "")),
        rng.choice(("yes", "no", "")), *facts,
    ]  # fmt: skip


def narrow_row(i: int, rng: random.Random, now: dt.datetime, min_chars: int) -> list[str]:
    """A late return with its two facts and a short justification (every row is valid)."""
    opened = now - dt.timedelta(seconds=rng.randint(3600, 3 * 365 * 86400))
    status = rng.choices(("approved", "denied", "pending_cosign", "expired"), (85, 8, 4, 3))[0]
    return [
        f"LEG-{opened:%Y}-{i:08d}", f"C-{rng.randint(1, 250_000):06d}", rng.choice(AGENTS),
        opened.strftime("%Y-%m-%dT%H:%M:%SZ"), "late_return", rng.choice(("refund", "exchange", "goodwill_credit")),
        f"{rng.randint(500, 20_000) / 100:.2f}", status, justification(rng, min_chars, min_chars + 6),
        str(rng.randint(0, 40)), rng.choice(("yes", "yes", "yes", "no")),
    ]  # fmt: skip


def min_justification_chars() -> int:
    import tomllib

    with (ROOT / "policies.toml").open("rb") as f:
        return int(tomllib.load(f)["policy"]["min_justification_chars"])


def generate(path: Path, n: int, seed: int = 7, shape: str = "wide") -> None:
    rng = random.Random(seed)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    min_chars = min_justification_chars()
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER if shape == "wide" else NARROW_HEADER)
        for i in range(n):
            writer.writerow(row(i, rng, now) if shape == "wide" else narrow_row(i, rng, now, min_chars))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="rows to generate (default 1,000,000)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds, alternating which tool goes first; medians are reported (a shared machine)",
    )
    parser.add_argument("--shape", choices=(*SHAPES, "both"), default="both", help="which file shape (default both)")
    parser.add_argument("--baseline", type=Path, help="the source tree of another empower to time in the same rounds "
                        "(run as `python -m empower_cli` with PYTHONPATH set to it): before/after under one load")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--profile", action="store_true", help="also profile empower's import with cProfile")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="empower-bench-"))
    try:
        for shape in SHAPES if args.shape == "both" else (args.shape,):
            run(work, args.n, repeat=max(1, args.repeat), profile=args.profile, shape=shape, baseline=args.baseline)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def importer_policy(path: Path) -> None:
    """The shipped policy, with the account running the bench as a supervisor: importing
    history needs can_approve or can_import."""
    from empower_cli.services.identity import os_account

    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('dave = "senior"', f'dave = "senior"\n"{os_account()}" = "supervisor"'), "utf-8")
    os.chmod(path, 0o644)


def run(work: Path, n: int, *, repeat: int, profile: bool, shape: str, baseline: Path | None = None) -> None:
    data = work / f"history-{shape}.csv"
    t0 = time.perf_counter()
    generate(data, n, shape=shape)
    size = data.stat().st_size
    print(f"\n== {shape}: generated {n:,} rows ({size / 2**20:.0f} MiB, {size / n:.0f} bytes a row) "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    policy = work / "policies.toml"
    shutil.copy(ROOT / "policies.toml", policy)
    importer_policy(policy)
    env = {**os.environ, "EMPOWER_POLICY": str(policy), "EMPOWER_DB": str(work / "empower.db")}
    tools = [
        ("sqlite-utils insert --csv", work / "peer.db",
         [str(BIN / "sqlite-utils"), "insert", str(work / "peer.db"), "cases", str(data), "--csv"]),
        ("empower import cases", work / "empower.db",
         [str(BIN / "empower"), "--json", "import", "cases", str(data)]),
    ]  # fmt: skip
    if baseline is not None:
        tools.append(("empower (baseline)", work / "empower.db",
                      [sys.executable, "-m", "empower_cli", "--json", "import", "cases", str(data)]))  # fmt: skip
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in tools}
    loads = []
    for round_ in range(repeat):
        for name, db, cmd in tools if round_ % 2 == 0 else tools[::-1]:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            Path(f"{data}.rejects.csv").unlink(missing_ok=True)
            extra = {"PYTHONPATH": str(baseline.resolve())} if name == "empower (baseline)" and baseline else {}
            runs[name].append(measure(cmd, {**env, **extra}, cwd=work))  # not the repository: `-m` reads the cwd first
        loads.append(os.getloadavg()[0])
    report(shape, n, runs, [name for name, _, _ in tools], loads)
    if profile:
        profile_import(work, data, env)


def report(shape: str, n: int, runs: dict[str, list[tuple[float, float, float]]], names: list[str],
           loads: list[float]) -> None:  # fmt: skip
    """Medians of each tool's rounds, and of the rounds' ratios (each round times both tools
    back to back, so its ratio is the least disturbed by other work on the machine)."""
    print(f"{'tool':<28}{'seconds':>10}{'rows/s':>12}{'CPU s':>10}{'rows/CPU-s':>12}{'peak RSS MiB':>15}")
    for name in names:
        elapsed, rss, cpu = (median(r[k] for r in runs[name]) for k in range(3))
        print(f"{name:<28}{elapsed:>10.1f}{n / elapsed:>12,.0f}{cpu:>10.1f}{n / cpu:>12,.0f}{rss:>15.0f}")
    for name in names[1:]:
        peer, ours = runs[names[0]], runs[name]
        wall = [p[0] / o[0] for p, o in zip(peer, ours, strict=True)]
        per_cpu = [p[2] / o[2] for p, o in zip(peer, ours, strict=True)]
        print(f"{shape}: {name} / sqlite-utils rows/s: median {median(wall):.2f}x "
              f"(rounds {', '.join(f'{r:.2f}' for r in wall)}; target >= 2.0x); per CPU-second: median "
              f"{median(per_cpu):.2f}x (rounds {', '.join(f'{r:.2f}' for r in per_cpu)})")  # fmt: skip
    print(f"load average after each round: {', '.join(f'{x:.1f}' for x in loads)}")


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def profile_import(work: Path, data: Path, env: dict[str, str]) -> None:
    prof = work / "import.prof"
    fresh = {**env, "EMPOWER_DB": str(work / "profiled.db")}
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "empower_cli", "--json",
                    "import", "cases", str(data)], env=fresh, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    import pstats

    pstats.Stats(str(prof)).sort_stats("tottime").print_stats(20)


def measure(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system, worker processes
    included) of `cmd`, run under a small Python parent so the figures are its alone."""
    probe = (
        "import os, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
        "e = time.perf_counter() - t\n"
        "if p.returncode: sys.exit(p.stderr[-500:])\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(e, u.ru_maxrss / 1024, u.ru_utime + u.ru_stime)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, cwd=cwd)
    if done.returncode:
        sys.exit(f"{cmd[0]} failed: {done.stderr.strip()}")
    elapsed, rss, cpu = done.stdout.split()
    return float(elapsed), float(rss), float(cpu)


if __name__ == "__main__":
    main()
