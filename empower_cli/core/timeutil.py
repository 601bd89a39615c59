"""Time as the store keeps it: UTC, ISO 8601 text that sorts in time order.

Also parses the `WHEN` of `--since/--until`: an ISO date/time or a duration like 30d.
"""

from __future__ import annotations

import datetime as dt
import re

from empower_cli.core.errors import InvalidInput

UTC = dt.timezone.utc
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ISO_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.,]+)?(Z|[+-]\d{2}:?\d{2})?", flags=re.ASCII)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(moment: dt.datetime) -> str:
    """Fixed-width UTC text, so that comparing strings compares times."""
    # Not strftime: its %Y does not pad years before 1000 ("500-01-01" sorts after "2026").
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_stored(at: str) -> dt.datetime:
    """A time as the store writes it (`iso`) back to an aware UTC datetime."""
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def iso_utc(moment: dt.datetime) -> str:
    """`iso(moment)` for a moment already in UTC (as parse_iso returns it), at a third of the
    cost: the import writes three per row. tests/test_timeutil.py holds the two equal."""
    # isoformat() with no timespec is the fastest; it leaves out a zero microsecond.
    text = moment.isoformat()[:-6]  # without "+00:00"
    return text + "Z" if moment.microsecond else text + ".000000Z"


def parse_iso(text: str, *, field: str) -> dt.datetime:
    """An ISO 8601 date or date-time; UTC when it has no offset."""
    value = text.strip()
    if not _ISO_TEXT.fullmatch(value):
        raise InvalidInput(field, f"expected an ISO date or time like 2026-11-23T10:00, got {value[:40]!r}")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(",", "."))
    except ValueError:
        raise InvalidInput(field, f"{value[:40]!r} is not a real date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-05:00 is past the last representable instant
        raise InvalidInput(field, f"{value[:40]!r} is out of range") from None


def parse_when(text: str, *, now: dt.datetime, field: str) -> dt.datetime:
    """`30d`, `12h`, `2w`… ago, or an ISO date/time."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text, flags=re.ASCII)
    if m:
        try:
            return now - dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        except (OverflowError, ValueError):  # ValueError: more digits than int() reads
            raise InvalidInput(field, f"{text.strip()[:40]!r} is too large: it reaches back before year 1") from None
    return parse_iso(text, field=field)


def age(since: str, now: dt.datetime) -> str:
    """A short human duration between an ISO time and now: 3d, 5h, 12m."""
    seconds = max(0, int((now - parse_stored(since)).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
