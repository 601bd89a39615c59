"""How the audit reports leave the program: rich tables with small bars and sparklines for
a terminal 80 columns wide, CSV that a spreadsheet cannot execute, and Markdown tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from empower_cli.render.columns import FLAG, flag_text, grouped, pct, pct_down
from empower_cli.render.tabular import cell_text

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

FORMATS = ("table", "tsv", "json", "csv", "markdown")
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60


# -- rows for CSV and Markdown ---------------------------------------------------------


def rows_of(report: str, data: Any) -> tuple[list[str], list[list[Any]]]:
    """The header and rows a report carries in CSV and Markdown (the same rows as JSON;
    the summary as metric/value pairs, without its weekly series)."""
    if report == "summary":
        flat: list[list[Any]] = []
        for key, value in data.items():
            if key == "weekly_spend":
                continue
            if isinstance(value, Mapping):
                flat += [[f"{key}.{sub}", v] for sub, v in value.items()]
            else:
                flat.append([key, value])
        return ["metric", "value"], flat
    if not data:
        return [], []
    header = list(data[0])
    return header, [[flag_text(row[k]) if k == "flags" else row[k] for k in header] for row in data]


# -- little pictures -------------------------------------------------------------------


def bar(fraction: float | None, width: int = 10) -> str:
    """A horizontal bar in eighths of a character: 0.0 is empty, 1.0 is `width` wide."""
    if fraction is None:
        return ""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    return ("█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")).ljust(width)


def sparkline(values: Sequence[int], width: int = SPARK_WIDTH) -> str:
    """One character per value (adjacent values summed when there are more than `width`)."""
    if not values:
        return ""
    if len(values) > width:
        size = -(-len(values) // width)
        values = [sum(values[k : k + size]) for k in range(0, len(values), size)]
    top = max(values)
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(_SPARKS[min(7, (v * 8) // (top + 1))] if v > 0 else " " for v in values)


# -- tables ----------------------------------------------------------------------------


def table(report: str, data: Any, *, currency: str, period: str) -> RenderableType:
    from rich.console import Group

    title = f"[bold]{report}[/] · {period}"
    if report == "summary":
        return Group(title, *_summary(data, currency))
    if not data:
        return Group(title, f"[dim]no {report} in this period[/]")
    build = {"agents": _agents, "rules": _rules, "customers": _customers, "pairs": _pairs, "outcomes": _outcomes}
    from empower_cli.render.terminal import Fitted

    parts: list[RenderableType] = [title, Fitted(build[report](data))]
    notes = [f"[yellow]{FLAG}[/] {_safe(row.get(_key(report)))}: {_safe(flag_text(row['flags']))}"
             for row in data if row.get("flags")]
    return Group(*parts, *notes)


def _key(report: str) -> str:
    return {"customers": "customer_id"}.get(report, "agent")


def _safe(value: Any) -> str:
    from empower_cli.render.terminal import safe

    return safe(cell_text(value))


def _new_table(*columns: str) -> Table:
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False, padding=(0, 1))
    for col in columns:
        name, _, how = col.partition(":")
        t.add_column(name, justify="right" if how == "r" else "left", no_wrap=how != "w", overflow="fold")
    return t


def _flag(row: Mapping[str, Any]) -> str:
    return f" [yellow]{FLAG}[/]" if row.get("flags") else ""


def _summary(s: Mapping[str, Any], currency: str) -> list[RenderableType]:
    from rich.table import Table

    from empower_cli.core.money import share

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(justify="right")
    grid.add_column()
    cases = s["cases"]
    rows = [
        ("cases", f"{cases:,}", ""),
        ("in policy", f"{s['in_policy_cases']:,}", pct(s["in_policy_share"])),
        ("discretion cases", f"{s['discretion_cases']:,}", pct(share(s["discretion_cases"], cases))),
        ("discretion spent", grouped(s["discretion_spent"]), currency),
        ("escalations", f"{s['escalations']:,}", ""),
        ("co-signs", f"{s['cosigns']:,}", ""),
        ("objections", f"{s['objections']:,}", ""),
        ("denials", f"{s['denials']:,}", ""),
        ("expired", f"{s['expired']:,}", ""),
        ("dissatisfied", f"{s['dissatisfied']:,}", ""),
        ("retained after discretion", pct(s["retention"]["after_discretion"]),
         bar(s["retention"]["after_discretion"], 20)),
        ("retained after a denial", pct(s["retention"]["after_denial"]), bar(s["retention"]["after_denial"], 20)),
    ]  # fmt: skip
    for row in rows:
        grid.add_row(*row)
    parts: list[RenderableType] = [grid]
    weeks = s.get("weekly_spend") or []
    if weeks:
        cents = [_minor_units(w["spent"]) for w in weeks]
        top = max(range(len(weeks)), key=lambda k: cents[k])
        parts.append(f"\n[bold]discretion spent per week[/] ({weeks[0]['week']} … {weeks[-1]['week']}, "
                     f"{len(weeks)} weeks)")  # fmt: skip
        parts.append(f"[cyan]{sparkline(cents)}[/]")
        parts.append(f"[dim]highest: week of {weeks[top]['week']}, {grouped(weeks[top]['spent'])} {currency}[/]")
    return parts


def _minor_units(money: str) -> int:
    """A sum as format_money wrote it ("1234.50") back to minor units. Not parse_money: a
    week's spend is a sum of amounts and may exceed the cap on one amount."""
    return int(money.replace(".", "", 1))


