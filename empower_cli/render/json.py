"""Every JSON shape the CLI prints (`--json`), built from the results of the services: one
place to read what a script receives. Money is always a string."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any, cast

from empower_cli.core.money import format_money, share

if TYPE_CHECKING:
    from collections.abc import Callable

    from empower_cli.audit.reports import Flags, Period, Report, SummaryReport
    from empower_cli.audit.transfer import Copied
    from empower_cli.audit.verify import Verification
    from empower_cli.core.models import BudgetState, Evaluation, Fact, Policy, Proposal
    from empower_cli.core.precedents import Precedents
    from empower_cli.imports.run import Summary
    from empower_cli.services.admin import Initialised
    from empower_cli.services.cases import Decision, SegmentGrant
    from empower_cli.services.governance import Applied, PolicyApplication
    from empower_cli.services.simulate import Simulation
    from empower_cli.services.workflow import QueueItem, StepResult
    from empower_cli.store.search import Hit


# What a failure is called under --json, by its exit code (SPEC §5).
ERROR_CODES = {1: "internal", 2: "invalid_input", 3: "policy", 4: "not_allowed", 5: "not_found", 6: "conflict",
               130: "interrupted"}  # fmt: skip


def error_json(message: str, exit_code: int, problems: list[str], *, usage: bool = False) -> dict[str, Any]:
    """A failure under --json, on stderr: `{"error": {"code", "message", "exit_code"}}`, and the
    policy's `problems` when a policy file is invalid. A command-line usage error is `usage`."""
    error: dict[str, Any] = {"code": "usage" if usage else ERROR_CODES.get(exit_code, "error"),
                             "message": message, "exit_code": exit_code}  # fmt: skip
    if problems:
        error["problems"] = problems
    return {"error": error}


def budget_json(budget: BudgetState, digits: int) -> dict[str, str]:
    """{limit, spent, held, remaining} as money strings (SPEC §5)."""
    return budget.as_money(digits)


def typed_value(value: Any, fact: Fact | None, digits: int) -> Any:
    """A fact's value as JSON types it: numbers and booleans as such, money as a string,
    a date as YYYY-MM-DD, a list of allowed values as a list."""
    if isinstance(value, tuple | list):
        return [typed_value(v, fact, digits) for v in value]
    if fact is not None and fact.type == "money" and isinstance(value, int) and not isinstance(value, bool):
        return format_money(value, digits)
    return value.isoformat() if hasattr(value, "isoformat") else value


def rules_json(evaluation: Evaluation, proposal: Proposal, policy: Policy) -> list[dict[str, Any]]:
    """Each rule result of SPEC §5 ({id, result, text}) with the numbers behind it: the `fact`
    it limits, the customer's `value`, its `op`, the standard `limit` and, for a rule that can
    be bent, the `bend_limit` (for `max_age_days`, limits in days and the value a date)."""
    ctype = policy.case_types[proposal.case_type]
    rules = {r.id: r for r in ctype.rules}
    out: list[dict[str, Any]] = []
    for result in evaluation.rules:
        shown: dict[str, Any] = dict(result.as_dict())
        rule = rules.get(result.id)
        if rule is not None:
            fact = ctype.fact(rule.fact)
            limits_fact = None if rule.op == "max_age_days" else fact  # days, not the fact's type
            shown.update(fact=rule.fact, value=typed_value(proposal.facts.get(rule.fact), fact, policy.digits),
                         op=rule.op, limit=typed_value(rule.standard, limits_fact, policy.digits))  # fmt: skip
            if rule.bendable:
                shown["bend_limit"] = typed_value(rule.bend, limits_fact, policy.digits)
        out.append(shown)
    return out


def decision_json(decision: Decision, policy: Policy) -> dict[str, Any]:
    """The `case new --json` object of SPEC §5."""
    ev = decision.evaluation
    return {
        "case_id": decision.case_id,
        "status": ev.status,
        "in_policy": ev.in_policy,
        "discretionary_amount": format_money(ev.discretionary_amount, policy.digits),
        "rules": rules_json(ev, decision.proposal, policy),
        "reasons": list(ev.reasons),
        "budget": budget_json(ev.budget_after, policy.digits),
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
        "next_step": next_step(decision.case_id, ev.status),
    }


