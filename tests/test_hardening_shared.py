"""Shared host: two real OS accounts in one group use one database. The -wal and -shm
files one of them creates (and keeps open) must not lock the other out.

Needs root to create the accounts (useradd/groupadd); skipped with the reason otherwise.
"""

from __future__ import annotations

import datetime as dt
import grp
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from empower_cli.policy.load import load_policy
from empower_cli.services.admin import default_policy_text
from tests.hardening_support import case_new_args, check_invariants, foreign_python, run_as

GROUP = "emphard"
USERS = ("emphard_a", "emphard_b")


def _sh(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True)


@pytest.fixture(scope="module")
def accounts() -> Iterator[list[str]]:
    if os.geteuid() != 0:
        pytest.skip("creating two OS accounts needs root")
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("useradd or runuser is not installed")
    # The names are this test's own: leftovers of an interrupted run are replaced.
    for user in USERS:
        _sh("userdel", "--force", user)
    _sh("groupdel", GROUP)
    created: list[tuple[str, ...]] = []
    r = _sh("groupadd", GROUP)
    if r.returncode != 0:
        pytest.skip(f"cannot create a group here: {r.stderr.strip()}")
    created.append(("groupdel", GROUP))
    for user in USERS:
        r = _sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", GROUP, user)
        if r.returncode != 0:
            for cmd in created:
                _sh(*cmd)
            pytest.skip(f"cannot create an account here: {r.stderr.strip()}")
        created.insert(0, ("userdel", "--force", user))
    python = foreign_python(USERS[0])
    if python is None:
        for cmd in created:
            _sh(*cmd)
        pytest.skip("no Python interpreter the test accounts can run imports this checkout")
    try:
        yield python
    finally:
        for cmd in created:
            _sh(*cmd)


