"""A real `empower import cases` process killed with SIGKILL after its first chunk is
committed leaves a consistent database, and a re-run records every row exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from empower_cli.imports.run import CHUNK_ROWS
from tests.conftest import CliFn, as_json
from tests.test_import import HEADER, ago, chain_ok, row

ROWS = 25_000


def committed(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # not created or not migrated yet


def kill_after_first_chunk(path: Path, policy_path: Path, db_path: Path) -> None:
    """Run a real `empower import cases PATH` and SIGKILL it once its first chunk is committed."""
    env = {**os.environ, "EMPOWER_POLICY": str(policy_path), "EMPOWER_DB": str(db_path), "EMPOWER_AGENT": "carol"}
    proc = subprocess.Popen([sys.executable, "-m", "empower_cli", "import", "cases", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while committed(db_path) == 0:
            assert proc.poll() is None, f"the import ended before it could be killed: {proc.stderr}"
            assert time.monotonic() < deadline, "no chunk committed within 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_kill_9_mid_import_then_rerun_records_every_row_once(cli: CliFn, tmp_path: Path, policy_path: Path,
                                                             db_path: Path) -> None:  # fmt: skip
    path = tmp_path / "big.csv"
    opened = ago(30)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(ROWS):
            f.write(row(f"BIG-{i:06d}", customer=f"C-{i % 997}", opened=opened, amount=f"{i % 90 + 1}.25"))
    kill_after_first_chunk(path, policy_path, db_path)
    done = committed(db_path)
    assert 0 < done < ROWS, "the kill did not land mid-import"
    assert done % CHUNK_ROWS == 0, "a chunk was half-recorded"
    assert chain_ok(db_path) == done  # every committed case has its event, the chain intact

    r = cli("import", "cases", str(path), "--json", agent="carol")
    assert r.exit_code == 0, r.output
    summary = as_json(r)
    assert (summary["imported"], summary["skipped"], summary["rejected"]) == (ROWS - done, done, 0)
    conn = sqlite3.connect(db_path)
    total, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT external_id) FROM cases").fetchone()
    conn.close()
    assert total == distinct == ROWS
    assert chain_ok(db_path) == ROWS