def next_step(case_id: int, status: str) -> str:
    if status == "pending_cosign":
        return f"ask a colleague to run: empower case cosign {case_id}"
    if status == "pending_supervisor":
        return f"a supervisor must run: empower case approve {case_id} --note TEXT (or deny)"
    return "nothing: the decision is final"


# The keys of one case in `case queue --json` (and the columns of the queue in TSV and CSV).
QUEUE_KEYS = ("case_id", "waiting_for", "opened_at", "age", "customer_id", "agent", "case_type", "action",
              "amount", "discretionary_amount", "rules_bent", "rules_blocked", "objections", "expires_at",
              "time_left", "age_seconds", "time_left_seconds")  # fmt: skip


def queue_json(item: QueueItem, digits: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """One case of `case queue --json`; with NOW, the age and time left also in whole seconds
    (`age_seconds`, `time_left_seconds`: a duration as a number beside its text)."""
    c = item.case
    seconds: dict[str, int] = {}
    if now is not None:
        from empower_cli.core.timeutil import parse_stored

        seconds["age_seconds"] = max(0, int((now - parse_stored(c["opened_at"])).total_seconds()))
        if c["expires_at"]:
            seconds["time_left_seconds"] = max(0, int((parse_stored(c["expires_at"]) - now).total_seconds()))
    return {
        "case_id": c["id"], "waiting_for": item.waiting_for, "opened_at": c["opened_at"], "age": item.age,
        "customer_id": c["customer_id"], "agent": c["agent"], "case_type": c["case_type"],
        "action": c["action"], "amount": format_money(c["amount"], digits),
        "discretionary_amount": format_money(c["discretionary_amount"], digits),
        "rules_bent": list(item.rules_bent), "rules_blocked": list(item.rules_blocked), "objections": c["objections"],
        "expires_at": c["expires_at"], "time_left": item.time_left, **seconds,
    }  # fmt: skip


def step_json(result: StepResult, policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {"case_id": result.case_id, "event": result.kind, "status": result.status,
                           "by": result.actor, "at": result.at}  # fmt: skip
    out.update({k: v for k, v in result.payload.items() if k not in ("status", "from")})
    out["budget"] = budget_json(result.budget, policy.digits)
    return out


# The keys of one case in `case list --json` (and the columns of a list of cases in TSV and CSV).
CASE_SUMMARY_KEYS = ("case_id", "opened_at", "customer_id", "agent", "case_type", "action", "amount",
                     "discretionary_amount", "status", "imported")  # fmt: skip


def customer_json(customer: str, segment: str | None, budget: BudgetState, cases: list[dict[str, Any]],
                  policy: Policy) -> dict[str, Any]:  # fmt: skip
    """`customer show --json`."""
    return {"customer_id": customer, "segment": segment, "window_days": policy.budget.window_days,
            "budget": budget_json(budget, policy.digits), "discretionary_cases": budget.count,
            "cases": [case_summary_json(c, policy.digits) for c in cases]}  # fmt: skip


def customer_fields(shown: dict[str, Any], policy: Policy) -> list[list[Any]]:
    """`customer show` in a pipe: the customer's figures as (field, value) lines, flat."""
    return [["customer_id", shown["customer_id"]], ["segment", shown["segment"]],
            ["window_days", shown["window_days"]], ["currency", policy.currency],
            *([k, v] for k, v in shown["budget"].items()),
            ["discretionary_cases", shown["discretionary_cases"]], ["max_cases", policy.budget.max_cases]]  # fmt: skip


def case_summary_json(case: dict[str, Any], digits: int) -> dict[str, Any]:
    return {
        "case_id": case["id"], "opened_at": case["opened_at"], "customer_id": case["customer_id"],
        "agent": case["agent"], "case_type": case["case_type"], "action": case["action"],
        "amount": format_money(case["amount"], digits),
        "discretionary_amount": format_money(case["discretionary_amount"], digits),
        "status": case["effective_status"], "imported": bool(case["imported"]),
    }  # fmt: skip


def case_detail_json(case: dict[str, Any], digits: int, decided_by: Policy) -> dict[str, Any]:
    """`case show --json`: the case with its facts typed as the policy that decided it
    (DECIDED_BY) types them, its rule results, reasons and people."""
    from empower_cli.core.facts import typed_fact

    ctype = decided_by.case_types.get(case["case_type"])
    facts = {name: typed_fact(text, ctype.fact(name) if ctype else None)
             for name, text in json.loads(case["facts"]).items()}  # fmt: skip
    detail = case_summary_json(case, digits)
    detail.update({
        "segment": case["segment"], "in_policy": bool(case["in_policy"]),
        "held": format_money(case["held_amount"], digits), "expires_at": case["expires_at"],
        "settled_at": case["settled_at"], "facts": facts,
        "rules": json.loads(case["rules"]), "reasons": json.loads(case["reasons"]),
        "justification": case["justification"], "reaction": case["reaction"],
        "retained": None if case["retained"] is None else bool(case["retained"]),
        "cosigner": case["cosigner"], "supervisor": case["supervisor"],
        "policy_version": case["policy_version"], "policy_sha256": case["policy_sha256"],
        "external_id": case["external_id"], "today_status": case["today_status"],
    })  # fmt: skip
    return detail


def policy_json(policy: Policy) -> dict[str, Any]:
    m = policy.money

    b = policy.budget

    def limit(value: Any, money: bool) -> Any:
        if isinstance(value, tuple):
            return [limit(v, money) for v in value]
        if money and isinstance(value, int) and not isinstance(value, bool):
            return m(value)
        return value.isoformat() if hasattr(value, "isoformat") else value

    return {
        "name": policy.name, "version": policy.version, "currency": policy.currency,
        "sha256": policy.sha256, "min_justification_chars": policy.min_justification_chars,
        "budget": {"per_customer": m(b.per_customer), "window_days": b.window_days,
                   "supervisor_may_exceed": b.supervisor_may_exceed, "max_cases": b.max_cases,
                   "segments": {k: m(v) for k, v in b.segments.items()}},
        "roles": {r.name: {"max_discretion": m(r.max_discretion), "can_approve": r.can_approve,
                           "can_import": r.can_import}
                  for r in policy.roles.values()},
        "agents": dict(policy.agents), "default_role": policy.default_role,
        "cosign": {"above": m(policy.cosign.above), "hold_hours": policy.cosign.hold_hours,
                   "objection_escalates": policy.cosign.objection_escalates},
        "actions": {a.id: {"title": a.title, "always_discretionary": a.always_discretionary,
                           "frontline": a.frontline} for a in policy.actions.values()},
        "case_types": {
            t.id: {"title": t.title, "risk": t.risk, "actions": list(t.actions),
                   "facts": [{"name": f.name, "type": f.type, "ask": f.ask} for f in t.facts],
                   "rules": [{"id": r.id, "text": r.text, "fact": r.fact, "op": r.op,
                              "standard": limit(r.standard, t.fact(r.fact).type == "money"),  # type: ignore[union-attr]
                              "bend": limit(r.bend, t.fact(r.fact).type == "money"),  # type: ignore[union-attr]
                              "hard": not r.bendable} for r in t.rules]}
            for t in policy.case_types.values()
        },
    }  # fmt: skip


def applied_json(applied: Applied) -> dict[str, Any]:
    return {"number": applied.number, "policy_version": applied.policy.version,
            "policy_sha256": applied.policy.sha256, "by": applied.applied_by,
            "at": applied.applied_at}  # fmt: skip


def log_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"number": r["number"], "policy_version": r["version"], "policy_sha256": r["sha256"],
             "currency": r["currency"], "by": r["applied_by"], "os_user": r["os_user"],
             "at": r["applied_at"], "note": r["note"], "seq": r["seq"]} for r in rows]  # fmt: skip


