"""Where a policy problem is: file:line:column for TOML errors and for any key path.

The locator scans the TOML source text (tomllib keeps no positions), so that every
problem the policy loader reports can point at the line a policy author must edit.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from functools import cached_property

Key = str | int
KeyPath = tuple[Key, ...]


def toml_error(filename: str, message: str, text: str) -> str:
    # Python 3.11's tomllib only puts the position in the text: "... (at line 3, column 7)".
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if m:
        plain = message[: m.start()].strip()
        return f"{filename}:{m.group(1)}:{m.group(2)}: invalid TOML: {plain}"
    m = re.search(r"\(at end of document\)", message)
    if m:
        lines = text.split("\n")
        plain = message[: m.start()].strip()
        return f"{filename}:{len(lines)}:{len(lines[-1]) + 1}: invalid TOML: {plain} at the end of the file"
    return f"{filename}:1:1: invalid TOML: {message}"


def _key_text(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted with escapes, so a
    problem stays on one line whatever the key holds (a newline, an escape sequence)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


class Problems:
    """Collects problems, locating each key path in the source text."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.source = text
        self.found: list[tuple[int, int, str]] = []

    # The scans below run only when a problem must be located: a valid policy, which every
    # command parses from the database on each start, needs none of them.

    @cached_property
    def code(self) -> str:
        """The source with the same offsets, value strings and comments blanked."""
        return _blank_values(self.source)

    @cached_property
    def line_starts(self) -> list[int]:
        return [0, *(i + 1 for i, c in enumerate(self.source) if c == "\n")]

    @cached_property
    def headers(self) -> list[tuple[int, KeyPath, int]]:
        return _headers(self.code, self.line_starts)

    @property
    def items(self) -> list[str]:
        # Report in file order, so an author can work from the top down.
        return [text for _, _, text in sorted(self.found, key=lambda p: (p[0], p[1]))]

    def add(self, path: KeyPath, message: str) -> None:
        line, col = self.locate(path)
        where = ".".join(_key_text(k) if isinstance(k, str) else f"[{k}]" for k in path)
        where = where.replace(".[", "[")
        self.found.append((line, col, f"{self.filename}:{line}:{col}: {where}: {message}"))

    def locate(self, path: KeyPath) -> tuple[int, int]:
        offset = self._offset(path)[0]
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return line + 1, offset - self.line_starts[line] + 1

    def raw_value(self, path: KeyPath) -> str | None:
        """The source text of a scalar value (to see how a number was written), if found."""
        offset, exact = self._offset(path)
        if not exact:
            return None
        m = re.compile(r"[^=\[]*=\s*" if isinstance(path[-1], str) else r"").match(self.code, offset)
        if m is None:
            return None
        token = re.compile(r"[^\s,}\]#]+").match(self.source, m.end())
        return token.group(0) if token else None

    def _offset(self, path: KeyPath) -> tuple[int, bool]:
        """Offset of the deepest part of `path` found, and whether all of it was found."""
        code, depth = self.code, 0
        pos, lo, hi = 0, 0, self.headers[0][0] if self.headers else len(code)
        for start, hpath, end in self.headers:
            n = len(hpath)
            if n > depth and path[:n] == hpath:
                pos, lo, hi, depth = start, code.find("\n", start) + 1 or end, end, n
        if depth == 0 and path:
            # A table only made of sub-tables ([roles.agent]): point at its first header.
            prefixed = [start for start, hpath, _ in self.headers if hpath[: len(path)] == path]
            if prefixed:
                return prefixed[0], True
        return self._descend(path[depth:], pos, lo, hi)

    def _descend(self, parts: KeyPath, pos: int, lo: int, hi: int) -> tuple[int, bool]:
        """Find `parts` inside [lo, hi); a key may occur several times (dotted keys such as
        `roles.agent.x` and `roles.agent.y` on two lines): try each, keep the first full match."""
        if not parts:
            return pos, True
        part, rest = parts[0], parts[1:]
        if isinstance(part, int):
            span = self._element(part, lo, hi)
            return (pos, False) if span is None else self._descend(rest, *span)
        first: tuple[int, bool] | None = None
        for span in self._keys(part, lo, hi):
            found = self._descend(rest, *span)
            if found[1]:
                return found
            first = first or found
        return first or (pos, False)

    def _keys(self, key: str, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        pattern = re.compile(r'(?:^|(?<=[\s{,.]))(["\']?)' + re.escape(key) + r"\1[ \t]*([=.])", re.M)
        for m in pattern.finditer(self.code, lo, hi):
            if m.group(2) == ".":  # a dotted key: the rest of the path is on this line
                yield m.start(), m.end(), _line_end(self.code, m.end(), hi)
                continue
            value = m.end() + len(self.code[m.end() : hi]) - len(self.code[m.end() : hi].lstrip(" \t"))
            if value < hi and self.code[value] in "[{":
                yield m.start(), value, _closing(self.code, value, hi)
            else:
                yield m.start(), value, _line_end(self.code, value, hi)

    def _element(self, index: int, lo: int, hi: int) -> tuple[int, int, int] | None:
        code = self.code
        if lo >= hi or code[lo] != "[":
            return None
        depth, count, start = 0, 0, -1
        for j in range(lo + 1, hi):
            c = code[j]
            if depth == 0 and start < 0 and not c.isspace() and c not in ",]":
                start = j
            if c in "[{":
                depth += 1
            elif c in "]}" and depth > 0:
                depth -= 1
            elif depth == 0 and c in ",]":
                if start >= 0:
                    if count == index:
                        return start, start, j
                    count += 1
                    start = -1
                if c == "]":
                    return None
        return None


def _line_end(code: str, start: int, hi: int) -> int:
    end = code.find("\n", start, hi)
    return hi if end < 0 else end


def _closing(code: str, start: int, hi: int) -> int:
    """The offset just past the bracket that closes the one at `start` (strings are blanked)."""
    depth = 0
    for j in range(start, hi):
        if code[j] in "[{":
            depth += 1
        elif code[j] in "]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return hi


def _blank_values(text: str) -> str:
    """`text` with comments and the inside of value strings replaced by spaces.

    Offsets and newlines are kept, so a search for `key =` or for brackets in the result
    never matches inside a string value or a comment. Quoted keys are kept.
    """
    out = list(text)
    stack: list[str] = []
    last = "\n"  # the last significant character, to tell a key from a value
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        if c in "\"'":
            delim = c * 3 if text.startswith(c * 3, i) else c
            j = i + len(delim)
            while j < n and not text.startswith(delim, j) and (len(delim) == 3 or text[j] != "\n"):
                j += 2 if c == '"' and text[j] == "\\" else 1
            j = min(j, n)
            if last == "=" or (last in "[," and stack and stack[-1] == "["):
                for k in range(i + len(delim), j):
                    if text[k] != "\n":
                        out[k] = " "
            last = "v"
            i = j + len(delim)
            continue
        if c in "[{":
            stack.append(c)
        elif c in "]}" and stack:
            stack.pop()
        if not c.isspace():
            last = c
        elif c == "\n" and not stack:
            last = "\n"
        i += 1
    return "".join(out)


def _headers(code: str, line_starts: list[int]) -> list[tuple[int, KeyPath, int]]:
    """Table headers as (offset, key path, end of section); [[x]] paths carry their index."""
    found: list[tuple[int, KeyPath]] = []
    counts: dict[KeyPath, int] = {}
    depth = 0
    for k, start in enumerate(line_starts):
        end = line_starts[k + 1] if k + 1 < len(line_starts) else len(code)
        line = code[start:end]
        m = re.match(r"[ \t]*(\[\[?)[ \t]*([^\[\]]+?)[ \t]*\]\]?[ \t]*$", line.rstrip("\n"))
        if depth == 0 and m:
            keys = _split_key(m.group(2))
            path: list[Key] = []
            for i, key in enumerate(keys, start=1):
                path.append(key)
                prefix = tuple(keys[:i])
                if i == len(keys) and m.group(1) == "[[":
                    counts[prefix] = counts.get(prefix, 0) + 1
                if prefix in counts:
                    path.append(counts[prefix] - 1)
            found.append((start + len(line) - len(line.lstrip()), tuple(path)))
        depth += line.count("[") + line.count("{") - line.count("]") - line.count("}")
        depth = max(depth, 0)
    ends = [start for start, _ in found[1:]] + [len(code)] if found else []
    return [(start, path, end) for (start, path), end in zip(found, ends, strict=True)]


def _split_key(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", text)]
