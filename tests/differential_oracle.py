"""The oracle of tests/test_audit_differential.py: the README's definitions of the audit
reports and of `policy simulate`, computed plainly over a list of case dicts.

It imports nothing from empower_cli. A case dict is a raw `cases` row plus `effective` (the
status `case list --json` shows) and `reached_supervisor` (from its history in `case show`).
Where the README can be read more than one way, the function returns every reading (a set)
and the comment says which words are ambiguous; the test accepts any of them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Case = dict[str, Any]
PENDING = ("pending_cosign", "pending_supervisor")
Z_LIMIT, Z_FACTOR, MEAN_AD_FACTOR = Fraction("3.5"), Fraction("0.6745"), Fraction("1.2533")


def cents(text: str | int | float) -> int:
    """Money text ("2000.00", "2000", or a TOML number) in cents, exactly."""
    whole, _, part = str(text).partition(".")
    return int(whole) * 100 + int((part + "00")[:2])


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ratio(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


def opened_in(cases: Iterable[Case], since: str | None, until: str | None) -> list[Case]:
    """--since inclusive, --until exclusive, on opened_at (fixed-width UTC text sorts as time)."""
    return [
        c for c in cases if (since is None or c["opened_at"] >= since) and (until is None or c["opened_at"] < until)
    ]


def spent(cases: Iterable[Case]) -> int:
    """*spent* is the discretionary amount of approved cases."""
    return sum(c["discretionary_amount"] for c in cases if c["effective"] == "approved")


def reached_supervisor(row: Case, effective: str, events: list[dict[str, Any]]) -> bool:
    """An *escalation*: the agent asked, the rules or an objection sent the case to a supervisor
    (whatever happened after: still waiting, expired or settled), or a supervisor approved or
    denied it. Its history says whether it ever waited for a supervisor; a denial is always a
    supervisor's (SPEC §4: only a can_approve role denies)."""
    waited = any(
        (e["payload"].get("content") or e["payload"]).get("status") == "pending_supervisor"
        for e in events
        if e["kind"] in ("opened", "objected", "imported")
    )
    now_waiting = effective == "pending_supervisor"
    return bool(row["escalated"]) or row["supervisor"] is not None or effective == "denied" or now_waiting or waited


# -- summary ----------------------------------------------------------------------------


def monday(opened_at: str) -> str:
    day = dt.date.fromisoformat(opened_at[:10])
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def summary(cases: list[Case]) -> dict[str, Any]:
    out_of_policy_approved = [c for c in cases if not c["in_policy"] and c["effective"] == "approved"]
    denied = [c for c in cases if c["effective"] == "denied"]
    weekly: Counter[str] = Counter()
    for c in cases:
        if c["effective"] == "approved" and c["discretionary_amount"]:
            weekly[monday(c["opened_at"])] += c["discretionary_amount"]
    return {
        "cases": len(cases),
        "in_policy_cases": sum(1 for c in cases if c["in_policy"]),
        "in_policy_share": ratio(sum(1 for c in cases if c["in_policy"]), len(cases)),
        "discretion_cases": sum(1 for c in cases if not c["in_policy"]),
        "discretion_spent": spent(cases),
        "escalations": sum(1 for c in cases if c["reached_supervisor"]),
        "cosigns": sum(1 for c in cases if c["cosigner"] is not None),
        "objections": sum(c["objections"] for c in cases),
        "denials": len(denied),
        "expired": sum(1 for c in cases if c["effective"] == "expired"),
        "dissatisfied": sum(1 for c in cases if c["reaction"] == "dissatisfied"),
        "retention": {"after_discretion": kept_share(out_of_policy_approved), "after_denial": kept_share(denied)},
        "weekly_spend": dict(weekly),  # only the weeks with spend; empty weeks may be listed as 0
    }


def kept_share(cases: list[Case]) -> Fraction | None:
    known = [c for c in cases if c["retained"] is not None]
    return ratio(sum(1 for c in known if c["retained"]), len(known))


# -- flags: the modified z-score -----------------------------------------------------------

