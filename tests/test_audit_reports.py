"""`empower audit summary|agents|rules|customers|pairs|outcomes`: every report on an empty
database and on a seeded history, with the expected numbers worked out here from the
seed, plus flags, formats and CSV formula neutralisation."""

from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import Spec, money, seed
from tests.conftest import BACKENDS, JUSTIFICATION, LATE_RETURN, CliFn, as_json, backend_db, report_rows


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_db(request, tmp_path)

REPORTS = ("summary", "agents", "rules", "customers", "pairs", "outcomes")
AGENTS = ("alice", "bob", "dave", "erin")


def history(n: int = 80, seed_value: int = 11) -> list[Spec]:
    """A varied history: in policy or not, every status, reactions, outcomes, co-signs."""
    rnd = random.Random(seed_value)
    specs = []
    for _ in range(n):
        agent = rnd.choice(AGENTS)
        in_policy = rnd.random() < 0.4
        days = rnd.randint(0, 15) if in_policy else rnd.randint(16, 30)
        status = rnd.choice(["approved"] * 5 + ["denied", "pending_cosign", "pending_supervisor", "expired"])
        rules = [("return-window", "pass" if in_policy else "bent"), ("receipt", "pass")]
        if not in_policy and rnd.random() < 0.15:
            rules[1] = ("receipt", "blocked")
        specs.append(Spec(
            agent=agent, customer=f"C-{rnd.randint(1, 6)}", amount=rnd.randint(1, 300) * 100 + rnd.randint(0, 99),
            in_policy=in_policy, status=status, hours_ago=rnd.uniform(1, 24 * 60),
            cosigner=rnd.choice([a for a in AGENTS if a != agent]) if status == "approved" and rnd.random() < 0.3
            else None,
            supervisor="carol" if status == "denied" or (status == "approved" and rnd.random() < 0.1) else None,
            escalated=rnd.random() < 0.1, objections=rnd.choice([0, 0, 0, 1]),
            reaction=rnd.choice([None, "satisfied", "neutral", "dissatisfied"]),
            retained=rnd.choice([None, True, True, False]), rules=rules,
            facts={"days_since_purchase": str(days), "has_receipt": "yes"},
            expires_in_hours=rnd.choice([-2.0, 5.0]) if status.startswith("pending") else None,
        ))  # fmt: skip
    return specs


def effective(s: Spec) -> str:
    if s.status in ("pending_cosign", "pending_supervisor") and (s.expires_in_hours or 0) <= 0:
        return "expired"
    return s.status


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(cli: CliFn, name: str, *args: str) -> Any:
    r = cli("audit", name, "--json", *args)
    assert r.exit_code == 0, r.output
    return report_rows(name, as_json(r))


# -- empty -------------------------------------------------------------------------------


def test_every_report_answers_on_an_empty_database(cli: CliFn) -> None:
    summary = report(cli, "summary")
    assert summary["cases"] == 0
    assert summary["discretion_spent"] == "0.00"
    assert summary["retention"] == {"after_discretion": None, "after_denial": None}
    assert summary["weekly_spend"] == []
    for name in ("agents", "rules", "customers", "pairs"):
        assert report(cli, name) == [], name
    outcomes = report(cli, "outcomes")
    assert [o["kind"] for o in outcomes] == ["in_policy", "discretion", "denied", "expired", "pending"]
    assert all(o["cases"] == 0 and o["retention"] is None for o in outcomes)
    for name in REPORTS:
        for fmt in ("table", "csv", "markdown"):
            r = cli("audit", name, "--format", fmt)
            assert r.exit_code == 0, (name, fmt, r.output)
    assert "no agents in this period" in cli("audit", "agents", "--format", "table").stdout
    assert cli("audit", "pairs", "--format", "csv").stdout == ""


# -- the seeded history --------------------------------------------------------------------


@pytest.fixture
def specs(db_path: Path) -> list[Spec]:
    specs = history()
    seed(db_path, specs)
    return specs


