"""Reading import files (SPEC §7): CSV with a header row or JSON Lines, record by record,
each with the physical line where it starts and its raw text for the rejects file.

Bytes are read and decoded per line here, so an undecodable line or a NUL byte rejects
its own record only, never the file.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Any, AnyStr, Literal

from empower_cli.core.errors import InvalidInput

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


def estimate_records(path: Path, sample_bytes: int = 1 << 20) -> int:
    """Roughly how many records a file holds, from the lines in its first MiB."""
    try:
        with path.open("rb") as f:
            sample = f.read(sample_bytes)
            size = f.seek(0, 2)
    except OSError:
        return 0
    if not sample:
        return 0
    return max(1, sample.count(b"\n")) * size // len(sample)


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
    """The file's lines (split at b"\\n" only, ends kept), decoded a block at a time; a line
    that is not UTF-8 or holds a NUL byte is decoded leniently and marked, so the record it
    belongs to is rejected, not the file.

    Iterating gives the lines to the CSV or JSON parser at C speed; `take(start, end)` then
    gives a record's raw text and first problem by line index (0-based), from the blocks
    still kept: the ones the current record reaches into, so memory stays one block or two.
    """

    BLOCK_BYTES = 1 << 20

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.bytes = 0
        self.kept: deque[tuple[int, list[str]]] = deque()  # (index of the first line, lines)
        self.next_line = 0  # index of the first line of the next block
        self.problems: dict[int, str] = {}  # line index -> why the line cannot be trusted

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[str]]:
        read, readline = self.stream.read, self.stream.readline
        block = read(self.BLOCK_BYTES)
        first = True
        while block:
            if not block.endswith(b"\n"):
                block += readline()  # end on a whole line
            self.bytes += len(block)
            if first:
                first = False
                if block.startswith(BOM):
                    block = block[len(BOM) :]
                    if not block:
                        return
            lines = self._decode(block)
            self.kept.append((self.next_line, lines))
            self.next_line += len(lines)
            yield lines
            block = read(self.BLOCK_BYTES)

    def _decode(self, block: bytes) -> list[str]:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return self._decode_lines(block)
        if "\0" in text:
            return self._decode_lines(block)
        return _split_lines(text, "\n")

    def _decode_lines(self, block: bytes) -> list[str]:
        """The slow way, line by line, for the rare block holding a bad line."""
        lines = []
        for offset, raw in enumerate(_split_lines(block, b"\n")):
            number = self.next_line + offset + 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                text = raw.decode("utf-8", "backslashreplace")
                self.problems[number - 1] = (f"line {number}: not valid UTF-8 "
                                             f"(byte 0x{raw[e.start]:02x} at column {e.start + 1})")  # fmt: skip
            if "\0" in text:
                text = text.replace("\0", "\\x00")
                self.problems.setdefault(number - 1, f"line {number}: contains a NUL byte")
            lines.append(text)
        return lines

    def take(self, start: int, end: int) -> tuple[str, str | None]:
        """The raw text of lines [start, end) and the first problem among them."""
        kept = self.kept
        while len(kept) > 1 and kept[0][0] + len(kept[0][1]) <= start:
            kept.popleft()
        first, lines = kept[0]
        if end - first <= len(lines):
            raw = lines[start - first] if end - start == 1 else "".join(lines[start - first : end - first])
        else:  # a record spanning blocks (a long quoted field)
            raw = "".join(line for base, block in kept for line in block[max(0, start - base) : max(0, end - base)])
        problem = None
        if self.problems:
            found = [i for i in self.problems if i < end]
            if found:
                inside = [i for i in found if i >= start]
                problem = self.problems[min(inside)] if inside else None
                for i in found:
                    del self.problems[i]
        return raw, problem


def _split_lines(data: AnyStr, newline: AnyStr) -> list[AnyStr]:
    """Lines split at `newline` only, each keeping it (splitlines() also splits at a lone
    carriage return, which CSV reads inside a field)."""
    parts = data.split(newline)
    last = parts.pop()  # after the last newline: empty unless the file lacks a final one
    lines = [part + newline for part in parts]
    if last:
        lines.append(last)
    return lines


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
        _, problem = self.lines.take(0, self.reader.line_num)
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
        take, reader, layout = self.lines.take, self.reader, self.layout
        while True:
            start = reader.line_num  # lines consumed so far: this record's first line index
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raw, problem = take(start, reader.line_num)
                yield Record(start + 1, raw, problem=problem or f"not valid CSV ({e})")
                continue
            raw, problem = take(start, reader.line_num)
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            start += 1  # the line number users see
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
        for index, text in enumerate(lines):
            raw, problem = lines.take(index, index + 1)
            if not text.strip():
                continue
            line = index + 1
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