# Readings of "How reports flag" where the README leaves a choice:
# - "compared with their peers": the median and MAD of all judged values, the agent's own
#   included, or of the others only;
# - "the mean absolute deviation × 1.2533 stands in for it [the MAD]": in the formula
#   0.6745 × (x − median) / MAD, or as the whole scale (x − median) / (1.2533 × meanAD), as
#   Iglewicz and Hoaglin's successors use it;
# - "mean absolute deviation": around the mean, or around the median.
READINGS = tuple(product((True, False), ("in_formula", "whole_scale"), ("mean", "median")))


def median(values: list[Fraction]) -> Fraction:
    s = sorted(values)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def outlier(x: Fraction, peers: list[Fraction], reading: tuple[bool, str, str]) -> int:
    """+1 far above the peers, −1 far below, 0 in line: |z| beyond 3.5 and 25 % from the median."""
    _, fallback, centre = reading
    if not peers:
        return 0
    med = median(peers)
    mad = median([abs(v - med) for v in peers])
    if mad:
        z = Z_FACTOR * (x - med) / mad
    else:
        mid = med if centre == "median" else sum(peers, Fraction(0)) / len(peers)
        mean_ad = sum((abs(v - mid) for v in peers), Fraction(0)) / len(peers)
        if not mean_ad:
            return 0
        z = (Z_FACTOR if fallback == "in_formula" else 1) * (x - med) / (MEAN_AD_FACTOR * mean_ad)
    if abs(z) <= Z_LIMIT or abs(x - med) < abs(med) / 4:
        return 0
    return 1 if x > med else -1


def peers_of(values: dict[str, Fraction], who: str, reading: tuple[bool, str, str]) -> list[Fraction]:
    include_self = reading[0]
    return [v for k, v in values.items() if include_self or k != who]


# -- agents ---------------------------------------------------------------------------------


def agents(cases: list[Case]) -> dict[str, dict[str, Any]]:
    by: dict[str, list[Case]] = {}
    for c in cases:
        by.setdefault(c["agent"], []).append(c)
    total = spent(cases)
    judged = {a: cs for a, cs in by.items() if len(cs) >= 5}
    rates = {a: Fraction(sum(1 for c in cs if not c["in_policy"]), len(cs)) for a, cs in judged.items()}
    per_case = {a: Fraction(spent(cs), len(cs)) for a, cs in judged.items()}
    out = {}
    for agent, cs in by.items():
        disc = [c["discretionary_amount"] for c in cs if not c["in_policy"]]
        flags: set[frozenset[str]] = {frozenset()}
        if agent in judged and len(judged) >= 3:
            flags = {_agent_words(agent, rates, per_case, r) for r in READINGS}
        out[agent] = {
            "cases": len(cs),
            "discretion_rate": Fraction(len(disc), len(cs)),
            "spent": spent(cs),
            # "rounded half up to the cent"; with no discretion case there is no mean (0.00 or null)
            "mean_amount": (2 * sum(disc) + len(disc)) // (2 * len(disc)) if disc else None,
            "escalations": sum(1 for c in cs if c["reached_supervisor"]),
            "objections_received": sum(c["objections"] for c in cs),
            # Not defined in the README; read as the agent's part of the period's spend.
            "spend_share": ratio(spent(cs), total),
            "flag_words": flags,
        }
    return out


def _agent_words(agent: str, rates: dict[str, Fraction], per_case: dict[str, Fraction],
                 reading: tuple[bool, str, str]) -> frozenset[str]:  # fmt: skip
    words = set()
    direction = outlier(rates[agent], peers_of(rates, agent, reading), reading)
    if direction:
        words.add("lenient" if direction > 0 else "harsh")
    direction = outlier(per_case[agent], peers_of(per_case, agent, reading), reading)
    if direction:
        words.add("high spend" if direction > 0 else "low spend")
    return frozenset(words)


# -- rules ----------------------------------------------------------------------------------