def test_summary_counts_match_the_seeded_history(cli: CliFn, specs: list[Spec]) -> None:
    got = report(cli, "summary")
    disc_approved = [s for s in specs if not s.in_policy and s.status == "approved" and s.retained is not None]
    denied_known = [s for s in specs if s.status == "denied" and s.retained is not None]
    assert got["cases"] == len(specs)
    assert got["in_policy_cases"] == sum(s.in_policy for s in specs)
    assert got["discretion_cases"] == sum(not s.in_policy for s in specs)
    assert got["discretion_spent"] == money(sum(s.discretionary for s in specs if s.status == "approved"))
    assert got["escalations"] == sum(
        s.escalated or s.supervisor is not None or s.status in ("pending_supervisor", "denied") for s in specs
    )
    assert got["cosigns"] == sum(s.cosigner is not None for s in specs)
    assert got["objections"] == sum(s.objections for s in specs)
    assert got["denials"] == sum(s.status == "denied" for s in specs)
    assert got["expired"] == sum(effective(s) == "expired" for s in specs)
    assert got["dissatisfied"] == sum(s.reaction == "dissatisfied" for s in specs)
    assert got["retention"] == {
        "after_discretion": ratio(sum(bool(s.retained) for s in disc_approved), len(disc_approved)),
        "after_denial": ratio(sum(bool(s.retained) for s in denied_known), len(denied_known)),
    }
    weekly_total = sum(int(w["spent"].replace(".", "")) for w in got["weekly_spend"])
    assert money(weekly_total) == got["discretion_spent"]


def test_agents_report_matches_the_seeded_history(cli: CliFn, specs: list[Spec]) -> None:
    got = {a["agent"]: a for a in report(cli, "agents")}
    assert sorted(got) == sorted({s.agent for s in specs})
    for agent, row in got.items():
        mine = [s for s in specs if s.agent == agent]
        disc = [s for s in mine if not s.in_policy]
        assert row["cases"] == len(mine)
        assert row["discretion_rate"] == ratio(len(disc), len(mine))
        assert row["spent"] == money(sum(s.discretionary for s in mine if s.status == "approved"))
        total = sum(s.amount for s in disc)
        assert row["mean_amount"] == (money(math.floor(total / len(disc) + 0.5)) if disc else "0.00")
        assert row["objections_received"] == sum(s.objections for s in mine)


def test_rules_report_counts_bends_blocks_spend_and_the_90th_percentile(cli: CliFn, specs: list[Spec]) -> None:
    got = {r["id"]: r for r in report(cli, "rules")}
    bent = [s for s in specs if ("return-window", "bent") in s.rules]
    assert got["return-window"]["bent"] == len(bent)
    assert got["return-window"]["blocked"] == 0
    touched = [s for s in specs if any(r == "return-window" and res != "pass" for r, res in s.rules)]
    assert got["return-window"]["spent"] == money(sum(s.discretionary for s in touched if s.status == "approved"))
    values = sorted(int(s.facts["days_since_purchase"]) for s in bent)
    assert got["return-window"]["suggested_limit"] == values[math.ceil(0.9 * len(values)) - 1]
    blocked = [s for s in specs if ("receipt", "blocked") in s.rules]
    assert got["receipt"]["blocked"] == len(blocked)
    assert got["receipt"]["bent"] == 0
    assert got["receipt"]["suggested_limit"] is None  # an equals rule has no limit to move


def test_customers_report_matches_the_seeded_history(cli: CliFn, specs: list[Spec]) -> None:
    got = report(cli, "customers")
    expected = []
    for customer in sorted({s.customer for s in specs}):
        mine = [s for s in specs if s.customer == customer]
        disc = sum(not s.in_policy for s in mine)
        spent = sum(s.discretionary for s in mine if s.status == "approved")
        if disc:
            expected.append((customer, len(mine), disc, money(spent), spent / 200_000))
    expected.sort(key=lambda e: (-int(e[3].replace(".", "")), -e[2], e[0]))
    assert [(c["customer_id"], c["cases"], c["discretion_cases"], c["spent"], c["budget_used_share"])
            for c in got] == expected  # fmt: skip
    assert len(report(cli, "customers", "--limit", "2")) == 2


def test_outcomes_report_matches_the_seeded_history(cli: CliFn, specs: list[Spec]) -> None:
    def kind(s: Spec) -> str:
        status = effective(s)
        if status == "approved":
            return "in_policy" if s.in_policy else "discretion"
        return status if status in ("denied", "expired") else "pending"

    for row in report(cli, "outcomes"):
        mine = [s for s in specs if kind(s) == row["kind"]]
        assert row["cases"] == len(mine), row["kind"]
        for reaction in ("satisfied", "neutral", "dissatisfied"):
            assert row[reaction] == sum(s.reaction == reaction for s in mine)
        assert row["no_reaction"] == sum(s.reaction is None for s in mine)
        assert (row["retained"], row["lost"]) == (sum(s.retained is True for s in mine),
                                                  sum(s.retained is False for s in mine))  # fmt: skip
        assert row["retention"] == ratio(row["retained"], row["retained"] + row["lost"])


