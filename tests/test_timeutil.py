"""Times as the store keeps them (fixed-width UTC text that sorts) and the WHEN of --since."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empower_cli.core.errors import InvalidInput
from empower_cli.core.timeutil import iso, iso_utc, parse_iso, parse_when

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_iso_text_sorts_like_the_times_it_stands_for(a: dt.datetime, b: dt.datetime) -> None:
    assert len(iso(a)) == len(iso(b)) == 27
    assert (iso(a) < iso(b)) == (a < b)
    assert parse_iso(iso(a), field="t") == a


@given(st.datetimes(timezones=st.just(UTC)), st.sampled_from(["", "Z", "+02:00", "-05:30"]))
def test_the_imports_fast_iso_writes_what_iso_writes(moment: dt.datetime, offset: str) -> None:
    assert iso_utc(moment) == iso(moment)
    try:  # as the import gets its times: parsed from text, with any offset
        parsed = parse_iso(moment.replace(tzinfo=None).isoformat() + offset, field="opened_at")
    except InvalidInput:
        return  # past the last (or before the first) representable instant once in UTC
    assert iso_utc(parsed) == iso(parsed)


def test_times_with_an_offset_are_stored_in_utc() -> None:
    assert iso(dt.datetime(2026, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == "2026-01-01T03:00:00.000000Z"
    assert parse_iso("2026-01-01T05:00", field="t") == dt.datetime(2026, 1, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [("30d", NOW - dt.timedelta(days=30)),
                                                 ("12h", NOW - dt.timedelta(hours=12)),
                                                 ("2w", NOW - dt.timedelta(weeks=2)),
                                                 ("2026-11-01", dt.datetime(2026, 11, 1, tzinfo=UTC))])  # fmt: skip
def test_when_is_a_duration_ago_or_an_iso_time(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, now=NOW, field="--since") == expected


@pytest.mark.parametrize(
    "text", ["999999d", "999999w", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00+01:00", "yesterday",
             "2026-02-30", "2026-11-23T25:00", "1e3d", "-5d", ""],
)  # fmt: skip
def test_a_when_out_of_range_or_malformed_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_when(text, now=NOW, field="--since")
    assert caught.value.field == "--since"
