"""Audit benchmark: each `empower audit` report next to the same question asked in hand-written SQL.

Run by hand (not a test): `.venv/bin/python bench/audit.py [--cases N] [--runs R] [--keep DIR]`.
It writes N synthetic historical cases (default 1,000,000) as JSON Lines, loads them with
`empower import cases`, then, in one run and in a shuffled order per round, times every
report three ways: the report function in-process (the query layer), the whole
`empower audit REPORT --json` command, and the hand-written SQL through the `sqlite3`
command-line shell on the same file. It prints medians and the ratios. The `sqlite3`
shell is only needed here (apt-get install -y sqlite3); CI never runs this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EMPOWER = Path(sys.executable).parent / "empower"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)

AGENTS = [f"agent{k:02d}" for k in range(1, 41)]
LENIENT, HARSH, CLINGY, FRIEND = "agent07", "agent13", "agent21", "agent22"
SUPERVISORS = ["carol", "sup2"]
JUSTIFICATIONS = [
    "Long-standing customer; the item is unused and the receipt is at hand.",
    "Customer was in hospital during the window; documentation seen and noted.",
    "Traffic accident on the ring road reported on the news; passenger arrived shortly after.",
    "Repair fault matches a known defect reported just after the warranty ended.",
    "Stay was disrupted by building works that were not announced at booking time.",
]


def synth(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Realistic-looking history: 40 agents (one lenient, one harsh, one co-signed by a
    single friend), ~120k customers with a long tail, five case types over a year."""
    rnd = random.Random(seed)
    customers = 120_000
    for k in range(1, n + 1):
        agent = rnd.choice(AGENTS)
        frequent = rnd.random() < 0.02  # a few hundred customers who call far more often
        customer = f"C-{rnd.randrange(300) if frequent else rnd.randrange(300, customers):06d}"
        opened = NOW - dt.timedelta(seconds=rnd.randrange(365 * 86400))
        kind = rnd.random()
        lenient = 2.0 if agent == LENIENT else 0.3 if agent == HARSH else 1.0
        if kind < 0.35:
            case_type, facts = "late_return", {
                "days_since_purchase": str(_pick(rnd, lenient, (0, 15), (16, 30), (31, 45))),
                "has_receipt": "yes" if rnd.random() < 0.96 else "no",
            }
            action = "goodwill_credit" if rnd.random() < 0.03 else rnd.choice(["refund", "exchange"])
        elif kind < 0.6:
            case_type, facts = "expired_warranty", {
                "days_past_warranty": str(_pick(rnd, lenient, (0, 0), (1, 90), (91, 150)))}
            action = "free_repair"
        elif kind < 0.85:
            case_type, facts = "missed_flight", {
                "minutes_late": str(_pick(rnd, lenient, (0, 120), (121, 720), (721, 900))),
                "cause": rnd.choice(["traffic", "medical", "airline", "other"]),
            }
            action = rnd.choice(["rebook", "rebook", "fee_waiver"])
        elif kind < 0.95:
            case_type, facts = "hotel_complaint", {"nights": str(rnd.randint(1, 7))}
            action = "free_night" if rnd.random() < 0.5 else "goodwill_credit"
        else:
            case_type, facts = "financial_advice", {"topic": "pension transfer question"}
            action = "fee_waiver"
        amount = rnd.randrange(500, 35_000) if agent != LENIENT else rnd.randrange(5_000, 45_000)
        roll = rnd.random()
        status = "approved" if roll < 0.9 else "denied" if roll < 0.96 else "expired"
        supervisor = rnd.choice(SUPERVISORS) if status == "denied" or rnd.random() < 0.05 else ""
        cosigner = ""
        if status == "approved" and not supervisor and amount > 10_000 and rnd.random() < 0.8:
            peers = [a for a in AGENTS if a != agent]
            cosigner = FRIEND if agent == CLINGY and rnd.random() < 0.85 else rnd.choice(peers)
        # Returns a little late please people (the return-window rule becomes a policy candidate).
        moods = ["satisfied"] * 4 + ["neutral", ""] if case_type == "late_return" else ["satisfied",
                 "satisfied", "neutral", "dissatisfied", ""]  # fmt: skip
        reaction = rnd.choice(moods)
        keeps = rnd.random() < (0.85 if status == "approved" else 0.5)
        retained = "" if rnd.random() < 0.4 else ("true" if keeps else "false")
        yield {
            "external_id": f"HIST-{k:08d}", "customer_id": customer, "agent": agent,
            "opened_at": opened.strftime("%Y-%m-%dT%H:%M:%SZ"), "case_type": case_type, "action": action,
            "amount": f"{amount // 100}.{amount % 100:02d}", "status": status,
            "justification": rnd.choice(JUSTIFICATIONS), "cosigner": cosigner, "supervisor": supervisor,
            "reaction": reaction, "retained": retained, "facts": facts,
        }  # fmt: skip


