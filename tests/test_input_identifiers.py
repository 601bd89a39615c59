"""One customer, one identifier (SPEC §9): an identifier holding an invisible, control,
private-use or unassigned character, a line or paragraph separator, or not written in NFC
is refused at every way in — flags, EMPOWER_AGENT, filters, import rows, the policy — with
one line naming the field and the code point, and nothing recorded.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empower_cli.core.errors import InvalidInput
from empower_cli.core.text import clean_id
from tests.conftest import JUSTIFICATION, CliFn, as_json, training_policy_text, write_policy
from tests.errors_support import said

REFUSED = ("Cc", "Cf", "Co", "Cn", "Zl", "Zp")
WJ = "\u2060"  # WORD JOINER: invisible
SHY = "\u00ad"  # SOFT HYPHEN: invisible in most fonts

# (text appended to an identifier, the problem the refusal must state)
LOOKALIKES = [
    (WJ, "contains U+2060 (WORD JOINER, format character); "
         "identifiers may not hold invisible or control characters"),
    (SHY, "contains U+00AD (SOFT HYPHEN, format character)"),
    ("\u200b", "contains U+200B (ZERO WIDTH SPACE, format character)"),
    ("\u200e", "contains U+200E (LEFT-TO-RIGHT MARK, format character)"),
    ("\ufeff", "contains U+FEFF (ZERO WIDTH NO-BREAK SPACE, format character)"),
    ("\u0085", "contains U+0085 (control character)"),
    ("\ue000", "contains U+E000 (private-use character)"),
    ("\U000e0041", "contains U+E0041 (TAG LATIN CAPITAL LETTER A, format character)"),
    ("\u0378", "contains U+0378 (unassigned code point)"),
    ("\u2028", "contains U+2028 (line separator)"),
    ("\u2029", "contains U+2029 (paragraph separator)"),
    ("e\u0301", "is not in Unicode NFC form (U+0065 U+0301 should be written U+00E9)"),
]  # fmt: skip


def case_new(cli: CliFn, customer: str, *extra: str, agent: str = "alice") -> tuple[int, str, str]:
    r = cli("case", "new", "--customer", customer, "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "40.00",
            "--justification", JUSTIFICATION, *extra, "--json", agent=agent)  # fmt: skip
    return r.exit_code, r.stdout, said(r)


def table(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


# -- case new: the customer, the segment, the agent ------------------------------------------


def test_c5_with_an_invisible_character_is_refused_so_c5_keeps_one_budget(cli: CliFn, db_path: Path) -> None:
    code, _, err = case_new(cli, "C-5")
    assert code == 0, err
    for suffix in (WJ, SHY):
        code, _, err = case_new(cli, "C-5" + suffix)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1, err
    assert table(db_path, "SELECT customer_id FROM customers") == [("C-5",)]
    assert table(db_path, "SELECT COUNT(*) FROM cases") == [(1,)]


@pytest.mark.parametrize(("suffix", "problem"), LOOKALIKES)
def test_a_customer_id_is_refused_naming_the_code_point(cli: CliFn, db_path: Path, suffix: str,
                                                         problem: str) -> None:  # fmt: skip
    code, out, err = case_new(cli, "C" + suffix + "-5")  # inside: at an end, U+0085 is a space to strip()
    assert code == 2, out + err
    assert err.startswith(f"error: customer: {problem}"), err
    assert len(err.strip().splitlines()) == 1, err
    assert table(db_path, "SELECT COUNT(*) FROM cases") in ([], [(0,)])


def test_the_nfc_spelling_of_a_name_is_the_one_accepted(cli: CliFn, db_path: Path) -> None:
    code, _, err = case_new(cli, "Cafe\u0301-7")
    assert code == 2
    assert "customer: is not in Unicode NFC form (U+0065 U+0301 should be written U+00E9)" in err
    code, _, err = case_new(cli, "Caf\u00e9-7")
    assert code == 0, err
    listed = as_json(cli("case", "list", "--customer", "Caf\u00e9-7", "--json"))["rows"]
    assert [c["customer_id"] for c in listed] == ["Caf\u00e9-7"]
    assert table(db_path, "SELECT customer_id FROM customers") == [("Caf\u00e9-7",)]


def test_a_segment_and_an_empower_agent_follow_the_identifier_rule(cli: CliFn, db_path: Path) -> None:
    code, _, err = case_new(cli, "C-1", "--segment", "vip" + WJ)
    assert (code, err.split(":")[:2]) == (2, ["error", " segment"]), err
    assert "U+2060" in err
    code, _, err = case_new(cli, "C-1", agent="bob" + SHY)
    assert code == 2, err
    assert err.startswith("error: EMPOWER_AGENT: contains U+00AD (SOFT HYPHEN, format character)"), err
    code, _, err = case_new(cli, "C-1", agent="bo\u0301b")
    assert code == 2, err
    assert err.startswith("error: EMPOWER_AGENT: is not in Unicode NFC form (U+006F U+0301 should be written U+00F3)")
    assert table(db_path, "SELECT COUNT(*) FROM cases") in ([], [(0,)])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("case", "list", "--customer", "C-1" + WJ), "--customer"),
        (("case", "list", "--agent", "alice" + SHY), "--agent"),
        (("case", "list", "--customer", "Cafe\u0301"), "--customer"),
        (("customer", "show", "C-1" + WJ), "customer"),
    ],
)
def test_a_filter_no_identifier_can_hold_is_refused_not_answered_with_nothing(
    cli: CliFn, args: tuple[str, ...], field: str
) -> None:
    assert case_new(cli, "C-1")[0] == 0
    r = cli(*args, "--json")
    assert r.exit_code == 2, r.output
    assert said(r).startswith(f"error: {field}: "), said(r)
    assert ("U+2060" in said(r)) or ("U+00AD" in said(r)) or ("NFC" in said(r))


def test_printable_ascii_and_visible_unicode_identifiers_are_still_accepted(cli: CliFn) -> None:
    for customer in ("C-1", "O'Brien & Söhne", "客户-42", "Ñandú 😀", "x" * 200):
        code, _, err = case_new(cli, customer)
        assert code == 0, (customer, err)


# -- import rows --------------------------------------------------------------------------------

COLUMNS = ("external_id", "customer_id", "agent", "opened_at", "case_type", "action", "amount", "status",
           "justification", "cosigner", "supervisor", "segment", "fact.days_since_purchase",
           "fact.has_receipt")  # fmt: skip


def import_rows(cli: CliFn, tmp_path: Path,
                rows: list[dict[str, str]]) -> tuple[dict[str, object], list[dict[str, str]]]:  # fmt: skip
    from tests.test_input_limits import import_csv

    return import_csv(cli, tmp_path, rows, name="ids.csv", columns=COLUMNS)


def good_row(ext: str) -> dict[str, str]:
    return {"external_id": ext, "customer_id": "C-1", "agent": "bob", "opened_at": "2026-03-01T10:00:00",
            "case_type": "late_return", "action": "refund", "amount": "40.00", "status": "approved",
            "justification": JUSTIFICATION, "cosigner": "", "supervisor": "", "segment": "",
            "fact.days_since_purchase": "20", "fact.has_receipt": "yes"}  # fmt: skip


def test_every_identifier_of_an_import_row_follows_the_rule(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    rows, expected = [good_row("OK-1")], {}
    for column in ("external_id", "customer_id", "agent", "cosigner", "supervisor", "segment"):
        for k, (suffix, problem) in enumerate(LOOKALIKES):
            row = good_row(f"X-{column}-{k}")
            base = {"segment": "vip", "cosigner": "dave", "supervisor": "carol"}.get(column, row[column])
            row[column] = base + suffix + "-1"
            rows.append(row)
            expected[row["external_id"]] = f"{column}: {problem}"
    summary, rejected = import_rows(cli, tmp_path, rows)
    assert (summary["imported"], summary["rejected"]) == (1, len(rows) - 1)
    by_id = {r["external_id"]: r["reason"] for r in rejected}
    assert set(by_id) == set(expected)
    wrong = {ext: by_id[ext] for ext, problem in expected.items() if not by_id[ext].startswith(problem)}
    assert wrong == {}
    assert table(db_path, "SELECT external_id, customer_id FROM cases") == [("OK-1", "C-1")]


# -- the policy file: logins and segments typed nowhere else --------------------------------------


def test_a_policy_login_or_segment_no_identifier_can_match_is_a_located_problem(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from empower_cli.cli.app import app

    text = training_policy_text().replace('dave = "senior"', f'"dave{WJ}" = "senior"')
    text = text.replace('vip = "5000.00"', f'"vip{SHY}" = "5000.00"')
    policy = write_policy(tmp_path, text)
    r = CliRunner().invoke(app, ["policy", "check", str(policy)])
    assert r.exit_code == 3, r.output
    lines = said(r).splitlines()
    assert [ln for ln in lines if "agents" in ln and "U+2060 (WORD JOINER, format character)" in ln], said(r)
    assert [ln for ln in lines if "segments" in ln and "U+00AD (SOFT HYPHEN, format character)" in ln], said(r)


# -- properties ------------------------------------------------------------------------------------

refused_char = st.characters(categories=list(REFUSED))  # type: ignore[arg-type]


@given(before=st.text(max_size=20), bad=refused_char, after=st.text(max_size=20))
def test_any_identifier_holding_a_cc_cf_co_cn_zl_or_zp_character_is_refused(before: str, bad: str, after: str) -> None:
    value = f"C{before}{bad}{after}1"  # visible ends: refused for the character, not for spaces
    with pytest.raises(InvalidInput) as caught:
        clean_id(value, field="customer")
    assert caught.value.field == "customer"
    assert "\n" not in str(caught.value)
    # the problem names the first refused character, or the lone surrogate that cannot be UTF-8
    first = next(c for c in value if unicodedata.category(c) in (*REFUSED, "Cs"))
    assert f"U+{ord(first):04X}" in caught.value.problem or "UTF-8" in caught.value.problem


@given(st.text(max_size=30))
def test_any_accepted_identifier_is_nfc_and_visible(value: str) -> None:
    try:
        accepted = clean_id(value, field="customer")
    except InvalidInput:
        return
    assert accepted == value  # stored exactly as typed: accepted, never silently normalised
    assert unicodedata.is_normalized("NFC", accepted)
    assert not any(unicodedata.category(c) in (*REFUSED, "Cs") for c in accepted)
    assert accepted == accepted.strip()


@given(st.text(st.characters(codec="utf-8", exclude_categories=REFUSED), min_size=1, max_size=30))  # type: ignore[arg-type]
def test_the_nfc_form_of_a_visible_name_is_always_accepted(value: str) -> None:
    nfc = unicodedata.normalize("NFC", value).strip()
    if nfc:
        assert clean_id(nfc, field="customer") == nfc


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=refused_char.filter(lambda c: c != "\x00"))
def test_case_new_refuses_any_customer_id_with_a_refused_character_and_records_nothing(
    cli: CliFn, db_path: Path, bad: str
) -> None:
    code, _, err = case_new(cli, f"C-{bad}-1")
    assert code == 2, err
    assert err.startswith(f"error: customer: contains U+{ord(bad):04X} ("), err
    assert table(db_path, "SELECT COUNT(*) FROM cases") in ([], [(0,)])