def rules(cases: list[Case], policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per rule bent or blocked in the period, from each case's recorded rule results."""
    type_cases = Counter(c["case_type"] for c in cases)
    fact_of = {r["id"]: r["fact"] for t in policy["case_types"].values() for r in t.get("rules", [])}
    hits: dict[str, dict[str, list[Case]]] = {}
    for c in cases:
        for r in json.loads(c["rules"]):
            if r["result"] != "pass":
                hits.setdefault(r["id"], {"bent": [], "blocked": []})[r["result"]].append(c)
    out = {}
    for rule_id, got in hits.items():
        bent, blocked = got["bent"], got["blocked"]
        ctype = (bent or blocked)[0]["case_type"]
        approved = [c for c in bent if c["effective"] == "approved"]
        values = sorted(int(json.loads(c["facts"])[fact_of[rule_id]]) for c in bent)
        # "at least 80 % of those with a known outcome kept the customer": "those" are the bent
        # cases, or the bent cases that were approved; with no known outcome the test is vacuous
        # (passes) or unmet (fails). The same for "those with a reaction".
        retention, candidate = set(), set()
        for base, vacuous in product((bent, approved), (True, False)):
            known = [c for c in base if c["retained"] is not None]
            reacted = [c for c in base if c["reaction"] is not None]
            kept = sum(1 for c in known if c["retained"])
            unhappy = sum(1 for c in reacted if c["reaction"] == "dissatisfied")
            retention.add(ratio(kept, len(known)))
            candidate.add(
                len(bent) >= 5 and 10 * len(bent) >= type_cases[ctype] and 5 * len(approved) >= 4 * len(bent)
                and (5 * kept >= 4 * len(known) if known else vacuous)
                and (5 * unhappy <= len(reacted) if reacted else True)
            )  # fmt: skip
        out[rule_id] = {
            "bent": len(bent),
            "blocked": len(blocked),
            # "discretion spent": of the cases that bent it, or of those that bent or broke it
            "spent": {spent(bent), spent(bent + blocked)},
            "bent_share": ratio(len(bent), type_cases[ctype]),
            "approved_share": ratio(len(approved), len(bent)),
            "retention": retention,
            "candidate": candidate,
            # the 90th percentile, nearest rank: the value at rank ceil(0.9 n) from the bottom
            "suggested_limit": values[-(-9 * len(values) // 10) - 1] if values else None,
        }
    return out


# -- customers ------------------------------------------------------------------------------


def customers(cases: list[Case], segments: dict[str, str | None], policy: dict[str, Any]) -> dict[str, Any]:
    """Per customer; `listed` holds the readings of "customers who received discretion":
    those with a discretion case, or those with discretion spent on them."""
    by: dict[str, list[Case]] = {}
    for c in cases:
        by.setdefault(c["customer_id"], []).append(c)
    counts = {k: Fraction(sum(1 for c in cs if not c["in_policy"])) for k, cs in by.items()}
    rows = {}
    for customer, cs in by.items():
        # "the customer's limit per window, by segment": the segment the customer has now
        limit = budget_limit(policy, segments.get(customer))
        money = spent(cs)
        at_budget = 10 * money >= 9 * limit  # spend in the period reached 90 % of the limit
        repeat = {counts[customer] >= 3 and outlier(counts[customer], peers_of(counts, customer, r), r) > 0
                  for r in READINGS}  # fmt: skip
        rows[customer] = {
            "cases": len(cs),
            "discretion_cases": int(counts[customer]),
            "spent": money,
            "budget_used_share": Fraction(money, limit),
            "at_budget": at_budget,
            "flagged": {at_budget or r for r in repeat},
        }
    listed = [{k for k, v in rows.items() if v["discretion_cases"]}, {k for k, v in rows.items() if v["spent"]}]
    return {"rows": rows, "listed": listed}


def budget_limit(policy: dict[str, Any], segment: str | None) -> int:
    budget = policy["budget"]
    segments = budget.get("segments", {})
    return cents(segments[segment]) if segment in segments else cents(budget["per_customer"])


# -- pairs and outcomes -----------------------------------------------------------------------


def pairs(cases: list[Case]) -> dict[tuple[str, str], dict[str, Any]]:
    cosigned = [c for c in cases if c["cosigner"] is not None]
    counts = Counter((c["agent"], c["cosigner"]) for c in cosigned)
    totals = Counter(c["agent"] for c in cosigned)
    seen = {c["cosigner"] for c in cosigned}
    out = {}
    for (agent, cosigner), n in counts.items():
        others = len(seen - {agent})  # "the number of other co-signers seen in the period"
        flag = totals[agent] >= 5 and 2 * n >= totals[agent] and n * others >= 2 * totals[agent]
        out[(agent, cosigner)] = {"count": n, "share": Fraction(n, totals[agent]), "flag": flag}
    return out


def outcome_kind(c: Case) -> str:
    if c["effective"] == "approved":
        return "in_policy" if c["in_policy"] else "discretion"
    return c["effective"] if c["effective"] in ("denied", "expired") else "pending"


def outcomes(cases: list[Case]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in ("in_policy", "discretion", "denied", "expired", "pending"):
        cs = [c for c in cases if outcome_kind(c) == kind]
        said = Counter(c["reaction"] for c in cs)
        kept = sum(1 for c in cs if c["retained"] == 1)
        lost = sum(1 for c in cs if c["retained"] == 0)
        out[kind] = {
            "cases": len(cs), "satisfied": said["satisfied"], "neutral": said["neutral"],
            "dissatisfied": said["dissatisfied"], "no_reaction": said[None], "retained": kept, "lost": lost,
            "retention_unknown": len(cs) - kept - lost, "retention": ratio(kept, kept + lost),
        }  # fmt: skip
    return out


# -- policy simulate --------------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


@dataclass
class Replay:
    """One policy's replay: SPEC §4 decided on the case's recorded inputs, against a budget
    ledger rebuilt from the replayed decisions the way the README says the live budget is
    kept: a replayed wait holds its amount (all of it, or nothing when it is beyond what is
    left) from the case's opening until the recorded settlement, or the hold's expiry.

    When is replayed discretion spent? The README counts it "when the replayed decision is an
    approval, or when it would wait ... and the recorded case was in the end approved", and a
    budget counts approved discretion "from the moment it was approved". So a replayed wait
    that was in the end approved is spent at the recorded approval (settled_at), and a replayed
    approval of a case the record never approved at its opening. A replayed approval of a case
    the record approved later is read both ways (`approved_at`: "opened" or "settled")."""

    policy: dict[str, Any]
    approved_at: str
    remaining: int = 0  # what the last decided case had left
    ledger: dict[str, list[tuple[dt.datetime, int]]] = field(default_factory=dict)
    holds: dict[str, list[tuple[dt.datetime, dt.datetime, int]]] = field(default_factory=dict)
    discretion: int = 0
    bent: Counter[str] = field(default_factory=Counter)
    blocked: Counter[str] = field(default_factory=Counter)

    def spend(self, customer: str, at: dt.datetime, amount: int) -> None:
        if amount:
            self.ledger.setdefault(customer, []).append((at, amount))

    def hold(self, customer: str, start: dt.datetime, until: dt.datetime, amount: int) -> None:
        if amount:
            self.holds.setdefault(customer, []).append((start, until, amount))

    def budget(self, customer: str, at: dt.datetime) -> tuple[int, int, int]:
        """Spent, held, and the number of discretionary cases approved or held, at `at`: spend
        counts from the moment it was approved, not before (and not after the window); a hold
        from its case's opening until it was settled or expired."""
        start = at - dt.timedelta(days=self.policy["budget"]["window_days"])
        inside = [n for t, n in self.ledger.get(customer, []) if start < t <= at]
        held = [n for s, u, n in self.holds.get(customer, []) if s <= at < u]
        return sum(inside), sum(held), len(inside) + len(held)

    def decide(self, c: Case) -> tuple[str, bool, dict[str, str]]:
        p = self.policy
        ctype = p["case_types"][c["case_type"]]
        facts = json.loads(c["facts"])
        results = {r["id"]: rule_result(r, facts[r["fact"]]) for r in ctype.get("rules", [])}
        action = p["actions"][c["action"]]
        frontline = action.get("frontline", True)
        in_policy = all(v == "pass" for v in results.values()) and not action.get("always_discretionary") and frontline
        disc = 0 if in_policy else c["amount"]
        agents = p["agents"]
        role = p["roles"][agents.get(c["agent"], agents.get("default_role"))]
        used, held, count = self.budget(c["customer_id"], when(c["opened_at"]))
        remaining = budget_limit(p, c["segment"]) - used - held
        self.remaining = remaining
        max_cases = p["budget"].get("max_cases")
        if (
            "blocked" in results.values() or (ctype["risk"] == "high" and not in_policy) or not frontline
            or disc > cents(role["max_discretion"]) or disc > remaining
            or (disc and max_cases is not None and count >= max_cases) or c["escalated"]
        ):  # fmt: skip
            status = "pending_supervisor"
        elif disc > cents(p["cosign"]["above"]):
            status = "pending_cosign"
        else:
            status = "approved"
        return status, in_policy, results

    def settle(self, c: Case, status: str, in_policy: bool, results: dict[str, str]) -> None:
        for rule_id, result in results.items():
            self.bent[rule_id] += result == "bent"
            self.blocked[rule_id] += result == "blocked"
        recorded = c["status"] == "approved"
        if not in_policy and status in PENDING:
            beyond = status == "pending_supervisor" and c["amount"] > self.remaining  # nothing is held then
            self.hold(c["customer_id"], when(c["opened_at"]), when(hold_end(c)), 0 if beyond else c["amount"])
        if in_policy or not (status == "approved" or (status in PENDING and recorded)):
            return
        self.discretion += c["amount"]
        late = recorded and (status != "approved" or self.approved_at == "settled")
        self.spend(c["customer_id"], when(c["settled_at"] if late else c["opened_at"]), c["amount"])


def hold_end(c: Case) -> str:
    """A hold lasts until the case was approved or denied, else until it expired."""
    return str(c["settled_at"] if c["status"] in ("approved", "denied") else c["expires_at"] or c["opened_at"])


def rule_result(rule: dict[str, Any], text: str) -> str:
    """pass, bent (outside the standard, inside the bend) or blocked, for the rule kinds the
    history uses: `max`/`bend_max` on a whole number and `equals` on a yes/no fact."""
    if "equals" in rule:
        return "pass" if (text == "yes") == rule["equals"] else "blocked"
    value = int(text)
    if value <= rule["max"]:
        return "pass"
    return "bent" if not rule.get("hard") and "bend_max" in rule and value <= rule["bend_max"] else "blocked"


def simulate(cases: list[Case], before: dict[str, Any], after: dict[str, Any], *, since: str | None,
             approved_at: str) -> dict[str, Any]:  # fmt: skip
    sides = (Replay(before, approved_at), Replay(after, approved_at))
    if since is not None:
        # "approved discretion recorded in the budget window before it fills the ledgers as
        # recorded": the recorded approvals of cases opened before --since, at their approval.
        for c in cases:
            if c["opened_at"] >= since:
                continue
            for side in sides:
                if c["status"] == "approved":
                    side.spend(c["customer_id"], when(c["settled_at"]), c["discretionary_amount"])
                if c["held_amount"]:  # the recorded hold, while it lasted
                    side.hold(c["customer_id"], when(c["opened_at"]), when(hold_end(c)), c["held_amount"])
    out: dict[str, Any] = {"cases": 0, "changed": 0, "became_in_policy": 0, "left_policy": 0,
                           "transitions": Counter(), "kinds": {}}  # fmt: skip
    for c in sorted(opened_in(cases, since, None), key=lambda c: (c["opened_at"], c["id"])):
        (b_status, b_in, b_rules), (a_status, a_in, a_rules) = (side.decide(c) for side in sides)
        sides[0].settle(c, b_status, b_in, b_rules)
        sides[1].settle(c, a_status, a_in, a_rules)
        out["cases"] += 1
        out["changed"] += b_status != a_status or b_in != a_in
        kinds = []
        if a_in and not b_in:
            kinds.append("became_in_policy")
        if b_in and not a_in:
            kinds.append("left_policy")
        if b_status != a_status:
            out["transitions"][(b_status, a_status)] += 1
            kinds.append(f"{b_status}->{a_status}")
        for kind in kinds:
            out["kinds"].setdefault(kind, []).append(c["id"])
    out["became_in_policy"] = len(out["kinds"].get("became_in_policy", []))
    out["left_policy"] = len(out["kinds"].get("left_policy", []))
    out["discretion_before"], out["discretion_after"] = sides[0].discretion, sides[1].discretion
    out["rules"] = {r: (sides[0].bent[r], sides[1].bent[r], sides[0].blocked[r], sides[1].blocked[r])
                    for r in {*sides[0].bent, *sides[1].bent}}  # fmt: skip
    return out
