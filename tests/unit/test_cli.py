"""The CLI as a user meets it: a scaffolded project runs, and every bad input is one clear line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.cli_helpers import init_project, invoke, runner

from flowforge.cli.main import app


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "p")


def _write(project: Path, workflow: str, connections: str = "") -> None:
    (project / "workflows" / "wf.yml").write_text(workflow)
    if connections:
        text = (project / "flowforge.yml").read_text()
        (project / "flowforge.yml").write_text(text + connections)


def _sqlite_source(project: Path) -> None:
    con = sqlite3.connect(project / "data" / "src.db")
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, modified_date TIMESTAMP)")
    con.execute("INSERT INTO customers VALUES (1, 'a', '2026-01-01 00:00:00'), (2, 'b', '2026-01-02 00:00:00')")
    con.commit()
    con.close()


DB_WORKFLOW = """\
name: wf
jobs:
  - name: land
    kind: ingest
    connection: {conn}
    tables:
      - {{table: {table}, target: bronze_customers, incremental: {column}}}
"""


def test_scaffolded_project_runs_end_to_end(project: Path) -> None:
    code, out = invoke(project, "run", "example")
    assert code == 0, out
    assert "PASS=3 ERROR=0" in out
    code, out = invoke(project, "query", "SELECT revenue FROM gold_daily_revenue ORDER BY day")
    assert code == 0 and "24.99" in out and "120.50" in out  # exact decimals, not floats
    code, out = invoke(project, "runs")
    assert code == 0 and "success" in out
    code, out = invoke(project, "lineage", "example")
    assert "bronze_orders" in out and "gold_daily_revenue" in out


def test_malformed_yaml_names_file_and_line(project: Path) -> None:
    _write(project, "name: wf\njobs:\n  - name: a\n   kind: ingest\n")
    code, out = invoke(project, "run", "wf")
    assert code == 1
    assert "wf.yml:4" in out and "invalid YAML" in out and "Traceback" not in out


def test_unknown_connection(project: Path) -> None:
    _write(project, DB_WORKFLOW.format(conn="nope", table="customers", column="modified_date"))
    code, out = invoke(project, "run", "wf")
    assert code == 1 and "Connection 'nope' is not defined" in out


def test_wrong_sqlite_path_is_clear_and_creates_nothing(project: Path) -> None:
    _write(project, DB_WORKFLOW.format(conn="core", table="customers", column="modified_date"),
           "  core: {type: sqlite, path: data/missing.db}\n")
    code, out = invoke(project, "run", "wf")
    assert code == 1, out
    assert "missing.db" in out and "Traceback" not in out
    assert not (project / "data" / "missing.db").exists()


def test_unknown_table_and_unknown_column(project: Path) -> None:
    _sqlite_source(project)
    conn = "  core: {type: sqlite, path: data/src.db}\n"
    _write(project, DB_WORKFLOW.format(conn="core", table="custmers", column="modified_date"), conn)
    code, out = invoke(project, "run", "wf")
    assert code == 1 and "custmers" in out and "Traceback" not in out
    _write(project, DB_WORKFLOW.format(conn="core", table="customers", column="modifed"))
    code, out = invoke(project, "run", "wf")
    assert code == 1 and "modifed" in out and "modified_date" in out  # names the available columns
    assert not (project / "lakehouse" / "bronze" / "bronze_customers").exists()


def test_unreachable_database_never_shows_the_password(project: Path) -> None:
    _write(project, DB_WORKFLOW.format(conn="pg", table="customers", column="modified_date"),
           "  pg: {type: postgres, url: 'postgresql://app:s3cret-pw@127.0.0.1:1/bank'}\n")
    code, out = invoke(project, "run", "wf")
    assert code == 1
    assert "127.0.0.1" in out and "s3cret-pw" not in out
    code, out = invoke(project, "runs", "--id", "1")
    assert "s3cret-pw" not in out and "failed" in out


def test_debug_shows_the_traceback(project: Path) -> None:
    _write(project, DB_WORKFLOW.format(conn="nope", table="customers", column="modified_date"))
    result = runner.invoke(app, ["--debug", "-p", str(project), "run", "wf"])
    assert result.exception is not None and "not defined" in str(result.exception)


def test_gold_sql_reading_a_missing_table(project: Path) -> None:
    _write(project, "name: wf\njobs:\n  - name: g\n    kind: gold\n    tables:\n"
                    "      - {target: gold_x, sql: 'SELECT * FROM silver_nothing'}\n")
    code, out = invoke(project, "validate", "wf")
    assert code == 1 and "silver_nothing" in out and "wf.yml" in out


def test_bracketed_names_survive_in_errors_and_tables(project: Path) -> None:
    """Square brackets are data (T-SQL names, Arrow types), not terminal markup."""
    _sqlite_source(project)
    conn = "  core: {type: sqlite, path: data/src.db}\n"
    _write(project, DB_WORKFLOW.format(conn="core", table="'[main].[Orders]'", column="modified_date"), conn)
    code, out = invoke(project, "run", "wf")
    assert code == 1 and "'[main].[Orders]'" in out
    code, out = invoke(project, "connections", "schema", "core", "customers")
    assert code == 0 and "timestamp[us]" in out