def _agents(rows: Sequence[Mapping[str, Any]]) -> Table:
    t = _new_table("agent:w", "cases:r", "discr.:r", "spent:r", "mean:r", "esc.:r", "obj.:r", "spend share")
    top = max((r.get("spend_share") or 0 for r in rows), default=0) or 1  # bars relative to the largest
    for r in rows:
        t.add_row(_safe(r["agent"]) + _flag(r), f"{r['cases']:,}", pct(r["discretion_rate"]), grouped(r["spent"]),
                  grouped(r["mean_amount"]), f"{r['escalations']:,}", f"{r['objections_received']:,}",
                  f"[cyan]{bar((r.get('spend_share') or 0) / top, 6)}[/] {pct(r.get('spend_share'))}")  # fmt: skip
    return t


def _rules(rows: Sequence[Mapping[str, Any]]) -> Table:
    t = _new_table("rule:w", "bent:r", "blocked:r", "spent:r", "bent share", "candidate")
    for r in rows:
        cand = "[green]yes[/]" if r["candidate"] else "no"
        if r["suggested_limit"] is not None:
            cand += f" · limit {_safe(r['suggested_limit'])}"
        t.add_row(_safe(r["id"]), f"{r['bent']:,}", f"{r['blocked']:,}", grouped(r["spent"]),
                  f"[cyan]{bar(r.get('bent_share'), 6)}[/] {pct(r.get('bent_share'))}", cand)  # fmt: skip
    return t


def _customers(rows: Sequence[Mapping[str, Any]]) -> Table:
    t = _new_table("customer:w", "cases:r", "exceptions:r", "spent:r", "budget used")
    for r in rows:
        used = r["budget_used_share"]
        style = "red" if any(f["code"] == "budget_used" for f in r["flags"]) else "cyan"  # the report's decision
        t.add_row(_safe(r["customer_id"]) + _flag(r), f"{r['cases']:,}", f"{r['discretion_cases']:,}",
                  grouped(r["spent"]), f"[{style}]{bar(used, 10)}[/] {pct_down(used)}")  # fmt: skip
    return t


def _pairs(rows: Sequence[Mapping[str, Any]]) -> Table:
    t = _new_table("agent:w", "co-signed by:w", "count:r", "share of the agent's co-signs")
    for r in rows:
        t.add_row(_safe(r["agent"]) + _flag(r), _safe(r["cosigner"]), f"{r['count']:,}",
                  f"[cyan]{bar(r['share'], 16)}[/] {pct(r['share'])}")  # fmt: skip
    return t


def _outcomes(rows: Sequence[Mapping[str, Any]]) -> Table:
    t = _new_table("decision", "cases:r", "satisf.:r", "neutral:r", "dissat.:r", "kept:r", "lost:r", "retained")
    for r in rows:
        t.add_row(r["kind"].replace("_", " "), f"{r['cases']:,}", f"{r['satisfied']:,}", f"{r['neutral']:,}",
                  f"{r['dissatisfied']:,}", f"{r['retained']:,}", f"{r['lost']:,}",
                  f"[cyan]{bar(r['retention'], 4)}[/] {pct(r['retention'])}")  # fmt: skip
    return t
