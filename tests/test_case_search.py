"""`empower case search TEXT`: full-text search over justifications, notes and objection
reasons, kept current by triggers for live cases, workflow steps and imports alike; best
match first, with the matching passage; any typed text is a query, never FTS syntax."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, JUSTIFICATION, LATE_RETURN, CliFn, acting_as, as_json, backend_db
from tests.test_import import HEADER, row, write


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL (sqlite_only: SQLite's own mechanics)."""
    return backend_db(request, tmp_path)


def new_case(cli: CliFn, justification: str, *, amount: str = "150.00", agent: str = "alice") -> int:
    r = cli(*LATE_RETURN, "--amount", amount, "--justification", justification, agent=agent)
    assert r.exit_code == 0, r.output
    return int(as_json(r)["case_id"])


def search(cli: CliFn, *args: str) -> dict[str, Any]:
    r = cli("case", "search", *args, "--json")
    assert r.exit_code == 0, r.output
    result: dict[str, Any] = as_json(r)
    return result


def ids(result: dict[str, Any]) -> list[int]:
    return [hit["case_id"] for hit in result["rows"]]


def test_a_word_finds_every_case_that_mentions_it_in_any_form(cli: CliFn) -> None:
    flood = new_case(cli, "The basement was flooded after the storm; all goods ruined")
    funeral = new_case(cli, "Her mother's funeral delayed the return by a whole week")
    new_case(cli, JUSTIFICATION)
    assert ids(search(cli, "flood")) == [flood]
    assert ids(search(cli, "floods")) == [flood]
    assert ids(search(cli, "FUNERALS")) == [funeral]
    assert ids(search(cli, "volcano")) == []
    hit = search(cli, "storm")["rows"][0]
    assert hit["snippet"] == "The basement was flooded after the «storm»; all goods ruined"
    assert hit["kind"] == "justification"
    assert hit["by"] == "alice"
    assert hit["status"] == "pending_cosign"
    out = cli("case", "search", "flood").stdout
    assert f"case {flood}" in out
    assert "flooded" in out


def test_every_word_must_appear_and_the_best_match_comes_first(cli: CliFn) -> None:
    weak = new_case(cli, "Double checked the receipt; the customer was charged once, a long story about many things")
    strong = new_case(cli, "Double charge on the card: refund the double charge")
    assert ids(search(cli, "double charge")) == [strong, weak]
    assert ids(search(cli, "double-checked receipt")) == [weak]  # a hyphenated word is a phrase
    assert ids(search(cli, "double-charge receipt")) == []


def test_notes_and_objection_reasons_are_found_with_who_wrote_them(cli: CliFn) -> None:
    cosigned = new_case(cli, JUSTIFICATION)
    r = cli("case", "cosign", str(cosigned), "--note", "Saw the water damage photos myself", agent="bob")
    assert r.exit_code == 0, r.output
    objected = new_case(cli, JUSTIFICATION)
    r = cli("case", "object", str(objected), "--reason", "Fourth water damage claim this month", agent="dave")
    assert r.exit_code == 0, r.output
    r = cli("case", "deny", str(objected), "--note", "Water damage is not ours to cover", agent="carol")
    assert r.exit_code == 0, r.output
    hits = search(cli, "water damage")["rows"]
    found = {(h["case_id"], h["kind"], h["event"], h["by"]) for h in hits}
    assert found == {(cosigned, "note", "cosigned", "bob"), (objected, "objection", "objected", "dave"),
                     (objected, "note", "denied", "carol")}  # fmt: skip
    assert {h["status"] for h in hits if h["case_id"] == objected} == {"denied"}


def test_imported_justifications_are_searchable_under_their_agent_and_time(
    cli: CliFn, tmp_path: Path, db_path: Path
) -> None:
    text = HEADER + row("OLD-1", justification="Customer stuck abroad after the volcano ash cloud", agent="bob")
    text += row("OLD-2", justification="Nothing special")
    carol = acting_as(cli, "carol")
    r = carol("import", "cases", str(write(tmp_path, text)), "--json")
    assert r.exit_code == 0, r.output
    hits = search(cli, "volcano")["rows"]
    assert len(hits) == 1
    assert hits[0]["by"] == "bob"  # the row's agent, not the importing account
    assert hits[0]["at"] == hits[0]["opened_at"]


def test_limit_cuts_the_list_and_says_so(cli: CliFn) -> None:
    for k in range(5):
        new_case(cli, f"Parcel lost by the courier, attempt {k}, customer waited weeks", amount="10.00")
    result = search(cli, "courier", "--limit", "2")
    assert len(result["rows"]) == 2
    assert result["truncated"] is True
    assert len(search(cli, "courier", "--limit", "0")["rows"]) == 5
    assert "more match" in cli("case", "search", "courier", "--limit", "2").stdout


def test_any_typed_text_is_a_query_never_fts_syntax(cli: CliFn) -> None:
    case = new_case(cli, 'He said "NEAR(flood)" AND OR * ^ - and [red]markup[/]')
    for query in ('"NEAR(flood)"', "AND OR", "flood*", "^markup", "-said", "[red]", "near flood"):
        r = cli("case", "search", "--json", "--", query)
        assert r.exit_code == 0, (query, r.output)
    assert ids(search(cli, "NEAR(flood)")) == [case]
    assert "[red]markup[/]" in cli("case", "search", "markup").stdout  # shown literally
    for query in ("", "   ", '"*"', "--"):
        r = cli("case", "search", "--", query) if query == "--" else cli("case", "search", query)
        assert r.exit_code == 2, (query, r.output)
    r = cli("case", "search", "a\x1b[2Jb")
    assert r.exit_code == 2, r.output


@pytest.mark.sqlite_only
def test_the_index_is_built_for_cases_recorded_before_the_upgrade(cli: CliFn, db_path: Path) -> None:
    case = new_case(cli, "Hailstorm dented the car roof before delivery")
    with sqlite3.connect(db_path) as conn:  # back to schema 6: no texts, no index, no trigger
        conn.execute("DROP TRIGGER events_case_texts")
        conn.execute("DROP TRIGGER cases_case_texts")
        for name in ("case_texts_ai", "case_texts_ad", "case_texts_au"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE case_texts_fts")
        conn.execute("DROP TABLE case_texts")
        for view in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall():
            conn.execute(f"DROP VIEW {view[0]}")
        for table in ("precedent_keys",):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute("DROP TRIGGER IF EXISTS cases_precedent_keys")
        conn.execute("DROP TRIGGER IF EXISTS cases_precedent_status")
        conn.execute("PRAGMA user_version = 6")
    assert ids(search(cli, "hailstorm")) == [case]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 7