def test_pairs_report_counts_who_cosigned_whose_cases(cli: CliFn, specs: list[Spec]) -> None:
    got = {(p["agent"], p["cosigner"]): p for p in report(cli, "pairs")}
    cosigned = [s for s in specs if s.cosigner]
    assert sum(p["count"] for p in got.values()) == len(cosigned)
    for (agent, cosigner), row in got.items():
        mine = [s for s in cosigned if s.agent == agent]
        assert row["count"] == sum(s.cosigner == cosigner for s in mine)
        assert row["share"] == ratio(row["count"], len(mine))


def test_since_and_until_select_cases_by_opening_time(cli: CliFn, db_path: Path) -> None:
    seed(db_path, [Spec(hours_ago=24 * 40), Spec(hours_ago=24 * 40), Spec(hours_ago=24 * 5)])
    assert report(cli, "summary", "--since", "30d")["cases"] == 1
    assert report(cli, "summary", "--until", "30d")["cases"] == 2
    assert report(cli, "summary", "--since", "2000-01-01", "--until", "2000-02-01")["cases"] == 0


def test_live_cases_from_case_new_show_up_in_the_summary(cli: CliFn) -> None:
    assert cli(*LATE_RETURN, "--amount", "89.90", "--justification", JUSTIFICATION).exit_code == 0
    r = cli("case", "new", "--customer", "C-2", "--type", "late_return", "--fact", "days_since_purchase=3",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "10.00", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    got = report(cli, "summary")
    figures = (got["cases"], got["in_policy_cases"], got["discretion_cases"], got["discretion_spent"])
    assert figures == (2, 1, 1, "89.90")
    assert report(cli, "rules")[0] == {
        "id": "return-window", "bent": 1, "blocked": 0, "spent": "89.90", "candidate": False,
        "suggested_limit": 20, "bent_share": 0.5, "approved_share": 1.0, "retention": None,
    }  # fmt: skip


# -- flags --------------------------------------------------------------------------------


def team(rates: dict[str, int], cases: int = 10) -> list[Spec]:
    """Each agent decides `cases` cases, `rates[agent]` of them out of policy (50.00 each)."""
    specs = []
    for agent, out in rates.items():
        for k in range(cases):
            specs.append(Spec(agent=agent, customer=f"T-{agent}-{k}", in_policy=k >= out,
                              amount=5_000, rules=[("return-window", "pass" if k >= out else "bent")]))  # fmt: skip
    return specs


def test_an_outlier_agent_is_flagged_in_either_direction_and_peers_are_not(cli: CliFn, db_path: Path) -> None:
    seed(db_path, team({"a1": 2, "a2": 3, "a3": 3, "a4": 3, "a5": 4, "a6": 3, "lenient": 9, "harsh": 0}))
    got = {a["agent"]: a for a in report(cli, "agents")}
    [lenient, *_] = got["lenient"]["flags"]
    assert lenient["code"] == "lenient"
    assert lenient["text"].startswith("lenient: discretion rate 90% vs peers' median 30%")
    [harsh, *_] = got["harsh"]["flags"]
    assert harsh["code"] == "harsh"
    assert harsh["text"].startswith("harsh: discretion rate 0% vs peers' median 30%")
    assert [a for a in got if got[a]["flags"] == []] == ["a1", "a2", "a3", "a4", "a5", "a6"]
    table = cli("audit", "agents", "--format", "table").stdout
    assert "⚑ lenient: lenient: discretion rate 90%" in table
    assert "a1 ⚑" not in table


def test_a_team_too_small_or_too_alike_flags_nobody(cli: CliFn, db_path: Path) -> None:
    seed(db_path, team({"a1": 3, "a2": 3, "a3": 3, "a4": 3}) + team({"new": 4}, cases=2))
    assert all(a["flags"] == [] for a in report(cli, "agents"))


def test_a_concentrated_cosign_pair_is_flagged_and_the_others_are_not(cli: CliFn, db_path: Path) -> None:
    who = {"p1": ["c1"] * 8 + ["c2", "c3"], "p2": ["c1"] * 3 + ["c2"] * 3 + ["c3"] * 2 + ["c4"] * 2, "p3": ["c1"] * 2}
    seed(db_path, [Spec(agent=agent, cosigner=c) for agent, cs in who.items() for c in cs])
    got = {(p["agent"], p["cosigner"]): p for p in report(cli, "pairs")}
    assert got[("p1", "c1")]["share"] == 0.8
    assert got[("p1", "c1")]["flags"] == [
        {"code": "one_cosigner", "text": "80% of p1's co-signs come from c1 (4 possible co-signers)"}]
    assert [k for k, p in got.items() if p["flags"]] == [("p1", "c1")]  # p3: too few to judge


def test_a_customer_with_repeat_exceptions_is_flagged_as_possible_abuse(cli: CliFn, db_path: Path) -> None:
    specs = [Spec(customer=f"N-{k}") for k in range(20)] + [Spec(customer=f"N-{k}", in_policy=True) for k in range(20)]
    specs += [Spec(customer="R-9") for _ in range(6)] + [Spec(customer="BIG", amount=190_000)]
    seed(db_path, specs)
    got = {c["customer_id"]: c for c in report(cli, "customers", "--limit", "0")}
    assert got["R-9"]["flags"] == [{"code": "repeat_exceptions", "text": "repeat exceptions: 6 vs a typical 1"}]
    assert got["BIG"]["flags"] == [{"code": "budget_used", "text": "used 95% of the budget"}]
    assert got["BIG"]["budget_used_share"] == 0.95
    assert [c for c in got if got[c]["flags"] == []] == [f"N-{k}" for k in sorted(range(20), key=str)]


def test_a_rule_bent_often_approved_and_kept_is_a_policy_candidate(cli: CliFn, db_path: Path) -> None:
    days = [16, 17, 18, 18, 19, 20, 21, 22, 24, 29]
    good = [Spec(rules=[("return-window", "bent")], facts={"days_since_purchase": str(d), "has_receipt": "yes"},
                 retained=True, reaction="satisfied") for d in days]  # fmt: skip
    warranty = [Spec(case_type="expired_warranty", action="free_repair", rules=[("warranty", "bent")],
                     facts={"days_past_warranty": str(d)}, retained=False) for d in (10, 40)]  # fmt: skip
    seed(db_path, good + warranty + [Spec(in_policy=True, rules=[("return-window", "pass")]) for _ in range(20)])
    got = {r["id"]: r for r in report(cli, "rules")}
    assert got["return-window"]["candidate"] is True
    assert got["return-window"]["suggested_limit"] == sorted(days)[math.ceil(0.9 * len(days)) - 1] == 24
    assert got["warranty"]["candidate"] is False
    assert got["warranty"]["suggested_limit"] == 40
    assert "yes · limit 24" in cli("audit", "rules", "--format", "table").stdout


# -- formats ------------------------------------------------------------------------------

PAYLOADS = ['=HYPERLINK("http://evil.example","click")', "+1", "-1", "@SUM(A1:A9)", "\tTAB", "\rCR", "plain"]


def test_csv_neutralises_spreadsheet_formulas(cli: CliFn, db_path: Path) -> None:
    seed(db_path, [Spec(customer=p, amount=1_000 * (k + 1)) for k, p in enumerate(PAYLOADS)])
    r = cli("audit", "customers", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout, newline="")))
    cells = {row["customer_id"] for row in rows}
    assert cells == {"'" + p for p in PAYLOADS[:-1]} | {"plain"}
    assert all(row["spent"][0].isdigit() for row in rows)