def segment_json(grant: SegmentGrant, digits: int) -> dict[str, Any]:
    """`customer segment --json`."""
    return {"customer_id": grant.customer_id, "segment": grant.segment, "previous": grant.previous,
            "changed": grant.changed, "by": grant.by, "at": grant.at,
            "budget": budget_json(grant.budget, digits)}  # fmt: skip


def application_json(done: PolicyApplication) -> dict[str, Any]:
    """`policy apply --json`."""
    return {**applied_json(done.applied), "previous_sha256": done.previous_sha256, "changed": done.changed}


def init_json(done: Initialised) -> dict[str, Any]:
    """`init --json`: the policy's path absolute (issue 14), whatever DIR was given; `db` is the
    SQLite file's absolute path or the PostgreSQL URL without its password."""
    return {"policy": str(done.policy.absolute()), "policy_created": done.policy_created, "db": done.db,
            "indexes_rebuilt": done.indexes_rebuilt, "policy_applied": done.policy_applied,
            "applied": applied_json(done.applied), "note": done.note,
            "agents_role": done.agents_role}  # fmt: skip


def verification_json(result: Verification) -> dict[str, Any]:
    """`audit verify --json`."""
    state = result.state
    return {
        "ok": result.ok, "events_checked": result.checked, "head": str(result.head),
        "first_bad_seq": result.bad_seq, "problem": result.problem,
        "expect": str(result.expect) if result.expect else None, "expect_found": result.expect_found,
        "cases_checked": state.cases if state else 0, "customers_checked": state.customers if state else 0,
        "policies_checked": state.policies if state else 0,
        "first_bad_case": state.bad_case if state else None, "bad_customer": state.bad_customer if state else None,
    }  # fmt: skip


