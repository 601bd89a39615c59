"""Lists for pipes and spreadsheets: every value whole, one row a line, no box drawing.

TSV (what a list prints when stdout is not a terminal, as `gh` does) and CSV, both with a
header row; the rows are the same objects `--json` prints, so a column is named by its JSON key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from empower_cli.core.text import neutralise, visible

Rows = tuple[list[str], list[list[Any]]]  # (header, rows of values)


def cell_text(value: Any) -> str:
    """A value as a cell: null is empty, booleans true/false, a list its items joined by commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(cell_text(v) for v in value)
    return str(value)


def tsv_cell(value: Any) -> str:
    """A tab, line break or control character in a cell would break its line: shown as a code."""
    return visible(cell_text(value)).replace("\t", "\\t").replace("\n", "\\n")


def rows_of_objects(objects: Sequence[Mapping[str, Any]], header: Sequence[str] = ()) -> Rows:
    """The header (the first object's keys, or HEADER when there is none) and the rows."""
    keys = list(objects[0]) if objects else list(header)
    return keys, [[o.get(k) for k in keys] for o in objects]


def tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["\t".join(tsv_cell(h) for h in header)] if header else []
    lines += ["\t".join(tsv_cell(v) for v in row) for row in rows]
    return "".join(line + "\n" for line in lines)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV whose cells a spreadsheet cannot run as formulas (SPEC §8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # with these line ends a bare CR is quoted too
    if header:
        writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(cell_text(v)) for v in row])
    return out.getvalue()


def delimited(fmt: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """`tsv` or `csv` text of a list."""
    return tsv(header, rows) if fmt == "tsv" else csv_text(header, rows)
