"""Stored connections against the real PostgreSQL server: encrypted at rest, never shown,
discoverable from the CLI, and usable for a one-off ingest."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import psycopg
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from flowforge.cli.main import app

pytestmark = pytest.mark.postgres
SECRET = "Sup3r-Secret-pw"
runner = CliRunner()


def _cli(project: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["-p", str(project), *args], input=stdin, env=env)
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path, pg_database: str) -> Path:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    with psycopg.connect(pg_database) as con:
        con.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(15,2), opened date, "
                    "status text NOT NULL DEFAULT 'open')")
        con.execute("INSERT INTO accounts SELECT g, g * 1.25, date '2026-01-01' + g FROM generate_series(1, 42) g")
    return tmp_path / "p"


def _add(project: Path, pg_database: str, name: str = "bank") -> tuple[int, str]:
    dbname = pg_database.rsplit("/", 1)[1]
    return _cli(project, "connections", "add", name, "--type", "postgres", "--host", "127.0.0.1",
                "--port", "5432", "--database", dbname, "--user", "postgres", "--password-stdin",
                stdin=SECRET + "\n")


def test_stored_password_is_encrypted_and_never_shown(project: Path, pg_database: str) -> None:
    code, out = _add(project, pg_database)
    assert code == 0, out
    assert "OK" in out and "PostgreSQL" in out and SECRET not in out
    key = project / ".flowforge" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    raw = (project / ".flowforge" / "metadata.db").read_bytes()
    assert SECRET.encode() not in raw, "the password must not be stored in clear"
    code, out = _cli(project, "connections", "list")
    assert code == 0 and "bank" in out and "127.0.0.1" in out and SECRET not in out
    con = sqlite3.connect(project / ".flowforge" / "metadata.db")
    audit = con.execute("SELECT action, after FROM audit_log WHERE object_type = 'connection'").fetchall()
    con.close()
    assert [a for a, _ in audit] == ["connection.create"]
    assert "127.0.0.1" in audit[0][1] and SECRET not in audit[0][1]


def test_discovery_commands(project: Path, pg_database: str) -> None:
    assert _add(project, pg_database)[0] == 0
    code, out = _cli(project, "connections", "test", "bank")
    assert code == 0 and "ms)" in out
    code, out = _cli(project, "connections", "tables", "bank")
    assert code == 0 and "accounts" in out
    code, out = _cli(project, "connections", "schema", "bank", "accounts")
    assert code == 0 and "decimal128(15, 2)" in out and "PK" in out and "date32[day]" in out
    assert "default" in out and "'open'::text" in out
    code, out = _cli(project, "connections", "preview", "bank", "accounts", "--limit", "3", "--count")
    assert code == 0 and "42 rows" in out and "3.75" in out


def test_ingest_from_stored_connection_and_from_url(project: Path, pg_database: str, tmp_path: Path) -> None:
    assert _add(project, pg_database)[0] == 0
    code, out = _cli(project, "ingest", "--from", "bank", "--table", "accounts")
    assert code == 0, out
    rows = DeltaTable(str(project / "lakehouse" / "bronze" / "bronze_accounts")).to_pyarrow_table()
    assert rows.num_rows == 42 and str(rows.schema.field("balance").type) == "decimal128(15, 2)"
    other = tmp_path / "elsewhere"
    code, out = _cli(project, "ingest", "--from", pg_database, "--query", "SELECT id FROM accounts WHERE id <= 5",
                     "--target", "bronze_first", "--into", str(other))
    assert code == 0, out
    assert DeltaTable(str(other / "bronze" / "bronze_first")).to_pyarrow_table().num_rows == 5


def test_key_rotation_keeps_connections_and_retires_the_old_key(project: Path, pg_database: str) -> None:
    assert _add(project, pg_database)[0] == 0
    key = project / ".flowforge" / "secret.key"
    old_key = key.read_text().strip()
    code, out = _cli(project, "connections", "rotate-key")
    assert code == 0 and "re-encrypted 1" in out
    assert key.read_text().strip() != old_key and len(key.read_text().split()) == 1
    assert _cli(project, "connections", "test", "bank")[0] == 0
    # the retired key alone can no longer read the secret, and says so clearly
    code, out = _cli(project, "connections", "test", "bank", env={"FLOWFORGE_SECRET_KEY": old_key})
    assert code == 1 and "cannot be decrypted" in out and SECRET not in out


def test_remove_and_unknown(project: Path, pg_database: str) -> None:
    assert _add(project, pg_database)[0] == 0
    assert _cli(project, "connections", "remove", "bank")[0] == 0
    code, out = _cli(project, "connections", "test", "bank")
    assert code == 1 and "not defined" in out
    code, out = _cli(project, "connections", "remove", "bank")
    assert code == 1 and "No stored connection" in out