def import_json(summary: Summary) -> dict[str, Any]:
    """`import cases --json`: the file and the rejects report as absolute paths."""
    from os.path import abspath

    return {
        "read": summary.read, "imported": summary.imported, "skipped": summary.skipped,
        "rejected": summary.rejected, "elapsed": round(summary.elapsed, 3),
        "rows_per_second": round(summary.rows_per_second, 1), "file": abspath(summary.file),
        "format": summary.format, "dry_run": summary.dry_run,
        "rejects_file": None if summary.rejects_file is None else abspath(summary.rejects_file),
    }  # fmt: skip


def simulation_json(sim: Simulation) -> dict[str, Any]:
    """`policy simulate --json`."""
    from empower_cli.core.timeutil import iso

    before, after = sim.before, sim.after
    rule_ids = sorted({*before.bent, *before.blocked, *after.bent, *after.blocked})
    return {
        "cases": sim.cases, "changed": sim.changed, "became_in_policy": sim.became_in_policy,
        "left_policy": sim.left_policy,
        "transitions": [{"from": a, "to": b, "count": n} for (a, b), n in sorted(sim.transitions.items())],
        "not_replayable": sum(sim.rejected.values()),
        "not_replayable_reasons": dict(sorted(sim.rejected.items(), key=lambda kv: -kv[1])),
        "discretion_before": format_money(before.discretion, before.policy.digits),
        "discretion_after": format_money(after.discretion, after.policy.digits),
        "rules": [{"id": r, "bent_before": before.bent.get(r, 0), "bent_after": after.bent.get(r, 0),
                   "blocked_before": before.blocked.get(r, 0), "blocked_after": after.blocked.get(r, 0)}
                  for r in rule_ids],
        "examples": sim.examples,
        "policy_before": {"version": before.policy.version, "sha256": before.policy.sha256},
        "policy_after": {"version": after.policy.version, "sha256": after.policy.sha256},
        "since": iso(sim.since) if sim.since else None,
    }  # fmt: skip


def copied_json(done: Copied) -> dict[str, Any]:
    """`db copy --json`."""
    return {"source": done.source, "target": done.target, "rows": dict(done.rows), "head": str(done.head)}


def search_json(query: str, hits: list[Hit], *, truncated: bool, limit: int | None) -> dict[str, Any]:
    """`case search --json`: the matches best first, each snippet with « » around the matches."""
    from empower_cli.render.search import plain_snippet

    rows = [{
        "rank": k, "case_id": h.case_id, "kind": h.kind, "event": h.source, "by": h.actor, "at": h.at,
        "snippet": plain_snippet(h.snippet), "status": h.status, "customer_id": h.customer_id,
        "case_type": h.case_type, "opened_at": h.opened_at,
    } for k, h in enumerate(hits, start=1)]  # fmt: skip
    return {"query": query, "rows": rows, "truncated": truncated, "limit": limit}


def precedents_json(p: Precedents, digits: int) -> dict[str, Any]:
    """`case precedents --json`: {matched, approved, denied, expired, pending, amount: {median,
    min, max}, recent: [...]} (issue 13), with the criteria used and, given --amount, where it
    stands among the approved amounts."""
    from empower_cli.render.precedents import band_json

    def money(cents: int | None) -> str | None:
        return None if cents is None else format_money(cents, digits)

    out: dict[str, Any] = {
        "matched": p.matched, "approved": p.approved, "denied": p.denied, "expired": p.expired,
        "pending": p.pending, "amount": {"median": money(p.median), "min": money(p.low), "max": money(p.high)},
        "recent": [{"case_id": r.case_id, "opened_at": r.opened_at, "status": r.status,
                    "amount": format_money(r.amount, digits), "agent": r.agent} for r in p.recent],
        "criteria": {
            "case_type": p.criteria.case_type, "action": p.criteria.action,
            "rules": [{"id": rid, "result": res} | band_json(p.criteria, rid, digits)
                      for rid, res in p.criteria.results if res != "pass"],
        },
    }  # fmt: skip
    if p.proposed is not None:
        out["proposed"] = {"amount": format_money(p.proposed, digits), "approved_at_or_below": p.at_or_below}
    return out


