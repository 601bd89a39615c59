"""`empower case precedents` and the block in the walk-through: how comparable past cases were
decided. Comparable: same type and action, same rules bent or blocked, each bent rule's fact
in the same third of its bend range (README "Precedents")."""

from __future__ import annotations

import datetime as dt
import sqlite3
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empower_cli.core.models import Rule
from empower_cli.core.precedents import BANDS, band_of
from tests.audit_support import Spec, seed
from tests.conftest import BACKENDS, JUSTIFICATION, CliFn, acting_as, as_json, backend_db
from tests.test_import import HEADER, row, write


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL (sqlite_only: SQLite's own mechanics)."""
    return backend_db(request, tmp_path)

PRECEDENTS = ("case", "precedents", "--type", "late_return", "--action", "refund", "--fact", "has_receipt=yes")
BENT = [("return-window", "bent"), ("receipt", "pass")]


def late(days: int, *, amount: int = 4_500, status: str = "approved", action: str = "refund", agent: str = "bob",
         hours_ago: float = 48.0, rules: list[tuple[str, str]] | None = None, **kw: Any) -> Spec:  # fmt: skip
    return Spec(agent=agent, action=action, amount=amount, status=status, hours_ago=hours_ago,
                rules=BENT if rules is None else rules,
                facts={"days_since_purchase": str(days), "has_receipt": "yes"}, **kw)  # fmt: skip


def precedents(cli: CliFn, days: int, *extra: str) -> dict[str, Any]:
    r = cli(*PRECEDENTS, "--fact", f"days_since_purchase={days}", *extra, "--json")
    assert r.exit_code == 0, r.output
    found: dict[str, Any] = as_json(r)
    return found


@pytest.fixture
def history(db_path: Path, cli: CliFn) -> None:
    """14 comparable approved returns (16 to 20 days, median 45.00), one denied, one expired,
    one pending; and cases that differ in one way each."""
    cli("case", "list")  # create the database under the test policy
    amounts = [2_000, 3_000, 3_500, 4_000, 4_000, 4_500, 4_500, 4_500, 5_000, 5_000, 5_500, 6_000, 7_000, 8_000]
    specs = [late(16 + k % 5, amount=a, hours_ago=100 + k) for k, a in enumerate(amounts)]
    specs += [late(17, status="denied", supervisor="carol", hours_ago=90),
              late(18, status="pending_cosign", expires_in_hours=-1, hours_ago=80),
              late(19, status="pending_cosign", expires_in_hours=5, hours_ago=1, agent="erin", amount=9_900)]
    specs += [late(25, amount=100_000),  # a later band
              late(18, action="exchange", amount=100_000),  # another action
              late(10, rules=[("return-window", "pass"), ("receipt", "pass")], in_policy=True, amount=100_000),
              late(18, rules=[("return-window", "bent"), ("receipt", "blocked")], amount=100_000),
              Spec(case_type="expired_warranty", action="free_repair", rules=[("warranty", "bent")],
                   facts={"days_past_warranty": "10"}, amount=100_000)]  # fmt: skip
    seed(db_path, specs)


def test_an_agent_sees_how_comparable_returns_were_decided(cli: CliFn, history: None) -> None:
    got = precedents(cli, 20)
    assert (got["matched"], got["approved"], got["denied"], got["expired"], got["pending"]) == (17, 14, 1, 1, 1)
    assert got["amount"] == {"median": "45.00", "min": "20.00", "max": "80.00"}
    assert [r["case_id"] for r in got["recent"]] == [17, 16, 15]
    assert got["recent"][0] == {"case_id": 17, "opened_at": got["recent"][0]["opened_at"], "status": "pending_cosign",
                                "amount": "99.00", "agent": "erin"}  # fmt: skip
    assert [r["status"] for r in got["recent"][1:]] == ["expired", "denied"]
    assert got["criteria"]["rules"] == [{"id": "return-window", "result": "bent", "band": {
        "number": 1, "of": 3, "fact": "days_since_purchase", "measure": "value", "above": "15", "up_to": "20"}}]
    out = cli(*PRECEDENTS, "--fact", "days_since_purchase=16").stdout
    assert "17 comparable cases" in out
    assert "approved 14 · denied 1 · expired 1 · pending 1" in out
    assert "median 45.00, from 20.00 to 80.00 USD" in out


def test_the_band_is_a_third_of_the_bend_range(cli: CliFn, history: None) -> None:
    assert precedents(cli, 21)["matched"] == 1  # 21..25: the second third holds the 25-day case only
    assert precedents(cli, 25)["matched"] == 1
    assert precedents(cli, 26)["matched"] == 0
    assert precedents(cli, 30)["criteria"]["rules"][0]["band"]["number"] == 3
    in_policy = precedents(cli, 15)  # within the standard: compared with in-policy refunds
    assert (in_policy["matched"], in_policy["criteria"]["rules"]) == (1, [])
    blocked = precedents(cli, 31)  # beyond the bend limit: blocked, no band
    assert blocked["criteria"]["rules"] == [{"id": "return-window", "result": "blocked"}]
    assert blocked["matched"] == 0


def test_a_proposed_amount_is_placed_among_the_approved_ones(cli: CliFn, history: None) -> None:
    got = precedents(cli, 18, "--amount", "45.00")
    assert got["proposed"] == {"amount": "45.00", "approved_at_or_below": 8}
    r = cli(*PRECEDENTS, "--fact", "days_since_purchase=18", "--amount", "1e3")
    assert r.exit_code == 2, r.output


def test_nothing_comparable_yet_says_so(cli: CliFn) -> None:
    got = precedents(cli, 20)
    assert got["matched"] == 0
    assert got["amount"] == {"median": None, "min": None, "max": None}
    assert got["recent"] == []
    assert "no case like this one was recorded yet" in cli(*PRECEDENTS, "--fact", "days_since_purchase=20").stdout


def test_bad_input_is_refused_with_exit_2(cli: CliFn) -> None:
    for args in (
        ("case", "precedents", "--type", "late_return", "--action", "refund"),  # the rules' facts are needed
        ("case", "precedents", "--type", "nope", "--action", "refund"),
        ("case", "precedents", "--type", "late_return", "--action", "rebook", "--fact", "days_since_purchase=1",
         "--fact", "has_receipt=yes"),
        (*PRECEDENTS, "--fact", "days_since_purchase=-5"),
        (*PRECEDENTS, "--fact", "days_since_purchase=20", "--fact", "colour=red"),
        ("case", "precedents", "--action", "refund"),
    ):  # fmt: skip
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)


