"""Text as SPEC §9 wants it: the identifier rule (one customer, one identifier, one budget),
control characters made visible, and spreadsheet formulas neutralised.

Pure: which characters an identifier may hold, and the one-line reason when it holds another.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from empower_cli.core.errors import InvalidInput

# Characters that print as nothing, or break lines, or mean nothing (yet): two identifiers
# differing only in one of them look the same to a person and are two keys to SQLite.
REFUSED_CATEGORIES = {
    "Cc": "control character",
    "Cf": "format character",
    "Co": "private-use character",
    "Cn": "unassigned code point",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}
_MAX_SHOWN = 8  # code points shown in a message about a non-NFC sequence


def identifier_problem(value: str) -> str | None:
    """Why VALUE may not be an identifier, or None when it may (its length and its spaces
    are the caller's). The caller skips this for printable ASCII, which always passes."""
    for char in value:
        kind = REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            name = unicodedata.name(char, "")
            described = kind if not name or name.lower() == kind else f"{name}, {kind}"
            return (f"contains {_code(char)} ({described}); "
                    "identifiers may not hold invisible or control characters")  # fmt: skip
    if not unicodedata.is_normalized("NFC", value):
        written, nfc = _first_unnormalized(value)
        return (f"is not in Unicode NFC form ({_codes(written)} should be written {_codes(nfc)}); "
                "write identifiers in NFC (composed) form so that one name is one identifier")  # fmt: skip
    return None


def _first_unnormalized(value: str) -> tuple[str, str]:
    """The first stretch of VALUE that NFC changes, and what NFC makes of it: from the
    starter before the first change, through the combining marks after it, widened one
    character at a time where NFC composes across starters (Hangul jamo)."""
    nfc = unicodedata.normalize("NFC", value)
    first = next((i for i, (a, b) in enumerate(zip(value, nfc, strict=False)) if a != b),
                 min(len(value), len(nfc)))
    start = min(first, len(value) - 1)
    while start > 0 and unicodedata.combining(value[start]):
        start -= 1
    end = start + 1
    while end <= len(value):
        while end < len(value) and unicodedata.combining(value[end]):
            end += 1
        piece = value[start:end]
        fixed = unicodedata.normalize("NFC", piece)
        if fixed != piece:
            return piece, fixed
        end += 1
    return value[start:], nfc[start:]  # not reached for a value that is not NFC


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def _codes(text: str) -> str:
    shown = " ".join(_code(c) for c in text[:_MAX_SHOWN])
    return shown + (" …" if len(text) > _MAX_SHOWN else "")


@cache
def _invisible() -> re.Pattern[str]:
    """C0/C1 controls (but newline and tab), DEL, and the bidi/zero-width controls. Compiled
    on first use: its ranges beyond Latin-1 take re ~0.5 ms, and most commands print no
    message that needs it."""
    return re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    """Show control characters as codes (\\x1b, \\u202e) instead of interpreting them."""
    def code(m: re.Match[str]) -> str:
        c = ord(m.group(0))
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _invisible().sub(code, text)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """SPEC §8: a CSV cell a spreadsheet would read as a formula is prefixed with a quote."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000_000  # SPEC §9: real complaint narratives run past 15,000 characters
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\n\t]")


def clean_text(value: str, *, field: str, max_chars: int = MAX_TEXT_CHARS,
               single_line: bool = False) -> str:  # fmt: skip
    """Refuse text that cannot be stored and shown faithfully; return it unchanged otherwise."""
    if len(value) > max_chars:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {max_chars} are allowed")
    if value.isascii() and value.isprintable():
        return value  # the common case: printable ASCII has no control character and encodes
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid UTF-8 text") from None
    bad = _CONTROL.search(value) or (single_line and _LINE_BREAK.search(value))
    if bad:
        raise InvalidInput(field, f"contains a control character (U+{ord(bad.group(0)):04X})")
    return value


def clean_id(value: str | None, *, field: str) -> str:
    """An identifier (customer, agent, segment, external id): one line of visible text in NFC.

    " C-1", "C-1" + U+2060 and "C-1" must not become three customers with three budgets
    (or three agents): SPEC §9, the rule in text.identifier_problem.
    """
    if value is None or not (stripped := value.strip()):
        raise InvalidInput(field, "is required")
    if value != stripped:
        raise InvalidInput(field, f"{show(value)} has leading or trailing spaces")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {MAX_ID_CHARS} are allowed")
    if value.isascii() and value.isprintable():
        return value  # the import's hot path: printable ASCII is visible and already NFC
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid UTF-8 text") from None
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidInput(field, problem)
    return value


def same_person(a: str | None, b: str | None) -> bool:
    """The four-eyes comparison: "Alice" and "alice" are one person, whatever the source."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