@pytest.fixture
def shop() -> Iterator[Path]:
    """A directory other accounts can reach, with the shipped policy (real identities)."""
    folder = Path(tempfile.mkdtemp(prefix="empower-shared-", dir="/tmp"))
    os.chmod(folder, 0o755)
    policy = folder / "policies.toml"
    policy.write_text(default_policy_text(), encoding="utf-8")
    os.chmod(policy, 0o644)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def shared_data_dir(folder: Path) -> Path:
    """The documented set-up: data/ owned by the shared group, setgid, group-writable."""
    data = folder / "data"
    data.mkdir()
    os.chown(data, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(data, 0o2775)
    return data


def env_for(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
    env.update(EMPOWER_POLICY=str(folder / "policies.toml"), EMPOWER_DB=str(folder / "data" / "empower.db"),
               NO_COLOR="1")  # fmt: skip
    return env


def hold_open(user: str, python: list[str], db: Path) -> subprocess.Popen[bytes]:
    """USER keeps a connection open (so its -wal and -shm stay) while the other one works."""
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT COUNT(*) FROM events').fetchone(); "
            "print('open', flush=True); sys.stdin.read()")  # fmt: skip
    p = subprocess.Popen(["runuser", "-u", user, "--", *python, "-c", code, str(db)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"open"
    return p


def check_files(db: Path) -> None:
    gid = grp.getgrnam(GROUP).gr_gid
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if not f.exists():
            continue
        st = f.stat()
        assert st.st_gid == gid, f"{f.name} belongs to group {st.st_gid}, not {GROUP}"
        assert st.st_mode & stat.S_IWGRP, f"{f.name} is not group-writable: {oct(st.st_mode)}"
        assert not st.st_mode & stat.S_IWOTH, f"{f.name} was made world-writable: {oct(st.st_mode)}"


def check_ledger(db: Path, folder: Path) -> None:
    policy = load_policy(folder / "policies.toml")
    assert check_invariants(db, limit_for=policy.budget.limit_for, window_days=policy.budget.window_days,
                            now=dt.datetime.now(dt.timezone.utc)) == []  # fmt: skip


def _take_turns(python: list[str], folder: Path, umask: int) -> int:
    """A opens, B co-signs while A holds the files open; then the other way round."""
    a, b = USERS
    env = env_for(folder)
    db = folder / "data" / "empower.db"
    steps = 0
    for opener, signer, customer in ((a, b, "C-1"), (b, a, "C-2")):
        code, out, err = run_as(opener, python, case_new_args(customer, "150.00"), env, umask=umask)
        assert code == 0, err
        case_id = out.split('"case_id": ')[1].split(",")[0]
        holder = hold_open(opener, python, db)
        try:
            check_files(db)
            code, out, err = run_as(signer, python, ["case", "cosign", case_id, "--json"], env, umask=umask)
            assert code == 0, f"{signer} was locked out by {opener}'s files: {err}"
            assert '"approved"' in out
            code, out, err = run_as(signer, python, ["customer", "show", customer, "--json"], env, umask=umask)
            assert code == 0, err
        finally:
            assert holder.stdin is not None
            holder.stdin.close()  # end of input: the holder closes its connection and exits
            holder.wait(timeout=30)
        steps += 3
    check_files(db)
    check_ledger(db, folder)
    return steps


def test_two_accounts_with_umask_002_share_one_database(accounts: list[str], shop: Path) -> None:
    shared_data_dir(shop)
    steps = _take_turns(accounts, shop, umask=0o002)
    print(f"\nshared host (umask 002): {steps} runs by two accounts, no lock-out")


def test_a_database_created_under_umask_022_is_still_shared_with_the_group(accounts: list[str], shop: Path) -> None:
    """The Store makes its files group-writable in a group-shared directory, whatever the umask."""
    shared_data_dir(shop)
    steps = _take_turns(accounts, shop, umask=0o022)
    print(f"\nshared host (umask 022): {steps} runs by two accounts, no lock-out")


def test_a_missing_data_directory_in_a_shared_place_is_created_shared(accounts: list[str], shop: Path) -> None:
    os.chown(shop, 0, grp.getgrnam(GROUP).gr_gid)
    os.chmod(shop, 0o2775)
    steps = _take_turns(accounts, shop, umask=0o022)
    data = shop / "data"
    assert data.stat().st_mode & stat.S_IWGRP
    assert data.stat().st_mode & stat.S_ISGID
    assert not data.stat().st_mode & stat.S_IWOTH
    print(f"\nshared host (data/ created on first use): {steps} runs, no lock-out")


def test_the_first_account_does_not_block_a_second_writer_for_long(accounts: list[str], shop: Path) -> None:
    """Both accounts write at once: neither is refused (busy handling works across accounts)."""
    shared_data_dir(shop)
    env = env_for(shop)
    started = time.perf_counter()
    procs = [subprocess.Popen(["runuser", "-u", user, "--", *accounts, "-m", "empower_cli",
                               *case_new_args(f"C-{user}-{i}", "40.00")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o002)
             for i in range(3) for user in USERS]  # fmt: skip
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    check_files(shop / "data" / "empower.db")
    check_ledger(shop / "data" / "empower.db", shop)
    print(f"\nshared host: {len(procs)} concurrent writers from two accounts in {time.perf_counter() - started:.1f}s")


def test_an_agent_account_cannot_get_past_the_controls_with_its_own_policy_file(accounts: list[str],
                                                                                shop: Path) -> None:  # fmt: skip
    """Issue 10 with real identities: emphard_a (an agent) holds a policy file of its own that
    trusts EMPOWER_AGENT and makes it a supervisor; the database governs, so nothing gives."""
    from tests.hardening_support import run

    a, b = USERS
    policy = shop / "policies.toml"
    policy.write_text(default_policy_text().replace('dave = "senior"', f'dave = "senior"\n{b} = "supervisor"'),
                      encoding="utf-8")  # fmt: skip
    shared_data_dir(shop)
    env = env_for(shop)
    code, _, err = run(["init", str(shop)], env)  # the shop's owner applies the shop's policy
    assert code == 0, err
    code, out, err = run_as(a, accounts, case_new_args("C-1", "150.00"), env, umask=0o002)
    assert code == 0, err
    assert '"pending_cosign"' in out
    own = Path(tempfile.mkdtemp(prefix="empower-mine-", dir="/tmp"))
    try:
        mine = own / "policies.toml"
        mine.write_text(policy.read_text(encoding="utf-8")
                        .replace("allow_identity_override = false", "allow_identity_override = true")
                        .replace(f'{b} = "supervisor"', f'{b} = "supervisor"\n{a} = "supervisor"'),
                        encoding="utf-8")  # fmt: skip
        os.chmod(own, 0o755)
        os.chown(own, pwd_uid(a), -1)  # the attacker's own folder
        os.chmod(mine, 0o644)
        os.chown(mine, pwd_uid(a), -1)
        history = own / "history.csv"
        history.write_text("external_id,customer_id,agent,opened_at,case_type,action,amount,status,fact.nights\n"
                           "X-1,C-2,dave,2026-01-05,hotel_complaint,full_stay_refund,1900.00,approved,3\n",
                           encoding="utf-8")  # fmt: skip
        os.chmod(history, 0o644)
        attacks = [
            ("case", "cosign", "1"),  # as b, claimed through EMPOWER_AGENT
            ("policy", "apply", "--note", "mine"),
            ("customer", "segment", "C-1", "vip", "--note", "mine"),
            ("import", "cases", str(history), "--rejects", str(own / "r.csv")),
            (*tuple(case_new_args("C-3", "10.00")), "--segment", "vip"),
        ]
        for args in attacks:
            code, _, err = run_as(a, accounts, ["--policy", str(mine), *args], {**env, "EMPOWER_AGENT": b},
                                  umask=0o002)  # fmt: skip
            assert code == 4, (args, err)
            assert "is not the applied policy" in err, (args, err)
    finally:
        shutil.rmtree(own, ignore_errors=True)
    code, out, err = run_as(b, accounts, ["case", "cosign", "1", "--json"], env, umask=0o002)
    assert code == 0, err  # the real second pair of eyes
    with sqlite3.connect(shop / "data" / "empower.db") as conn:
        assert conn.execute("SELECT actor, os_user FROM events WHERE kind = 'cosigned'").fetchall() == [(b, b)]
        assert conn.execute("SELECT COUNT(*) FROM policies").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (1,)
    code, out, err = run(["audit", "verify"], env)
    assert code == 0, err


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