def test_csv_and_markdown_carry_the_same_rows_as_json(cli: CliFn, specs: list[Spec]) -> None:
    for name in REPORTS:
        data = report(cli, name)
        rows = list(csv.reader(io.StringIO(cli("audit", name, "--format", "csv").stdout, newline="")))
        md = cli("audit", name, "--format", "markdown").stdout.strip().splitlines()
        expected = len(data)
        if name == "summary":  # metric rows; retention and period flattened to two rows each
            expected = len([k for k in data if k != "weekly_spend"]) + 2
        assert len(rows) - 1 == expected, name
        # Markdown: a title line, a blank line, the header and its rule, then the rows; the
        # summary has the terminal's twelve lines (the in-policy share beside its count).
        assert len(md) - 4 == (12 if name == "summary" else expected), name
    summary = dict(csv.reader(io.StringIO(cli("audit", "summary", "--format", "csv").stdout, newline="")))
    assert summary["cases"] == str(len(specs))
    assert "retention.after_discretion" in summary


def test_markdown_escapes_pipes_and_shows_control_characters(cli: CliFn, db_path: Path) -> None:
    seed(db_path, [Spec(customer="A|B"), Spec(customer="esc\x1b[31m")])
    md = cli("audit", "customers", "--format", "markdown").stdout
    # The escape shows as the text \x1b (its backslash escaped for Markdown), never as ESC.
    assert "| A\\|B |" in md
    assert "| esc\\\\x1b[31m |" in md
    assert "\x1b" not in md


