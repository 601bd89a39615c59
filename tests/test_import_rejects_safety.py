"""`--rejects` never replaces a file (SPEC §9): not the database or its WAL, not the input,
not the policy, not any existing file, under any spelling (symlink, hard link, `./..`).
Each attack is refused with exit 2 naming `--rejects`, before anything is read: the folder
holding them all is byte-for-byte unchanged afterwards. The default name is numbered when
taken, and a report is written only when a row is rejected."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from empower_cli.store import bulk as store_import
from tests.conftest import CliFn, as_json
from tests.hardening_support import cli_env, run
from tests.test_import import HEADER, ago, cases, rejects, row, write

Tree = dict[str, bytes | str]


def tree(folder: Path) -> Tree:
    """Every file under FOLDER: its bytes, or for a symlink where it points."""
    found: Tree = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


@pytest.fixture
def recorded(cli: CliFn, tmp_path: Path, db_path: Path) -> Iterator[Path]:
    """A database holding one case, held open by a reader (so its -wal and -shm exist), and
    history.csv: two new rows and a bad one, which an import would record and reject."""
    assert cli("import", "cases", str(write(tmp_path, HEADER + row("R-0"), "first.csv")), agent="carol").exit_code == 0
    reader = sqlite3.connect(db_path)
    reader.execute("SELECT COUNT(*) FROM cases").fetchone()
    assert Path(f"{db_path}-wal").exists()
    assert Path(f"{db_path}-shm").exists()
    write(tmp_path, HEADER + row("R-1", opened=ago(2)) + row("R-2", amount="bad") + row("R-3", opened=ago(2)))
    try:
        yield tmp_path / "history.csv"
    finally:
        reader.close()


def _symlink(tmp: Path, target: Path, name: str) -> Path:
    link = tmp / name
    link.symlink_to(target)
    return link


def _hard_link(tmp: Path, target: Path, name: str) -> Path:
    link = tmp / name
    os.link(target, link)
    return link


def _unrelated(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("someone's notes\n", encoding="utf-8")
    return path


# name -> (tmp_path, db_path, policy_path, input) -> the --rejects value (a string: spellings matter)
ATTACKS: dict[str, Callable[[Path, Path, Path, Path], str]] = {
    "the database": lambda t, db, pol, inp: str(db),
    "the database spelled with ./ and ..": lambda t, db, pol, inp: f"{db.parent}/./../{db.parent.name}/{db.name}",
    "the database's -wal": lambda t, db, pol, inp: f"{db}-wal",
    "the database's -shm": lambda t, db, pol, inp: f"{db}-shm",
    "a symlink to the database": lambda t, db, pol, inp: str(_symlink(t, db, "db-link.csv")),
    "the database through a symlinked folder": lambda t, db, pol, inp: str(_symlink(t, db.parent, "d") / db.name),
    "the input file": lambda t, db, pol, inp: str(inp),
    "a hard link to the input file": lambda t, db, pol, inp: str(_hard_link(t, inp, "same-inode.csv")),
    "the policy file": lambda t, db, pol, inp: str(pol),
    "an unrelated existing file": lambda t, db, pol, inp: str(_unrelated(t)),
    "a dangling symlink": lambda t, db, pol, inp: str(_symlink(t, t / "absent.csv", "nowhere.csv")),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_rejects_never_replaces_a_file(cli: CliFn, recorded: Path, tmp_path: Path, db_path: Path,
                                       policy_path: Path, attack: str, dry_run: bool) -> None:  # fmt: skip
    target = ATTACKS[attack](tmp_path, db_path, policy_path, recorded)
    before = tree(tmp_path)
    r = cli("import", "cases", str(recorded), "--rejects", target, *(["--dry-run"] if dry_run else []), agent="carol")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --rejects: "), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # one line
    assert r.stdout == ""
    assert tree(tmp_path) == before  # the target, the database, its WAL: not a byte changed, nothing new
    assert [c["external_id"] for c in cases(db_path)] == ["R-0"]


def test_the_message_says_what_the_path_is(cli: CliFn, recorded: Path, db_path: Path, policy_path: Path,
                                           tmp_path: Path) -> None:  # fmt: skip
    said = {
        str(db_path): "is the database;",
        f"{db_path}-wal": "is the database's write-ahead log;",
        str(recorded): "is the input file;",
        str(_hard_link(tmp_path, recorded, "again.csv")): "is the input file;",
        str(policy_path): "is the policy file;",
        str(_unrelated(tmp_path)): "already exists; the rejects report never overwrites a file",
    }
    for target, words in said.items():
        r = cli("import", "cases", str(recorded), "--rejects", target, agent="carol")
        assert r.exit_code == 2, r.output
        assert words in r.stderr, r.stderr


def test_a_database_not_created_yet_is_protected_too(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    path = write(tmp_path, HEADER + row("N-1", amount="bad"))
    for dry_run in ([], ["--dry-run"]):
        r = cli("import", "cases", str(path), "--rejects", str(db_path), *dry_run, agent="carol")
        assert r.exit_code == 2, r.output
        assert "--rejects" in r.stderr
        assert not db_path.exists()


def test_a_rejects_path_in_a_missing_folder_is_refused_before_anything_is_recorded(cli: CliFn, tmp_path: Path,
                                                                                  db_path: Path) -> None:  # fmt: skip
    path = write(tmp_path, HEADER + row("M-1") + row("M-2", amount="bad"))
    r = cli("import", "cases", str(path), "--rejects", str(tmp_path / "missing" / "bad.csv"), agent="carol")
    assert r.exit_code == 2, r.output
    assert "--rejects" in r.stderr
    assert "does not exist" in r.stderr
    assert not db_path.exists()


@pytest.mark.parametrize(("args", "cwd_target"), [
    (["--dry-run", "--rejects", "data/empower.db"], "data/empower.db"),
    (["--rejects", "history.csv"], "history.csv"),
    (["--rejects", "./policies.toml"], "policies.toml"),
])  # fmt: skip
def test_the_reported_attacks_fail_in_a_real_process(recorded: Path, tmp_path: Path, policy_path: Path,
                                                     args: list[str], cwd_target: str) -> None:  # fmt: skip
    # As reported: relative paths, from the folder holding the database and the input.
    env = cli_env(policy_path, Path("data/empower.db"), agent="carol")
    before = tree(tmp_path)
    code, _out, err = run(["import", "cases", "history.csv", *args], env, cwd=tmp_path)
    assert code == 2, err
    assert err.startswith("error: --rejects: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert tree(tmp_path) == before
    assert (tmp_path / cwd_target).exists()


def test_a_dry_run_writes_only_the_new_report(cli: CliFn, recorded: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "dry.csv"
    target.parent.mkdir()
    before = tree(tmp_path)
    r = cli("import", "cases", str(recorded), "--dry-run", "--rejects", str(target), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["rejected"], summary["rejects_file"]) == (2, 1, str(target))
    after = tree(tmp_path)
    assert set(after) - set(before) == {"out/dry.csv"}
    assert {k: v for k, v in after.items() if k != "out/dry.csv"} == before
    assert [b["external_id"] for b in rejects(target)] == ["R-2"]


def test_the_default_rejects_name_is_numbered_when_taken(cli: CliFn, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("T-1", amount="bad"))
    taken = tmp_path / "history.csv.rejects.csv"
    taken.write_text("a report someone kept\n", encoding="utf-8")
    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert as_json(r)["rejects_file"] == str(tmp_path / "history.csv.rejects-2.csv")
    assert [b["external_id"] for b in rejects(tmp_path / "history.csv.rejects-2.csv")] == ["T-1"]
    r = cli("import", "cases", str(path), agent="carol")  # text output names the path used
    assert r.exit_code == 0, r.output
    assert f"rejected rows, with line numbers and reasons: {tmp_path / 'history.csv.rejects-3.csv'}" in r.stdout
    assert taken.read_text(encoding="utf-8") == "a report someone kept\n"
    assert rejects(tmp_path / "history.csv.rejects-3.csv") == rejects(tmp_path / "history.csv.rejects-2.csv")


def test_a_dangling_symlink_at_the_default_name_is_not_followed(cli: CliFn, tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("S-1", amount="bad"))
    (tmp_path / "history.csv.rejects.csv").symlink_to(tmp_path / "elsewhere.csv")
    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert as_json(r)["rejects_file"] == str(tmp_path / "history.csv.rejects-2.csv")
    assert not (tmp_path / "elsewhere.csv").exists()


def test_no_rejected_row_no_rejects_file(cli: CliFn, tmp_path: Path) -> None:
    """Re-running an import that rejects nothing leaves no pile of empty numbered reports."""
    path = write(tmp_path, HEADER + row("G-1") + row("G-2"))
    for _ in range(2):
        r = cli("import", "cases", str(path), "--json", agent="carol")
        assert r.exit_code == 0, r.output
        assert (as_json(r)["rejected"], as_json(r)["rejects_file"]) == (0, None)
    r = cli("import", "cases", str(path), "--rejects", str(tmp_path / "asked.csv"), agent="carol")
    assert "rejected rows" not in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["history.csv", "policies.toml"]


def test_a_report_named_by_a_file_that_appeared_meanwhile_goes_beside_it(cli: CliFn, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, HEADER + row("A-1") + row("A-2", amount="bad"))
    target = tmp_path / "bad.csv"
    real = store_import.write_chunk

    def and_a_file_appears(*args: object, **kw: object) -> None:
        if not target.exists():
            target.write_text("written by someone else meanwhile\n", encoding="utf-8")
        real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store_import, "write_chunk", and_a_file_appears)
    r = cli("import", "cases", str(path), "--rejects", str(target), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    assert target.read_text(encoding="utf-8") == "written by someone else meanwhile\n"
    assert json.loads(r.stdout)["rejects_file"] == str(tmp_path / "bad-2.csv")
    assert [b["external_id"] for b in rejects(tmp_path / "bad-2.csv")] == ["A-2"]
    assert "--rejects" in r.stderr
    assert "bad-2.csv" in r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
