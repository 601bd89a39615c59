"""What differs between two evaluations of one proposal: the preview an agent confirmed
and the verdict recorded under the write lock. Pure: plain text out, no terminal, no database.
"""

from __future__ import annotations

from empower_cli.core.models import BudgetState, Evaluation, RuleResult
from empower_cli.core.money import format_money

ARROW = "→"
AFTER_LABELS = {"limit": "budget limit after", "spent": "budget spent after",
                "held": "budget held after", "remaining": "remaining budget after"}  # fmt: skip


def budget_effect(ev: Evaluation, digits: int) -> str:
    """The budget effect as the evaluation panel words it."""
    effects = [f"holds {format_money(ev.held, digits)}"] if ev.held else []
    if ev.spent:
        effects.append(f"spends {format_money(ev.spent, digits)}")
    return " and ".join(effects) or "does not touch the budget"


def differences(preview: Evaluation, recorded: Evaluation, digits: int) -> list[str]:
    """One line per thing the agent was shown that the recorded verdict changed; [] if none.

    In the order of the evaluation panel: status, policy verdict, discretion, budget effect,
    the budget after the decision, rule results, then reasons removed (-) and added (+).
    """
    lines: list[str] = []

    def changed(label: str, old: str, new: str) -> None:
        if old != new:
            lines.append(f"{label}: {old} {ARROW} {new}")

    changed("status", preview.status, recorded.status)
    changed("in policy", _yes_no(preview.in_policy), _yes_no(recorded.in_policy))
    changed("discretionary amount", format_money(preview.discretionary_amount, digits),
            format_money(recorded.discretionary_amount, digits))  # fmt: skip
    changed("budget effect", budget_effect(preview, digits), budget_effect(recorded, digits))
    old_after, new_after = _figures(preview.budget_after), _figures(recorded.budget_after)
    for name, label in AFTER_LABELS.items():
        changed(label, format_money(old_after[name], digits), format_money(new_after[name], digits))
    lines.extend(_rule_changes(preview.rules, recorded.rules))
    lines.extend(f"- reason: {r}" for r in preview.reasons if r not in recorded.reasons)
    lines.extend(f"+ reason: {r}" for r in recorded.reasons if r not in preview.reasons)
    return lines


def why_it_changed(preview: Evaluation, recorded: Evaluation, digits: int) -> str:
    """A header for the differences that names the cause when the two evaluations tell it.

    The proposal, policy and role are the same for both; only the budget read under the
    lock and the clock (rules that count days) can differ.
    """
    before, now = preview.budget_before, recorded.budget_before
    if before != now:
        old, new = _figures(before), _figures(now)
        moved = [f"{name} {format_money(old[name], digits)} {ARROW} {format_money(new[name], digits)}"
                 for name in old if old[name] != new[name]]  # fmt: skip
        if before.count != now.count:
            moved.append(f"discretionary cases in the window {before.count} {ARROW} {now.count}")
        hint = "; another agent may have used it meanwhile" if now.remaining < before.remaining else ""
        return (f"the customer's budget changed between the preview and recording "
                f"(before this case: {', '.join(moved)}{hint})")  # fmt: skip
    if _rule_changes(preview.rules, recorded.rules):
        return ("the verdict changed between the preview and recording although the customer's budget "
                "did not: the date moved on, and rules that count days are checked when recording")  # fmt: skip
    return "the verdict changed between the preview and recording"


def _figures(budget: BudgetState) -> dict[str, int]:
    return {"limit": budget.limit, "spent": budget.spent, "held": budget.held, "remaining": budget.remaining}


def _rule_changes(old: tuple[RuleResult, ...], new: tuple[RuleResult, ...]) -> list[str]:
    """Rule results that differ, by rule id (both come from one policy, so the texts match)."""
    before = {r.id: r.result for r in old}
    after = {r.id: r.result for r in new}
    lines = [f"rule {r.id}: {before[r.id]} {ARROW} {r.result}" for r in new
             if r.id in before and before[r.id] != r.result]  # fmt: skip
    lines.extend(f"- rule {r.id}: {r.result}" for r in old if r.id not in after)
    lines.extend(f"+ rule {r.id}: {r.result}" for r in new if r.id not in before)
    return lines


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