def _pick(rnd: random.Random, lenient: float, inside: tuple[int, int], bent: tuple[int, int],
          beyond: tuple[int, int]) -> int:  # fmt: skip
    roll = rnd.random()
    low, high = (inside if roll > 0.3 * lenient else bent if roll > 0.03 else beyond)
    return rnd.randint(low, high)


def write_jsonl(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in synth(n):
            clean = {k: v for k, v in row.items() if v != ""}
            f.write(json.dumps(clean) + "\n")


def load(policy: Path, db: Path, data: Path) -> str:
    """Through `empower import cases` (the point of the bench)."""
    started = time.perf_counter()
    r = subprocess.run([str(EMPOWER), "--policy", str(policy), "--db", str(db), "import", "cases", str(data),
                        "--json"], capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        raise SystemExit(f"empower import cases failed ({r.returncode}): {r.stderr.strip()[:500]}")
    out = json.loads(r.stdout)
    return (f"empower import cases: {out['imported']:,} imported, {out['rejected']:,} rejected in "
            f"{time.perf_counter() - started:.0f} s ({out['rows_per_second']:,.0f} rows/s)")


# -- the hand-written SQL -------------------------------------------------------------
# What a person who knows the schema would type into `sqlite3` for the same question.

NOW_SQL = "'2026-11-20T12:00:00.000000Z'"
HAND_SQL = {
    "summary": f"""
SELECT COUNT(*), SUM(in_policy = 1), SUM(in_policy = 0),
  SUM(CASE WHEN status = 'approved' THEN discretionary_amount ELSE 0 END),
  SUM(escalated = 1 OR supervisor IS NOT NULL OR status IN ('pending_supervisor', 'denied')),
  COUNT(cosigner), SUM(objections), SUM(status = 'denied'),
  SUM(status = 'expired' OR (status IN ('pending_cosign', 'pending_supervisor') AND expires_at <= {NOW_SQL})),
  SUM(reaction = 'dissatisfied'),
  AVG(CASE WHEN in_policy = 0 AND status = 'approved' THEN retained END),
  AVG(CASE WHEN status = 'denied' THEN retained END)
FROM cases;
SELECT substr(opened_at, 1, 10) AS day, SUM(discretionary_amount) FROM cases
WHERE status = 'approved' AND discretionary_amount > 0 GROUP BY day;""",
    "agents": """
SELECT agent, COUNT(*), AVG(in_policy = 0),
  SUM(CASE WHEN status = 'approved' THEN discretionary_amount ELSE 0 END),
  AVG(CASE WHEN in_policy = 0 THEN discretionary_amount END),
  SUM(escalated = 1 OR supervisor IS NOT NULL OR status IN ('pending_supervisor', 'denied')),
  SUM(objections)
FROM cases GROUP BY agent ORDER BY agent;""",
    "rules": """
SELECT r.value ->> 'id', SUM(r.value ->> 'result' = 'bent'), SUM(r.value ->> 'result' = 'blocked'),
  SUM(CASE WHEN c.status = 'approved' THEN c.discretionary_amount ELSE 0 END),
  SUM(r.value ->> 'result' = 'bent' AND c.status = 'approved'),
  AVG(CASE WHEN r.value ->> 'result' = 'bent' THEN c.retained END),
  AVG(CASE WHEN r.value ->> 'result' = 'bent' AND c.reaction IS NOT NULL THEN c.reaction = 'dissatisfied' END)
FROM cases c, json_each(c.rules) r WHERE r.value ->> 'result' != 'pass' GROUP BY 1;
SELECT case_type, COUNT(*) FROM cases GROUP BY case_type;
WITH b AS (
  SELECT r.value ->> 'id' AS rule_id, CAST(CASE r.value ->> 'id'
      WHEN 'return-window' THEN c.facts ->> 'days_since_purchase'
      WHEN 'warranty' THEN c.facts ->> 'days_past_warranty'
      WHEN 'same-day-rebook' THEN c.facts ->> 'minutes_late' END AS INTEGER) AS v
  FROM cases c, json_each(c.rules) r WHERE r.value ->> 'result' = 'bent'),
ranked AS (SELECT rule_id, v, ROW_NUMBER() OVER (PARTITION BY rule_id ORDER BY v) AS rn,
  COUNT(*) OVER (PARTITION BY rule_id) AS n FROM b)
SELECT rule_id, v FROM ranked WHERE rn = (9 * n + 9) / 10;""",
    "customers": """
SELECT customer_id, COUNT(*), SUM(in_policy = 0) AS disc,
  SUM(CASE WHEN status = 'approved' THEN discretionary_amount ELSE 0 END) AS spent
FROM cases GROUP BY customer_id HAVING disc > 0 ORDER BY spent DESC LIMIT 50;""",
    "pairs": """
SELECT agent, cosigner, COUNT(*) FROM cases WHERE cosigner IS NOT NULL GROUP BY agent, cosigner;""",
    "outcomes": f"""
SELECT CASE WHEN status = 'approved' AND in_policy = 1 THEN 'in_policy' WHEN status = 'approved' THEN 'discretion'
  WHEN status = 'denied' THEN 'denied'
  WHEN status = 'expired' OR expires_at <= {NOW_SQL} THEN 'expired' ELSE 'pending' END AS kind,
  COUNT(*), SUM(reaction = 'satisfied'), SUM(reaction = 'neutral'), SUM(reaction = 'dissatisfied'),
  SUM(retained = 1), SUM(retained = 0)
FROM cases GROUP BY kind;""",
}


def time_once(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of this process and its children: the
    CPU figure stays fair when other work shares the machine's two cores."""
    before = _cpu()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started, _cpu() - before


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the database in this directory")
    parser.add_argument("--consistency-only", action="store_true",
                        help="only case precedents, case search and audit report --html (issue 13)")
    args = parser.parse_args()
    shell = shutil.which("sqlite3")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="empower-audit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    policy = folder / "policies.toml"
    db = folder / "empower.db"
    from empower_cli.services.admin import default_policy_text
    from empower_cli.services.identity import os_account

    # The account running the bench imports the history: a supervisor (import needs can_approve).
    text = default_policy_text().replace('dave = "senior"', f'dave = "senior"\n"{os_account()}" = "supervisor"')
    policy.write_text(text, encoding="utf-8")
    policy.chmod(0o644)
    if not db.exists():
        data = folder / "history.jsonl"
        started = time.perf_counter()
        write_jsonl(data, args.cases)
        print(f"wrote {args.cases:,} cases to {data} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        print(load(policy, db, data), file=sys.stderr)
        data.unlink()
    if args.consistency_only:
        run_consistency(policy, db, args.runs)
    else:
        run_bench(policy, db, shell, args.runs)
    if args.keep is None:
        shutil.rmtree(folder)


def run_bench(policy_path: Path, db: Path, shell: str | None, runs: int) -> None:
    from empower_cli.audit import reports as audit
    from empower_cli.policy.load import load_policy
    from empower_cli.store.sqlite import Store

    policy = load_policy(policy_path)
    store = Store(db)
    cases = store.conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    period = audit.Period(now=NOW)
    timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
    jobs: list[tuple[str, str, Callable[[], object]]] = []

    def library(name: str) -> Callable[[], object]:
        return lambda: audit.report(name, store, period, policy=policy, limit=50)

    def command(args: list[str], stdin: str | None = None) -> Callable[[], object]:
        return lambda: subprocess.run(args, input=stdin, text=True, check=True, capture_output=True)

    for name in audit.REPORTS:
        jobs.append((name, "library", library(name)))
        jobs.append((name, "cli", command([str(EMPOWER), "--policy", str(policy_path), "--db", str(db),
                                           "audit", name, "--json"])))  # fmt: skip
        if shell:
            jobs.append((name, "sqlite3", command([shell, str(db)], HAND_SQL[name])))
    for _ in range(runs):
        random.shuffle(jobs)
        for name, how, fn in jobs:
            timings.setdefault((name, how), []).append(time_once(fn))
    store.close()
    wall = {key: statistics.median(w for w, _ in values) for key, values in timings.items()}
    cpu = {key: statistics.median(c for _, c in values) for key, values in timings.items()}
    print(f"\n{cases:,} cases; median of {runs} shuffled rounds; {db.stat().st_size / 1e6:.0f} MB database; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("wall seconds (CPU seconds)     library          command           sqlite3   lib/sql (CPU)  target")
    for name in audit.REPORTS:
        lib, cli = (name, "library"), (name, "cli")
        row = f"{name:<24} {wall[lib]:>7.3f} ({cpu[lib]:.3f}) {wall[cli]:>7.3f} ({cpu[cli]:.3f})"
        if shell:
            hand = (name, "sqlite3")
            ratio, cpu_ratio = wall[lib] / wall[hand], cpu[lib] / max(cpu[hand], 1e-6)
            ok = "ok" if min(ratio, cpu_ratio) <= 1.5 and wall[cli] < 2.0 else "MISSED"
            row += f" {wall[hand]:>7.3f} ({cpu[hand]:.3f}) {ratio:>6.2f} ({cpu_ratio:.2f})  {ok}"
        print(row)
    if not shell:
        print("\nsqlite3 command-line shell not found: no hand-written SQL timings "
              "(install it with: apt-get install -y sqlite3)")  # fmt: skip
    run_consistency(policy_path, db, runs)
    verify, verify_cpu = time_once(command([str(EMPOWER), "--policy", str(policy_path), "--db", str(db),
                                            "audit", "verify"]))  # fmt: skip
    print(f"\naudit verify (whole chain, one run): {verify:.1f} s ({verify_cpu:.1f} s CPU)")
    wider = policy_path.with_name("policies.wider.toml")
    wider.write_text(policy_path.read_text("utf-8").replace("max = 15, bend_max = 30", "max = 30, bend_max = 45"))
    wider.chmod(0o644)
    for since in ("30d", "365d"):
        args = [str(EMPOWER), "--policy", str(policy_path), "--db", str(db), "policy", "simulate", str(wider),
                "--since", since]  # fmt: skip
        took, took_cpu = time_once(command(args))
        print(f"policy simulate --since {since} (one run): {took:.1f} s ({took_cpu:.1f} s CPU)")


# -- precedents, search and the shared report (issue 13) --------------------------------

PRECEDENTS = {
    "late return, 20 days (bent, band 1)": ["--type", "late_return", "--action", "refund",
                                            "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes"],
    "late return, 10 days (in policy)": ["--type", "late_return", "--action", "refund",
                                         "--fact", "days_since_purchase=10", "--fact", "has_receipt=yes"],
    "missed flight, 300 min (bent)": ["--type", "missed_flight", "--action", "rebook",
                                      "--fact", "minutes_late=300", "--fact", "cause=traffic"],
    "warranty, 45 days (bent, band 2)": ["--type", "expired_warranty", "--action", "free_repair",
                                         "--fact", "days_past_warranty=45"],
}  # fmt: skip


def run_consistency(policy_path: Path, db: Path, runs: int) -> None:
    """`case precedents` against the command's start-up (`case show 1`, which opens the same
    session and reads one case), in-process look-ups, `case search`, and `audit report --html`."""
    from empower_cli.core.timeutil import utcnow
    from empower_cli.policy.load import load_policy
    from empower_cli.services.precedents import find_precedents
    from empower_cli.store.sqlite import Store

    base = [str(EMPOWER), "--policy", str(policy_path), "--db", str(db)]

    def cli(*args: str) -> Callable[[], object]:
        return lambda: subprocess.run([*base, *args], text=True, check=True, capture_output=True)

    def median_of(fn: Callable[[], object]) -> tuple[float, float]:
        times = [time_once(fn) for _ in range(runs)]
        return statistics.median(w for w, _ in times), statistics.median(c for _, c in times)

    startup = median_of(cli("case", "show", "1", "--json"))
    print(f"\nstart-up of a case command (case show 1): {startup[0] * 1000:.0f} ms "
          f"({startup[1] * 1000:.0f} ms CPU)")
    policy = load_policy(policy_path)
    store = Store(db)
    print("case precedents                        lookup ms   command ms   over start-up   matched")
    for label, args in PRECEDENTS.items():
        facts = dict(a.split("=", 1) for a in args[5::2])
        lookup = median_of(lambda a=args, f=facts: find_precedents(  # type: ignore[misc]
            policy=policy, store=store, case_type=a[1], action=a[3], facts=f, amount=None, now=utcnow()))
        command = median_of(cli("case", "precedents", *args, "--json"))
        found = find_precedents(policy=policy, store=store, case_type=args[1], action=args[3], facts=facts,
                                amount=None, now=utcnow())  # fmt: skip
        over = (command[0] - startup[0]) * 1000
        print(f"{label:<38} {lookup[0] * 1000:>9.1f} {command[0] * 1000:>12.0f} {over:>15.0f} {found.matched:>9,}")
    store.close()
    for query in ("hospital", "ring road accident", "volcano"):
        took = median_of(cli("case", "search", query, "--json"))
        print(f"case search {query!r} (limit 20): {took[0] * 1000:.0f} ms ({took[1] * 1000:.0f} ms CPU)")
    html = db.with_name("report.html")
    html.unlink(missing_ok=True)
    took = time_once(cli("audit", "report", "--html", str(html)))
    print(f"audit report --html (one run): {took[0]:.1f} s ({took[1]:.1f} s CPU), {html.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
