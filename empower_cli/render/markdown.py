"""The audit reports as Markdown for people: the terminal's labels and formatted values
(grouped money, percentages, yes/no), one table per report under a title naming the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from empower_cli.render.columns import summary_lines, table_cells


def cell(value: str) -> str:
    """Text safe inside a Markdown table cell: control characters shown as codes, pipes and
    backslashes escaped, HTML tags neutralised, one line."""
    from empower_cli.core.text import visible

    escaped = visible(value).replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def report_markdown(report: str, data: Any, *, currency: str, period: str) -> str:
    """One report: a title line (`**agents** · all recorded cases`), then its table."""
    from empower_cli.render.columns import COLUMNS

    title = f"**{report}** · {cell(period)}"
    if report == "summary":
        lines = table(["metric", "value", ""], summary_lines(data, currency), [False, True, False])
        return "\n".join([title, "", *lines]) + "\n"
    rows: Sequence[Mapping[str, Any]] = data
    if not rows:
        return f"{title}\n\n_No {report} in this period._\n"
    header, cells = table_cells(report, rows)
    numeric = [c.numeric for c in COLUMNS[report]]
    return "\n".join([title, "", *table(header, cells, numeric)]) + "\n"
