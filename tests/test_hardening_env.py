"""Environment faults: a corrupt or truncated database, a newer schema, read-only files and
directories, a missing data/ directory, an unsafe policy file, a network filesystem.
Each gives one clear line and the exit code of SPEC §5 (a store that cannot be used: 1).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empower_cli.cli.app import app
from empower_cli.store import files as fsinfo
from tests.conftest import write_policy
from tests.errors_support import said_text
from tests.hardening_support import case_new_args, cli_env, foreign_python, run, run_as

SEED = 6
OTHER_ACCOUNT = "nobody"
_faults = {"count": 0}


def one_line(err: str) -> bool:
    lines = said_text(err).strip().splitlines()  # under --json the one line is JSON
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def _cli(policy: Path, db: Path, *args: str) -> tuple[int, str, str]:
    _faults["count"] += 1
    r = CliRunner().invoke(app, list(args), env={"EMPOWER_AGENT": "alice", "EMPOWER_POLICY": str(policy),
                                                 "EMPOWER_DB": str(db), "NO_COLOR": "1"})  # fmt: skip
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def real_db(tmp_path: Path) -> tuple[Path, Path]:
    policy = write_policy(tmp_path)
    db = tmp_path / "data" / "empower.db"
    for i in range(30):
        code, _out, err = _cli(policy, db, *case_new_args(f"C-{i}", "40.00", justification="x" * 300))
        assert code == 0, err
    return policy, db


# -- damaged files ------------------------------------------------------------------------------


def test_random_bytes_instead_of_a_database_are_refused_and_left_untouched(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    rng = random.Random(SEED)
    for size in (16, 100, 4096, 65536):
        db = tmp_path / f"random-{size}.db"
        junk = bytes(rng.randrange(256) for _ in range(size))
        db.write_bytes(junk)
        for args in (case_new_args("C-1", "40.00"), ["case", "list"], ["customer", "show", "C-1"]):
            code, _out, err = _cli(policy, db, *args)
            assert code == 1, err
            assert one_line(err), err
            assert "corrupt" in err or "not an empower database" in err, err
        assert db.read_bytes() == junk  # never "repaired" by overwriting


def test_a_truncated_database_is_refused_with_one_line(real_db: tuple[Path, Path], tmp_path: Path) -> None:
    policy, db = real_db
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    whole = db.read_bytes()
    page = int.from_bytes(whole[16:18], "big")  # the page size, from the file's header
    assert len(whole) > 3 * page
    for cut in (100, 1000, page + 17, len(whole) // 2, len(whole) - page):
        cut_db = tmp_path / f"cut-{cut}.db"
        cut_db.write_bytes(whole[:cut])
        code, _out, err = _cli(policy, cut_db, *case_new_args("C-1", "40.00"))
        assert code == 1, (cut, err)
        assert one_line(err), err


def test_a_database_with_a_newer_schema_is_refused_for_every_command(real_db: tuple[Path, Path]) -> None:
    policy, db = real_db
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    for args in (case_new_args("C-1", "40.00"), ["case", "list"], ["case", "cosign", "1"], ["audit", "verify"]):
        code, _out, err = _cli(policy, db, *args)
        if code == 2 and "No such command" in err:
            continue  # a command still being built elsewhere
        assert code == 1, (args, err)
        assert one_line(err), err
        assert "newer" in err, err


def test_a_missing_data_directory_is_created_on_first_use(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    db = tmp_path / "data" / "empower.db"
    assert not db.parent.exists()
    code, _out, err = _cli(policy, db, *case_new_args("C-1", "40.00"))
    assert code == 0, err
    assert db.is_file()


def test_a_data_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    (tmp_path / "blocker").write_text("a file where the directory should be")
    code, _out, err = _cli(policy, tmp_path / "blocker" / "data" / "empower.db", *case_new_args("C-1", "40.00"))
    assert code == 1, err
    assert one_line(err), err
    assert "cannot create the database directory" in err


@pytest.mark.parametrize(("mode", "size"), [(0o666, 100), (0o664, 100), (0o644, 1024 * 1024 + 1)])
def test_an_unsafe_policy_file_is_refused_with_exit_3(tmp_path: Path, mode: int, size: int) -> None:
    policy = write_policy(tmp_path)
    text = policy.read_text()
    policy.write_text(text + "#" * max(0, size - len(text)) if size > 1000 else text)
    os.chmod(policy, mode)
    code, _out, err = _cli(policy, tmp_path / "data" / "empower.db", *case_new_args("C-1", "40.00"))
    assert code == 3, err
    assert "Traceback" not in err
    assert not (tmp_path / "data" / "empower.db").exists()


# -- permissions (as another account: root ignores file modes) ------------------------------------


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory other accounts can reach (tmp_path sits under a root-only directory)."""
    folder = Path(tempfile.mkdtemp(prefix="empower-env-", dir="/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def other_python() -> list[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run empower as another account")
    python = foreign_python(OTHER_ACCOUNT)
    if python is None:
        pytest.skip(f"no Python interpreter that the account {OTHER_ACCOUNT!r} can run imports this checkout")
    return python


def _as_other(python: list[str], policy: Path, db: Path, args: list[str]) -> tuple[int, str, str]:
    _faults["count"] += 1
    env = cli_env(policy, db)
    env.pop("EMPOWER_AGENT")
    return run_as(OTHER_ACCOUNT, python, args, env)


def _setup_readable(world_dir: Path) -> tuple[Path, Path]:
    policy = write_policy(world_dir)
    db = world_dir / "data" / "empower.db"
    code, _out, err = run(case_new_args("C-1", "40.00"), cli_env(policy, db))
    assert code == 0, err
    os.chmod(db.parent, 0o755)
    os.chmod(db, 0o644)
    return policy, db


def test_a_read_only_database_file_refuses_writes_with_one_line(world_dir: Path, other_python: list[str]) -> None:
    policy, db = _setup_readable(world_dir)
    os.chmod(db.parent, 0o777)  # the directory is writable, the file is not (it belongs to root)
    before = db.read_bytes()
    code, out, err = _as_other(other_python, policy, db, case_new_args("C-2", "40.00"))
    assert code == 1, (out, err)
    assert one_line(err), err
    assert "read-only" in err, err
    assert db.read_bytes() == before


def test_a_read_only_directory_refuses_with_one_line(world_dir: Path, other_python: list[str]) -> None:
    policy, db = _setup_readable(world_dir)
    os.chmod(db, 0o666)  # the file is writable, but no -wal/-shm can be created beside it
    for args in (case_new_args("C-2", "40.00"), ["case", "list"]):
        code, out, err = _as_other(other_python, policy, db, args)
        assert code == 1, (args, out, err)
        assert one_line(err), err
        assert str(db) in err


def test_a_data_directory_in_a_read_only_place_is_one_line(world_dir: Path, other_python: list[str]) -> None:
    policy = write_policy(world_dir)
    code, out, err = _as_other(other_python, policy, world_dir / "data" / "empower.db", case_new_args("C-2", "1"))
    assert code == 1, (out, err)
    assert one_line(err), err
    assert "cannot create the database directory" in err


# -- network filesystems ----------------------------------------------------------------------------

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 27 0:40 / /srv/share rw,relatime - nfs4 fileserver:/export rw,vers=4.2
41 40 0:41 / /srv/share/local rw,relatime - ext4 /dev/sdb1 rw
42 27 0:42 / /mnt/win\040drive rw,relatime - cifs //nas/office rw
43 27 0:43 / /home/alice/remote rw - fuse.sshfs alice@host:/ rw
44 27 0:44 / /mnt/wsl rw - 9p drvfs rw
45 27 0:45 / /tmp rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/srv/share/data/empower.db", "nfs4"), ("/srv/share/local/empower.db", None), ("/srv/shared/x.db", None),
     ("/mnt/win drive/data/empower.db", "cifs"), ("/home/alice/remote/e.db", "fuse.sshfs"),
     ("/mnt/wsl/e.db", "9p"), ("/tmp/e.db", None), ("/var/lib/e.db", None)],
)  # fmt: skip
def test_network_filesystems_are_recognised_from_mountinfo(path: str, expected: str | None) -> None:
    assert fsinfo.network_filesystem(Path(path), MOUNTINFO) == expected


def test_the_real_mountinfo_says_the_test_directory_is_local(tmp_path: Path) -> None:
    if not fsinfo.MOUNTINFO.exists():
        pytest.skip("no /proc/self/mountinfo on this system")
    assert fsinfo.filesystem_type(tmp_path) is not None
    assert fsinfo.network_filesystem(tmp_path) is None


def test_a_database_on_a_network_filesystem_warns_and_carries_on(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The detector reads /proc/self/mountinfo; here it reads a fake one naming tmp_path as NFS."""
    fake = tmp_path / "mountinfo"
    fake.write_text(f"27 1 8:1 / / rw - ext4 /dev/sda1 rw\n50 27 0:50 / {tmp_path} rw - nfs4 server:/x rw\n")
    monkeypatch.setattr(fsinfo, "MOUNTINFO", fake)
    policy = write_policy(tmp_path)
    code, out, err = _cli(policy, tmp_path / "data" / "empower.db", *case_new_args("C-1", "40.00"))
    assert code == 0, err
    assert '"approved"' in out
    assert err.startswith("warning: "), err
    assert "network filesystem (nfs4)" in err
    assert len(err.splitlines()) == 1, err
