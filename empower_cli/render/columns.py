"""The audit reports' columns as people read them: the labels and formatted values of the
terminal tables (percentages, grouped money, yes/no), shared by the Markdown and HTML output.

The terminal tables (render/reports.py) draw bars beside these values; the labels here are
theirs, and tests/test_audit_share.py checks that each label still appears in the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FLAG = "⚑"


def pct(value: float | None) -> str:
    """A share in whole percent (one decimal under 10 %); – when there was nothing to divide."""
    return "–" if value is None else f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"


def pct_down(value: float | None) -> str:
    """A share of a limit in whole percent, rounded down: 99.995 % is not yet 100 %."""
    if value is None:
        return "–"
    return f"{math.floor(round(value * 100, 6))}%"


def grouped(money: str) -> str:
    """1234567.80 -> 1,234,567.80 (for the eye only; JSON and CSV keep the plain text)."""
    sign, digits = ("-", money[1:]) if money.startswith("-") else ("", money)
    whole, dot, frac = digits.partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def count(value: int) -> str:
    return f"{value:,}"


def text(value: Any) -> str:
    return "" if value is None else str(value)


def flag_text(flags: Sequence[Mapping[str, str]]) -> str:
    """A row's flags as people read them (and as TSV and CSV carry them): their texts, joined."""
    return "; ".join(f["text"] for f in flags)


def candidate(row: Mapping[str, Any]) -> str:
    """`yes · limit 32` / `no`, as the terminal's rules table reads."""
    out = "yes" if row["candidate"] else "no"
    if row["suggested_limit"] is not None:
        out += f" · limit {row['suggested_limit']}"
    return out


@dataclass(frozen=True)
class Column:
    """One column: the JSON key it shows, the terminal's label, a longer label for the HTML
    report, and how its value is written."""

    key: str
    label: str
    long: str
    show: Callable[[Any], str]
    numeric: bool = False
    whole_row: bool = False  # `show` takes the row (a cell built from several keys)

    def cell(self, row: Mapping[str, Any]) -> str:
        return self.show(row) if self.whole_row else self.show(row[self.key])


def _c(key: str, label: str, long: str | None = None, show: Callable[[Any], str] = count,
       numeric: bool = True) -> Column:  # fmt: skip
    return Column(key, label, long or label, show, numeric)


def _t(key: str, label: str, long: str | None = None) -> Column:
    return Column(key, label, long or label, text)


def _flags() -> Column:
    return Column("flags", "flag", "why flagged", flag_text)


COLUMNS: dict[str, tuple[Column, ...]] = {
    "agents": (
        _t("agent", "agent"), _c("cases", "cases"), _c("discretion_rate", "discr.", "discretion rate", pct),
        _c("spent", "spent", None, grouped), _c("mean_amount", "mean", "mean amount", grouped),
        _c("escalations", "esc.", "escalations"), _c("objections_received", "obj.", "objections"),
        _c("spend_share", "spend share", None, pct), _flags(),
    ),
    "rules": (
        _t("id", "rule"), _c("bent", "bent"), _c("blocked", "blocked"), _c("spent", "spent", None, grouped),
        _c("bent_share", "bent share", "bent share", pct),
        Column("candidate", "candidate", "candidate", candidate, whole_row=True),
    ),
    "customers": (
        _t("customer_id", "customer"), _c("cases", "cases"), _c("discretion_cases", "exceptions"),
        _c("spent", "spent", None, grouped), _c("budget_used_share", "budget used", None, pct_down),
        _flags(),
    ),
    "pairs": (
        _t("agent", "agent"), _t("cosigner", "co-signed by"), _c("count", "count", "co-signs"),
        _c("share", "share of the agent's co-signs", None, pct), _flags(),
    ),
    "outcomes": (
        Column("kind", "decision", "decision", lambda k: str(k).replace("_", " ")), _c("cases", "cases"),
        _c("satisfied", "satisf.", "satisfied"), _c("neutral", "neutral"),
        _c("dissatisfied", "dissat.", "dissatisfied"), _c("retained", "kept", "retained"), _c("lost", "lost"),
        _c("retention", "retained", "retention", pct),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class SummaryLine:
    """One line of the summary: its label, the JSON path of its value, how it is written, and
    what the terminal shows beside it (a share of the cases, the currency)."""

    label: str
    path: tuple[str, ...]
    show: Callable[[Any], str]
    beside: str = ""  # "share": the value's share of all cases; "currency": the currency code


SUMMARY: tuple[SummaryLine, ...] = (
    SummaryLine("cases", ("cases",), count),
    SummaryLine("in policy", ("in_policy_cases",), count, "in_policy_share"),
    SummaryLine("discretion cases", ("discretion_cases",), count, "share"),
    SummaryLine("discretion spent", ("discretion_spent",), grouped, "currency"),
    SummaryLine("escalations", ("escalations",), count),
    SummaryLine("co-signs", ("cosigns",), count),
    SummaryLine("objections", ("objections",), count),
    SummaryLine("denials", ("denials",), count),
    SummaryLine("expired", ("expired",), count),
    SummaryLine("dissatisfied", ("dissatisfied",), count),
    SummaryLine("retained after discretion", ("retention", "after_discretion"), pct),
    SummaryLine("retained after a denial", ("retention", "after_denial"), pct),
)


def summary_value(data: Mapping[str, Any], line: SummaryLine) -> Any:
    value: Any = data
    for key in line.path:
        value = value[key]
    return value


def summary_beside(data: Mapping[str, Any], line: SummaryLine, currency: str) -> str:
    """What the terminal prints in the column beside a summary value."""
    if line.beside == "currency":
        return currency
    if line.beside == "share":
        cases = data["cases"]
        return pct(round(summary_value(data, line) / cases, 4) if cases else None)
    if line.beside:
        return pct(data[line.beside])
    return ""


def summary_lines(data: Mapping[str, Any], currency: str) -> list[tuple[str, str, str]]:
    """(label, value, beside) for each summary line, as the terminal writes them."""
    return [(line.label, line.show(summary_value(data, line)), summary_beside(data, line, currency))
            for line in SUMMARY]  # fmt: skip


def table_cells(report: str, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The labels and formatted cells of a report's rows (Markdown)."""
    columns = COLUMNS[report]
    return [c.label for c in columns], [[c.cell(row) for c in columns] for row in rows]
