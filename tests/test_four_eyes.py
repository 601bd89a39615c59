"""The four-eyes rule across entry points: an importer cannot settle what it imported,
spelling a login differently does not make a second person, and an imported hold that
never passed today's budget cannot be co-signed past it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, CliFn, as_json, backend_db
from tests.test_import import HEADER, ago, row, write


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_db(request, tmp_path)


def import_file(cli: CliFn, tmp_path: Path, *rows: str, agent: str = "carol") -> dict[str, object]:
    path = write(tmp_path, HEADER + "".join(rows))
    r = cli("import", "cases", str(path), "--json", agent=agent)
    assert r.exit_code == 0, r.output
    return dict(as_json(r))


def test_whoever_imported_a_pending_case_cannot_cosign_it(cli: CliFn, tmp_path: Path) -> None:
    import_file(cli, tmp_path, row("H-1", agent="bob", amount="150.00", status="pending_cosign", opened=ago(0.1)))
    r = cli("case", "cosign", "1", agent="carol")
    assert r.exit_code == 4, r.output
    assert r.stderr == "error: You cannot co-sign or object to a case you imported.\n"  # not "your own case"
    assert cli("case", "cosign", "1", "--json", agent="dave").exit_code == 0


def test_whoever_imported_a_pending_case_cannot_approve_it(cli: CliFn, tmp_path: Path) -> None:
    import_file(cli, tmp_path, row("H-1", agent="bob", status="pending_supervisor", opened=ago(0.1)), agent="carol")
    r = cli("case", "approve", "1", "--note", "looks fine", agent="carol")
    assert r.exit_code == 4, r.output
    assert r.stderr == "error: You cannot approve or deny a case you imported.\n"


def test_a_cosigner_spelt_with_other_case_or_spaces_is_still_the_agent(cli: CliFn, tmp_path: Path) -> None:
    out = import_file(
        cli, tmp_path,
        row("H-1", agent="bob", cosigner="Bob"),
        row("H-2", agent="bob", supervisor="BOB"),
        row("H-3", agent="bob", cosigner="erin"),
    )  # fmt: skip
    assert (out["imported"], out["rejected"]) == (1, 2)


def test_an_agent_id_with_surrounding_spaces_is_refused(cli: CliFn) -> None:
    r = cli("case", "queue", "--json", agent="alice ")
    assert r.exit_code == 2, r.output
    assert "EMPOWER_AGENT" in r.stderr


def test_an_imported_hold_beyond_todays_budget_cannot_be_cosigned(cli: CliFn, tmp_path: Path) -> None:
    import_file(cli, tmp_path, row("H-1", agent="bob", amount="900000.00", status="pending_cosign", opened=ago(0.1)))
    r = cli("case", "cosign", "1", agent="dave")
    assert r.exit_code == 6, r.output
    assert "supervisor" in r.stderr
    shown = as_json(cli("customer", "show", "C-1", "--json"))
    assert shown["budget"]["spent"] == "0.00"


def test_the_queue_does_not_offer_a_case_to_the_account_that_imported_it(cli: CliFn, tmp_path: Path) -> None:
    import_file(cli, tmp_path, row("H-1", agent="bob", amount="150.00", status="pending_cosign", opened=ago(0.1)))
    mine = as_json(cli("case", "queue", "--json", agent="carol"))
    theirs = as_json(cli("case", "queue", "--json", agent="dave"))
    assert mine == []
    assert [item["case_id"] for item in theirs] == [1]
