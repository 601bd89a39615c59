"""Reading import files (SPEC §7): CSV with a header row or JSON Lines, record by record,
each with the physical line where it starts and its raw text for the rejects file.

Bytes are read and decoded per line here, so an undecodable line or a NUL byte rejects
its own record only, never the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from empower_cli.errors import InvalidInput

Format = Literal["csv", "jsonl"]
REQUIRED = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount")
OPTIONAL = ("status", "justification", "cosigner", "supervisor", "reaction", "retained",
            "discretionary_amount", "segment", "settled_at")  # fmt: skip
FIELDS = REQUIRED + OPTIONAL
FACT_PREFIX = "fact."
MAX_FIELD_CHARS = 16 * 1024 * 1024  # csv's default (128 KiB) is too small for "very long fields"
BOM = b"\xef\xbb\xbf"

csv.field_size_limit(MAX_FIELD_CHARS)


class RowProblem(Exception):
    """A record that cannot be imported: the reason goes to the rejects file."""


Layout = tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]  # (field, column), (fact, column)


@dataclass(slots=True)
class Record:
    """One record as read: where it starts, its raw text, and its fields as text.

    A CSV record arrives as `cells` and its reader's `layout`; `fill()` turns them into
    fields and facts (on the worker process that validates it, not on the reader's)."""

    line: int
    raw: str
    fields: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    cells: list[str] | None = None
    layout: Layout | None = None

    def fill(self) -> None:
        cells, layout = self.cells, self.layout
        if cells is None or layout is None:
            return
        fields = {name: cells[i] for name, i in layout[0] if cells[i] != ""}
        text = fields.get("justification")
        if text is not None and "\r\n" in text:
            # Spreadsheets on Windows write CRLF inside quoted cells; read as one line break.
            fields["justification"] = text.replace("\r\n", "\n")
        self.fields = fields
        self.facts = {name: cells[i] for name, i in layout[1] if cells[i] != ""}
        self.cells = self.layout = None


# -- reading ------------------------------------------------------------------------


def detect_format(path: Path, given: str | None) -> Format:
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise InvalidInput("--format", f"expected csv or jsonl, got {given!r}")
        return "csv" if given == "csv" else "jsonl"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise InvalidInput("--format", f"cannot tell the format of {path.name} from its extension; pass --format csv|jsonl")


class _Lines:
    """Binary lines decoded one by one; a line that is not UTF-8 or holds a NUL byte is
    decoded leniently and marked, so the record it belongs to is rejected, not the file."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.number = 0  # physical lines consumed
        self.bytes = 0
        self.current: list[str] = []  # the lines of the record being read
        self.problem: str | None = None

    def take(self) -> tuple[str, str | None]:
        raw, problem = "".join(self.current), self.problem
        self.current = []
        self.problem = None
        return raw, problem

    def __iter__(self) -> Iterator[str]:
        first = True
        append = self.current.append
        for raw in self.stream:
            self.number += 1
            self.bytes += len(raw)
            if first:
                first = False
                if raw.startswith(BOM):
                    raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                text = raw.decode("utf-8", "backslashreplace")
                if self.problem is None:
                    self.problem = (f"line {self.number}: not valid UTF-8 "
                                    f"(byte 0x{raw[e.start]:02x} at column {e.start + 1})")  # fmt: skip
            if "\0" in text:
                text = text.replace("\0", "\\x00")
                if self.problem is None:
                    self.problem = f"line {self.number}: contains a NUL byte"
            if not self.current:
                append = self.current.append  # take() replaced the list
            append(text)
            yield text


class CsvReader:
    """CSV with a header row; facts as `fact.NAME` columns. The header is checked at once."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.lines = _Lines(stream)
        self.reader = csv.reader(iter(self.lines))
        try:
            header = next(self.reader)
        except StopIteration:
            raise InvalidInput(name, "the file is empty: expected a header row") from None
        except csv.Error as e:
            raise InvalidInput(name, f"the header row cannot be read ({e})") from None
        _, problem = self.lines.take()
        if problem:
            raise InvalidInput(name, f"the header row cannot be read ({problem})")
        self.columns = _check_header([h.strip() for h in header], name)
        self.width = len(header)
        self.ext_index = self.columns.index("external_id")
        self.layout: Layout = (
            tuple((c, i) for i, c in enumerate(self.columns) if c in FIELDS),
            tuple((c[len(FACT_PREFIX) :], i) for i, c in enumerate(self.columns) if c.startswith(FACT_PREFIX)),
        )

    def __iter__(self) -> Iterator[Record]:
        lines, reader, layout = self.lines, self.reader, self.layout
        while True:
            start = lines.number + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raw, problem = lines.take()
                yield Record(start, raw, problem=problem or f"not valid CSV ({e})")
                continue
            raw, problem = lines.take()
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if problem:
                yield Record(start, raw, problem=problem)
            elif len(row) != self.width:
                ext = {"external_id": row[self.ext_index]} if len(row) > self.ext_index else {}
                yield Record(start, raw, ext, problem=f"has {len(row)} fields; the header has {self.width}")
            else:
                yield Record(start, raw, cells=row, layout=layout)

    @property
    def bytes_read(self) -> int:
        return self.lines.bytes


def _check_header(columns: list[str], name: str) -> list[str]:
    problems = []
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    unknown = [c for c in columns if c not in FIELDS and not (c.startswith(FACT_PREFIX) and len(c) > len(FACT_PREFIX))]
    if unknown:
        problems.append(f"unknown columns: {', '.join(repr(c) for c in unknown)} (expected {', '.join(FIELDS)} "
                        f"and fact.NAME)")  # fmt: skip
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        problems.append(f"columns given twice: {', '.join(twice)}")
    if problems:
        raise InvalidInput(name, "; ".join(problems))
    return columns


class JsonlReader:
    """JSON Lines: one object per line; facts as a `facts` object. Numbers are kept as
    their exact text (never floats), so amounts parse exactly."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.lines = _Lines(stream)

    def __iter__(self) -> Iterator[Record]:
        lines = self.lines
        for text in lines:
            raw, problem = lines.take()
            if not text.strip():
                continue
            line = lines.number
            if problem:
                yield Record(line, raw, problem=problem)
                continue
            try:
                obj = json.loads(text, parse_float=str, parse_int=str)
            except ValueError as e:
                yield Record(line, raw, problem=f"not valid JSON ({e})")
                continue
            try:
                fields, facts = _json_fields(obj)
            except RowProblem as e:
                yield Record(line, raw, problem=str(e))
                continue
            yield Record(line, raw, fields, facts)

    @property
    def bytes_read(self) -> int:
        return self.lines.bytes


def _json_fields(obj: object) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(obj, dict):
        raise RowProblem("expected a JSON object on this line")
    unknown = [k for k in obj if k not in FIELDS and k != "facts"]
    if unknown:
        raise RowProblem(f"unknown fields: {', '.join(repr(k) for k in unknown[:5])}")
    fields: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "facts" or value is None or value == "":
            continue
        if isinstance(value, bool):
            if key != "retained":
                raise RowProblem(f"{key}: expected text, got {json.dumps(value)}")
        elif not isinstance(value, str):
            raise RowProblem(f"{key}: expected text or a number, got a JSON {type(value).__name__}")
        fields[key] = value
    raw_facts = obj.get("facts") or {}
    if not isinstance(raw_facts, dict):
        raise RowProblem("facts: expected a JSON object of NAME: VALUE")
    facts: dict[str, str] = {}
    for name, value in raw_facts.items():
        if value is None:
            continue
        if isinstance(value, bool):
            facts[name] = "yes" if value else "no"
        elif isinstance(value, str):
            facts[name] = value
        else:
            raise RowProblem(f"fact {name}: expected text, a number or true/false")
    return fields, facts
