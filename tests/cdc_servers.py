"""Throw-away database servers for CDC tests: a PostgreSQL cluster with ``wal_level=logical`` and
a MariaDB with a row-based binlog, each started in a temporary folder on a free port (the shared
servers run without either and must not be reconfigured) and removed afterwards.

The integration ``conftest.py`` turns them into session fixtures (``logical_pg``, ``binlog_server``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("FLOWFORGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(args: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *args] if owner else args


@contextmanager
def logical_postgres() -> Iterator[str]:
    """URL of a throw-away PostgreSQL with wal_level=logical (``initdb`` as ``postgres`` when root)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (set FLOWFORGE_TEST_PG_BIN)")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="ff_pglogical_"))
    if owner:
        shutil.chown(root, owner)
    data, port = root / "data", free_port()
    run = subprocess.run
    run(_as_owner([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], owner),
        check=True, capture_output=True)
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c wal_level=logical "
            "-c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off")
    run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"],
                  owner), check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner),
            capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def binlog_mariadb() -> Iterator[int]:
    """Port of a throw-away MariaDB with a row-based binlog (root, no password, 127.0.0.1)."""
    pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed")
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    if not install or not server:
        pytest.skip("MariaDB server binaries (mariadb-install-db, mariadbd) are not installed")
    root = Path(tempfile.mkdtemp(prefix="ff_binlog_"))
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(root, "mysql")
    subprocess.run([install, f"--datadir={root / 'data'}", *user, "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([server, "--no-defaults", f"--datadir={root / 'data'}", *user, f"--port={port}",
                             "--bind-address=127.0.0.1", f"--socket={root / 's'}", f"--pid-file={root / 'pid'}",
                             f"--log-bin={root / 'data' / 'mysql-bin'}", "--binlog-format=ROW",
                             "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--server-id=1",
                             "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root").close()
                break
            except pymysql.MySQLError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("the test MariaDB did not start")
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