def test_tables_fit_80_columns_and_show_whole_numbers(cli: CliFn, specs: list[Spec]) -> None:
    spent = report(cli, "summary")["discretion_spent"]
    for name in REPORTS:
        out = cli("audit", name, "--format", "table").stdout
        assert all(len(line) <= 80 for line in out.splitlines()), name
    whole, _, cents = spent.partition(".")
    assert f"{int(whole):,}.{cents}" in cli("audit", "summary", "--format", "table").stdout
    agents = report(cli, "agents")
    table = cli("audit", "agents", "--format", "table").stdout
    assert all(a["agent"] in table for a in agents)


def test_rich_markup_in_ids_is_shown_literally(cli: CliFn, db_path: Path) -> None:
    seed(db_path, [Spec(agent="[red]mallory[/]", customer="[bold]C[/]")])
    assert "[red]mallory[/]" in cli("audit", "agents", "--format", "table").stdout
    assert "[bold]C[/]" in cli("audit", "customers", "--format", "table").stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--format", "xml"), "--format"),
        (("--json", "--format", "csv"), "--format"),
        (("--since", "yesterday"), "--since"),
        (("--since", "1d", "--until", "2d"), "--until"),
    ],
)
def test_bad_report_options_exit_2_naming_the_option(cli: CliFn, args: tuple[str, ...], field: str) -> None:
    r = cli("audit", "summary", *args)
    assert r.exit_code == 2, r.output
    assert field in r.stderr


def test_the_global_json_flag_means_json_format(cli: CliFn, specs: list[Spec]) -> None:
    r = cli("--json", "audit", "outcomes")
    assert r.exit_code == 0, r.output
    assert next(o["kind"] for o in as_json(r)["rows"]) == "in_policy"


def test_weekly_spend_runs_monday_to_sunday_with_empty_weeks_filled(cli: CliFn, db_path: Path) -> None:
    import datetime as dt

    wednesday = dt.datetime(2026, 11, 18, 12, tzinfo=dt.timezone.utc)
    seed(db_path, [Spec(amount=1_000, hours_ago=0), Spec(amount=2_000, hours_ago=48),  # Wed, Mon 16th
                   Spec(amount=3_000, hours_ago=72),  # Sunday 15th: the week before
                   Spec(amount=4_000, hours_ago=24 * 22), Spec(amount=9_900, hours_ago=24 * 22, in_policy=True),
                   Spec(amount=500, hours_ago=1, status="denied")], now=wednesday)  # fmt: skip
    weeks = report(cli, "summary")["weekly_spend"]
    assert weeks == [{"week": "2026-10-26", "spent": "40.00"}, {"week": "2026-11-02", "spent": "0.00"},
                     {"week": "2026-11-09", "spent": "30.00"}, {"week": "2026-11-16", "spent": "30.00"}]  # fmt: skip
    assert report(cli, "summary", "--since", "2026-11-10", "--until", "2026-11-17")["weekly_spend"] == [
        {"week": "2026-11-09", "spent": "30.00"}, {"week": "2026-11-16", "spent": "20.00"}]  # fmt: skip
    assert "discretion spent per week" in cli("audit", "summary", "--format", "table").stdout


PRICE_MATCH = """
[actions.price_refund]
title = "Refund the price gap"

[case_types.price_match]
title = "Price match"
risk = "low"
actions = ["price_refund"]
facts = [
  { name = "gap", type = "money", ask = "Price gap" },
  { name = "rating", type = "int", ask = "Store rating" },
  { name = "bought", type = "date", ask = "Purchase date" },
]
rules = [
  { id = "gap-limit", text = "Gap at most 10.00.", fact = "gap", max = "10.00", bend_max = "50.00" },
  { id = "min-rating", text = "Rating at least 4.", fact = "rating", min = 4, bend_min = 1 },
  { id = "recent", text = "Bought within 30 days.", fact = "bought", max_age_days = 30, bend_max_age_days = 90 },
]
"""


