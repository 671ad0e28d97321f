"""What a command loads is what a user waits for: ``--help`` loads no data library, a run loads
neither pandas (0.4 s, and FlowForge's core never uses it) nor Alembic (only to migrate), and an
ingest of a database table needs no SQL engine (DuckDB) or parser (sqlglot)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli_helpers import init_project

pytestmark = pytest.mark.slow


def _imported(*args: str) -> set[str]:
    """Top-level modules a ``python -m flowforge ...`` process imported (from ``-X importtime``)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "flowforge", *args], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "COLUMNS": "120"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in lines}


def test_help_loads_no_data_library() -> None:
    assert not _imported("--help") & {"sqlalchemy", "pyarrow", "duckdb", "deltalake", "pandas", "sqlglot", "alembic"}


def test_runs_load_neither_pandas_nor_alembic(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    first = _imported("-p", str(project), "run", "example")  # creates the metadata database: migrates
    assert "pandas" not in first
    again = _imported("-p", str(project), "run", "example")  # nothing new: the usual scheduled run
    assert {"deltalake", "sqlalchemy"} <= again  # the listing works: these a run always needs
    assert not again & {"pandas", "alembic"}


def test_ingest_of_a_table_loads_no_pandas_nor_sql_engine(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    source = project / "data" / "bank.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, opened DATE, balance DECIMAL(12,2), "
                   "active BOOLEAN)")
        db.execute("INSERT INTO accounts VALUES (1, 'Ada', '2026-12-05', 120.5, 1)")
    ingest = ("-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "accounts")
    first = _imported(*ingest)  # creates the metadata database: migrates
    assert not first & {"pandas", "duckdb", "sqlglot"}
    again = _imported(*ingest)
    assert {"pyarrow", "deltalake"} <= again  # the row was read and landed
    assert not again & {"pandas", "duckdb", "sqlglot", "alembic"}


_AFTER_PRELOAD = """
import contextlib, io, sys
from flowforge.cli.daemon import _preload
_preload()
loaded = set(sys.modules)
from flowforge.cli.main import app
sys.argv = ["flowforge", *sys.argv[1:]]
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
    app(prog_name="flowforge")
print(" ".join(sorted(m for m in set(sys.modules) - loaded if not m.startswith("encodings."))))
"""


def test_a_command_forked_by_the_daemon_imports_nothing_more(tmp_path: Path) -> None:
    """What ``flowforge daemon`` preloads covers what runs and ingests import: a module left out costs
    every forked command its import again (0.14 s before the list was completed)."""
    project = init_project(tmp_path / "p")
    source = project / "data" / "bank.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
        db.execute("INSERT INTO accounts VALUES (1, 'Ada')")
    commands = [("run", "example"), ("ingest", "--from", f"sqlite:///{source}", "--table", "accounts"), ("runs",),
                ("tables",)]
    for command in commands:
        for _ in range(2):  # the first time may create the metadata store (migrations: not preloaded)
            found = subprocess.run([sys.executable, "-c", _AFTER_PRELOAD, "-p", str(project), *command],
                                   capture_output=True, text=True, timeout=600, check=False)
            assert found.returncode == 0, found.stderr
        assert found.stdout.split() == [], (command, found.stdout)


@pytest.mark.postgres
def test_a_postgres_ingest_forked_by_the_daemon_imports_nothing_more(tmp_path: Path, pg_database: str) -> None:
    """The PostgreSQL reader (psycopg 50 ms, ADBC) is preloaded too."""
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text, updated_at timestamp)")
        conn.execute("INSERT INTO accounts VALUES (1, 'Ada', now())")
    project = init_project(tmp_path / "p")
    command = ("ingest", "--from", pg_database, "--table", "accounts")
    for _ in range(2):  # the first time creates the metadata store (migrations: not preloaded)
        found = subprocess.run([sys.executable, "-c", _AFTER_PRELOAD, "-p", str(project), *command],
                               capture_output=True, text=True, timeout=600, check=False)
        assert found.returncode == 0, found.stderr
    assert found.stdout.split() == []
