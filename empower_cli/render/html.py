"""The shareable audit report: one self-contained HTML file (inline CSS and SVG charts, no
script, no network), rendered by Jinja2 with autoescaping from templates/report.html.j2.

Every figure carries `data-path` (where it sits in the reports' JSON, e.g. `agents.2.spent`)
and `data-value` (that JSON value), so a reader or a test can check it against `audit --json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from empower_cli.render.columns import (
    COLUMNS,
    SUMMARY,
    Column,
    count,
    flag_text,
    pct,
    summary_beside,
    summary_value,
    text,
)

CHART_WIDTH = 720
CHART_HEIGHT = 160
BAR_ROW = 22  # height of one horizontal bar's row


@dataclass(frozen=True)
class Cell:
    text: str
    path: str = ""  # empty: a label, not a figure
    value: str = ""  # the JSON value at `path`, as JSON text
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    key: str
    headers: list[tuple[str, bool]]  # (label, numeric)
    rows: list[tuple[bool, list[Cell], Cell | None]]  # (flagged, cells, why it is flagged)
    flagged: int = 0


@dataclass(frozen=True)
class Bar:
    label: str
    cell: Cell
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    vertical: bool  # one bar per week (vertical) or one labelled bar per row (horizontal)
    bars: list[Bar] = field(default_factory=list)
    notes: list[Cell] = field(default_factory=list)


def figure(path: str, value: Any, shown: str, numeric: bool = True) -> Cell:
    from empower_cli.core.text import visible

    return Cell(visible(shown), path, json.dumps(value, ensure_ascii=False), numeric)


def rows_of(data: Any) -> list[Mapping[str, Any]]:
    """A report's rows (a bare list, or the `rows` of a `{period, rows}` object)."""
    return list(data["rows"]) if isinstance(data, Mapping) and "rows" in data else list(data)


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


# The HTML tables show every JSON figure: the terminal's columns, with the rules' candidate
# cell split in two, their approved and retained shares and the outcomes' unknowns added.
HTML_COLUMNS: dict[str, tuple[Column, ...]] = {
    **COLUMNS,
    "rules": (*COLUMNS["rules"][:-1], Column("approved_share", "", "approved", pct, numeric=True),
              Column("retention", "", "retained", pct, numeric=True),
              Column("candidate", "candidate", "candidate", _yes_no),
              Column("suggested_limit", "limit", "suggested limit", text, numeric=True)),
    "outcomes": (*COLUMNS["outcomes"][:5], Column("no_reaction", "", "no reaction", count, numeric=True),
                 *COLUMNS["outcomes"][5:7], Column("retention_unknown", "", "outcome unknown", count, numeric=True),
                 COLUMNS["outcomes"][7]),
}  # fmt: skip


def table(report: str, data: Any, *, flagged_first: bool = False) -> Table:
    columns = [c for c in HTML_COLUMNS[report] if c.key != "flags"]  # a flag's reason: a row of its own
    rows: list[tuple[bool, list[Cell], Cell | None]] = []
    for index, row in enumerate(rows_of(data)):
        cells = [figure(f"{report}.{index}.{c.key}", row[c.key], c.cell(row), c.numeric) for c in columns]
        flags = flag_text(row["flags"]) if row.get("flags") else None
        why = figure(f"{report}.{index}.flags", row["flags"], flags, numeric=False) if flags else None
        rows.append((why is not None or bool(row.get("candidate")), cells, why))
    if flagged_first:
        rows.sort(key=lambda r: not r[0])  # stable: the report's order within each group
    return Table(report, [(c.long, c.numeric) for c in columns], rows, sum(f for f, _, _ in rows))


def summary_cells(data: Mapping[str, Any], currency: str) -> list[tuple[str, Cell, Cell]]:
    """(label, value, what the terminal shows beside it) per summary line."""
    out = []
    for line in SUMMARY:
        value = summary_value(data, line)
        beside = summary_beside(data, line, currency)
        if line.beside not in ("", "share", "currency"):  # a figure of the JSON itself
            beside_cell = figure(f"summary.{line.beside}", data[line.beside], beside, numeric=False)
        else:
            beside_cell = Cell(beside)
        out.append((line.label, figure("summary." + ".".join(line.path), value, line.show(value)), beside_cell))
    return out


def minor_units(money: str) -> int:
    """A money string as format_money wrote it, back to minor units (for bar lengths only)."""
    return int(money.replace(".", "", 1))


def weekly_chart(data: Mapping[str, Any], currency: str) -> Chart:
    """Approved discretion per week of opening, one vertical bar per week."""
    from empower_cli.render.columns import grouped

    weeks = data.get("weekly_spend") or []
    chart = Chart(f"Discretion spent per week ({currency})", CHART_WIDTH, CHART_HEIGHT + 20, vertical=True)
    if not weeks:
        return chart
    cents = [minor_units(w["spent"]) for w in weeks]
    top = max(cents) or 1
    step = min(CHART_WIDTH / len(weeks), 48.0)
    for k, (week, amount) in enumerate(zip(weeks, cents, strict=True)):
        h = CHART_HEIGHT * amount / top
        cell = figure(f"summary.weekly_spend.{k}.spent", week["spent"], grouped(week["spent"]))
        chart.bars.append(Bar(week["week"], cell, k * step + 0.5, CHART_HEIGHT - h, max(step - 1, 0.5), h))
    high = max(range(len(weeks)), key=lambda k: cents[k])
    chart.notes.append(figure(f"summary.weekly_spend.{high}.spent", weeks[high]["spent"],
                              f"highest: week of {weeks[high]['week']}, {grouped(weeks[high]['spent'])} {currency}"))
    return chart


def share_chart(title: str, report: str, data: Any, label_key: str, share_key: str) -> Chart:
    """One horizontal bar per row: a share between 0 and 1 (– when there is none)."""
    from empower_cli.core.text import visible

    rows = rows_of(data)
    label_width = 200
    chart = Chart(title, CHART_WIDTH, max(len(rows), 1) * BAR_ROW, vertical=False)
    span = CHART_WIDTH - label_width - 60
    for index, row in enumerate(rows):
        value = row[share_key]
        cell = figure(f"{report}.{index}.{share_key}", value, pct(value))
        label = visible(str(row[label_key]).replace("_", " ") if report == "outcomes" else str(row[label_key]))
        chart.bars.append(Bar(label, cell, label_width, index * BAR_ROW + 4, span * (value or 0), BAR_ROW - 8))
    return chart


def report_html(reports: Mapping[str, Any], *, currency: str, period: str, generated: str,
                policy_version: str) -> str:  # fmt: skip
    """The whole report as one HTML document."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("empower_cli.render", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    summary = reports["summary"]
    context = {
        "currency": currency, "period": period, "generated": generated, "policy_version": policy_version,
        "summary": summary_cells(summary, currency), "weekly": weekly_chart(summary, currency),
        "agents": table("agents", reports["agents"]),
        "agents_chart": share_chart("Share of the discretion spent, per agent", "agents", reports["agents"],
                                    "agent", "spend_share"),
        "rules": table("rules", reports["rules"]), "customers": table("customers", reports["customers"]),
        "pairs": table("pairs", reports["pairs"], flagged_first=True),
        "outcomes": table("outcomes", reports["outcomes"]),
        "outcomes_chart": share_chart("Customers retained, by decision", "outcomes", reports["outcomes"],
                                      "kind", "retention"),
    }  # fmt: skip
    return env.get_template("report.html.j2").render(context)