def report_file_json(path: object, size: int, period: dict[str, str | None], summary: dict[str, Any]) -> dict[str, Any]:
    """`audit report --html FILE --json`: where the report went, its size, period and case count."""
    return {"file": str(path), "bytes": size, "period": period, "cases": summary["cases"]}


def report_json(name: str, data: Report, digits: int) -> Any:
    """`audit NAME --format json`: a report's rows (audit.reports) in their JSON shape, money as
    text. Every other format (table, TSV, CSV, Markdown, the HTML report) reads this value."""

    def money(cents: int) -> str:
        return format_money(cents, digits)

    if name == "summary":
        return _summary_json(cast("SummaryReport", data), money)
    rows: list[Any] = list(cast("list[Any]", data))
    if name == "agents":
        return [{"agent": a.agent, "cases": a.cases, "discretion_rate": share(a.discretion_cases, a.cases),
                 "spent": money(a.spent), "mean_amount": money(a.mean_amount), "escalations": a.escalations,
                 "objections_received": a.objections_received, "flags": flags_json(a.flags),
                 "spend_share": a.spend_share}
                for a in rows]  # fmt: skip
    if name == "rules":
        return [{"id": u.rule_id, "bent": u.bent, "blocked": u.blocked, "spent": money(u.spent),
                 "candidate": u.candidate, "suggested_limit": u.suggested_limit, "bent_share": u.bent_share,
                 "approved_share": u.approved_share, "retention": u.retention} for u in rows]  # fmt: skip
    if name == "customers":
        return [{"customer_id": c.customer_id, "cases": c.cases, "discretion_cases": c.discretion_cases,
                 "spent": money(c.spent), "budget_used_share": c.budget_used_share, "flags": flags_json(c.flags)}
                for c in rows]  # fmt: skip
    if name == "pairs":
        return [{"agent": p.agent, "cosigner": p.cosigner, "count": p.count, "share": p.share,
                 "flags": flags_json(p.flags)}
                for p in rows]  # fmt: skip
    return [{"kind": o.kind, "cases": o.cases, "satisfied": o.satisfied, "neutral": o.neutral,
             "dissatisfied": o.dissatisfied, "no_reaction": o.cases - o.satisfied - o.neutral - o.dissatisfied,
             "retained": o.retained, "lost": o.lost, "retention_unknown": o.cases - o.retained - o.lost,
             "retention": o.retention} for o in rows]  # fmt: skip


def flags_json(flags: Flags) -> list[dict[str, str]]:
    """A report row's flags: `[{code, text}]`, empty when the row is not flagged."""
    return [{"code": f.code, "text": f.text} for f in flags]


def report_with_period(name: str, data: Any, period: dict[str, str | None]) -> Any:
    """`audit NAME --format json`: every report as an object with its period; the five
    tables as `{period, rows}` (the summary already carries its `period`)."""
    return data if name == "summary" else {"period": period, "rows": data}


def period_json(period: Period) -> dict[str, str | None]:
    """A report's period: {since, until} as ISO text (None: open)."""
    from empower_cli.core.timeutil import iso

    return {"since": iso(period.since) if period.since else None, "until": iso(period.until) if period.until else None}


def _summary_json(s: SummaryReport, money: Callable[[int], str]) -> dict[str, Any]:
    return {
        "cases": s.cases, "in_policy_cases": s.in_policy, "in_policy_share": share(s.in_policy, s.cases),
        "discretion_cases": s.discretion_cases, "discretion_spent": money(s.discretion_spent),
        "escalations": s.escalations, "cosigns": s.cosigns, "objections": s.objections, "denials": s.denials,
        "expired": s.expired, "dissatisfied": s.dissatisfied,
        "retention": {"after_discretion": s.retention_after_discretion, "after_denial": s.retention_after_denial},
        "weekly_spend": [{"week": week, "spent": money(cents)} for week, cents in s.weekly_spend],
        "period": period_json(s.period),
    }  # fmt: skip