def test_live_and_imported_cases_are_precedents_at_once(cli: CliFn, tmp_path: Path) -> None:
    r = cli("case", "new", "--customer", "C-9", "--type", "late_return", "--fact", "days_since_purchase=19",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "30.00", "--justification", JUSTIFICATION)
    assert r.exit_code == 0, r.output
    carol = acting_as(cli, "carol")
    r = carol("import", "cases", str(write(tmp_path, HEADER + row("OLD-1", days="17", amount="60.00"))))
    assert r.exit_code == 0, r.output
    got = precedents(cli, 20)
    assert (got["matched"], got["approved"]) == (2, 2)
    assert got["amount"] == {"median": "45.00", "min": "30.00", "max": "60.00"}


@pytest.mark.sqlite_only
def test_the_lookup_is_an_index_search_not_a_scan(cli: CliFn, history: None, db_path: Path) -> None:
    from empower_cli.store.precedents import Key, Range, _matched

    for ranges in ([Range("days_since_purchase", 15.0, 20.0, True)], []):
        sql, params = _matched(Key("late_return", "refund", "return-window=bent", ranges))
        with sqlite3.connect(db_path) as conn:
            plan = [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert plan == ["SEARCH precedent_keys USING PRIMARY KEY (case_type=? AND action=? AND signature=? AND fact=?"
                        + (" AND value>? AND value<?)" if ranges else ")")], plan  # fmt: skip


def test_a_settled_case_is_counted_under_its_new_status(cli: CliFn) -> None:
    r = cli("case", "new", "--customer", "C-9", "--type", "late_return", "--fact", "days_since_purchase=19",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "150.00", "--justification", JUSTIFICATION,
            "--json")
    assert r.exit_code == 0, r.output
    assert (precedents(cli, 20)["pending"], precedents(cli, 20)["approved"]) == (1, 0)
    assert cli("case", "cosign", str(as_json(r)["case_id"]), agent="bob").exit_code == 0
    got = precedents(cli, 20)
    assert (got["pending"], got["approved"], got["amount"]["median"]) == (0, 1, "150.00")


def test_the_walk_through_shows_precedents_after_the_evaluation(tmp_path: Path) -> None:
    from tests.test_walkthrough import BENT_RETURN, Terminal

    term = Terminal(tmp_path)
    try:
        term.meanwhile("bob", "case", "new", "--customer", "C-2", "--type", "late_return", "--fact",
                       "days_since_purchase=18", "--fact", "has_receipt=yes", "--action", "refund",
                       "--amount", "45.00", "--justification", JUSTIFICATION)  # fmt: skip
        term.answer([("Customer id:", "C-1"), *BENT_RETURN[1:], ("Amount in USD", "50.00")])
        term.see("verdict: approved")
        term.see("precedents: 1 comparable case")
        term.see("approved 1 · denied 0 · expired 0 · pending 0")
        term.see("median 45.00, from 45.00 to 45.00 USD")
        term.see("50.00 is at or above 1 of the 1 approved amounts")
        term.answer([("Justification (at least 20 characters):", JUSTIFICATION), ("Customer's reaction", ""),
                     ("Record this case? (y/n)", "y")])  # fmt: skip
        term.see("recorded case 2")
        code, rest = term.finish()
        assert code == 0, rest
    finally:
        if term.child.isalive():
            term.child.close(force=True)


# -- the band, as a property --------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


@given(standard=st.integers(-1000, 1000), width=st.integers(1, 2000), data=st.data())
def test_every_bent_value_lies_in_its_band_and_bands_do_not_overlap(standard: int, width: int,
                                                                     data: st.DataObject) -> None:  # fmt: skip
    down = data.draw(st.booleans())
    rule = Rule("r", "t", "f", "min" if down else "max", standard, standard - width if down else standard + width)
    distance = data.draw(st.integers(1, width))
    value = standard - distance if down else standard + distance
    band = band_of(rule, value, now=NOW, digits=None)
    assert 1 <= band.number <= BANDS
    assert (band.lo <= value < band.hi) if down else (band.lo < value <= band.hi)
    assert band.hi - band.lo == pytest.approx(width / BANDS)
    neighbour = value + (1 if down else -1)  # one step back towards the standard
    if neighbour != standard:
        other = band_of(rule, neighbour, now=NOW, digits=None)
        assert other.number in (band.number, band.number - 1)


def test_a_date_rule_bands_the_age_in_days() -> None:
    rule = Rule("age", "t", "bought", "max_age_days", 30, 90)
    band = band_of(rule, NOW.date() - dt.timedelta(days=45), now=NOW, digits=None)
    assert (band.measure, band.number, band.lo, band.hi) == ("age", 1, Fraction(30), Fraction(50))