def test_suggested_limits_for_money_min_and_date_rules(cli: CliFn, db_path: Path, tmp_path: Path) -> None:
    import datetime as dt

    from tests.conftest import training_policy_text, write_policy

    write_policy(tmp_path, training_policy_text(PRICE_MATCH))
    now = dt.datetime(2026, 11, 18, 12, tzinfo=dt.timezone.utc)
    gaps = ["12.50", "30.00", "11.05", "49.99", "20.00", "10.01", "45.10", "13.00", "14.00", "16.00", "17.00", "18"]
    ratings = [3, 2, 3, 1, 3, 3, 2, 3, 3, 1, 2, 3]
    ages = [31, 40, 35, 80, 33, 61, 45, 50, 32, 34, 36, 39]  # days between purchase and the case
    specs = [
        Spec(case_type="price_match", action="price_refund", hours_ago=0,
             rules=[("gap-limit", "bent"), ("min-rating", "bent"), ("recent", "bent")],
             facts={"gap": g, "rating": str(r), "bought": (now - dt.timedelta(days=a)).date().isoformat()})
        for g, r, a in zip(gaps, ratings, ages, strict=True)
    ]  # fmt: skip
    seed(db_path, specs, now=now)
    got = {r["id"]: r["suggested_limit"] for r in report(cli, "rules")}
    rank = math.ceil(0.9 * 12)  # the 11th of 12, counted from the standard outwards
    assert got["gap-limit"] == sorted(gaps, key=float)[rank - 1] == "45.10"
    assert got["min-rating"] == sorted(ratings, reverse=True)[rank - 1] == 1  # a min rule: the low end
    assert got["recent"] == sorted(ages)[rank - 1] == 61


def test_reports_follow_the_real_workflow_commands(cli: CliFn) -> None:
    def opened(days: int, amount: str, agent: str = "bob") -> int:
        r = cli("case", "new", "--customer", "C-7", "--type", "late_return", "--fact", f"days_since_purchase={days}",
                "--fact", "has_receipt=yes", "--action", "refund", "--amount", amount,
                "--justification", JUSTIFICATION, "--json", agent=agent)  # fmt: skip
        assert r.exit_code == 0, r.output
        return int(as_json(r)["case_id"])

    first, second, third = opened(20, "150.00"), opened(22, "120.00"), opened(25, "130.00")
    assert cli("case", "cosign", str(first), agent="dave").exit_code == 0
    assert cli("case", "cosign", str(second), agent="dave").exit_code == 0
    assert cli("case", "object", str(third), "--reason", "Customer already had a refund", agent="erin").exit_code == 0
    assert cli("case", "deny", str(third), "--note", "Second refund this month", agent="carol").exit_code == 0
    assert cli("case", "outcome", str(first), "--reaction", "satisfied", "--retained").exit_code == 0
    assert cli("case", "outcome", str(third), "--reaction", "dissatisfied", "--lost").exit_code == 0
    summary = report(cli, "summary")
    assert (summary["cases"], summary["cosigns"], summary["objections"], summary["denials"]) == (3, 2, 1, 1)
    assert summary["escalations"] == 1  # the objection sent case 3 to a supervisor
    assert summary["discretion_spent"] == "270.00"
    assert summary["retention"] == {"after_discretion": 1.0, "after_denial": 0.0}
    assert [(p["agent"], p["cosigner"], p["count"]) for p in report(cli, "pairs")] == [("bob", "dave", 2)]
    [bob] = report(cli, "agents")
    assert (bob["cases"], bob["objections_received"], bob["escalations"], bob["spent"]) == (3, 1, 1, "270.00")
    kinds = {o["kind"]: o for o in report(cli, "outcomes")}
    assert (kinds["discretion"]["retained"], kinds["denied"]["lost"], kinds["denied"]["dissatisfied"]) == (1, 1, 1)


def test_every_table_report_in_json_says_its_period(cli: CliFn, db_path: Path) -> None:
    """A script reads the period it asked for from the answer: `{period, rows}` (the summary
    carries its `period` among its figures)."""
    seed(db_path, [Spec(hours_ago=24 * 40), Spec(hours_ago=24 * 5)])
    since, until = "2020-01-01", "2099-01-01"
    for name in ("agents", "rules", "customers", "pairs", "outcomes"):
        out = as_json(cli("audit", name, "--json", "--since", since, "--until", until))
        assert out["period"] == {"since": "2020-01-01T00:00:00.000000Z", "until": "2099-01-01T00:00:00.000000Z"}
        assert isinstance(out["rows"], list)
    assert as_json(cli("audit", "summary", "--json"))["period"] == {"since": None, "until": None}
