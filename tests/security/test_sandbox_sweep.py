"""Every DuckDB table function and statement kind that could reach a file, through every place
that accepts a user's SQL, and the second layer on its own: a sealed engine refuses files even
for SQL that never went through the parser check."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from flowforge.core.context import Context
from flowforge.core.project import init_project
from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sandbox import UnsafeSQL, check_expression, check_query
from flowforge.errors import UserCodeError
from flowforge.spec.workflow import Workflow

# table functions that only make rows from their arguments
HARMLESS = {"range", "generate_series", "unnest"}


def _table_functions() -> list[str]:
    with duckdb.connect() as con:
        rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                           "WHERE function_type IN ('table', 'table_macro') ORDER BY 1").fetchall()
    return [r[0] for r in rows if not r[0].startswith("__")]


TABLE_FUNCTIONS = _table_functions()
STATEMENTS = ["ATTACH '/tmp/x.db' AS x", "DETACH x", "COPY (SELECT 1) TO '/tmp/out.csv'", "INSTALL httpfs",
              "LOAD httpfs", "PRAGMA version", "SET enable_external_access = true", "RESET ALL",
              "CREATE TABLE t AS SELECT 1", "CREATE SECRET s (TYPE s3)", "EXPORT DATABASE '/tmp/dump'",
              "IMPORT DATABASE '/tmp/dump'", "CALL pragma_version()", "DESCRIBE SELECT 1", "SUMMARIZE SELECT 1",
              "USE memory", "CHECKPOINT", "VACUUM", "SELECT 1; SELECT 2", "INSERT INTO t VALUES (1)",
              "DROP TABLE t", "UPDATE t SET a = 1", "DELETE FROM t"]


def test_the_sweep_covers_the_file_readers() -> None:
    assert {"read_csv", "read_text", "read_blob", "read_parquet", "read_json", "glob", "query"} <= set(TABLE_FUNCTIONS)
    assert len(TABLE_FUNCTIONS) > 40


@pytest.mark.parametrize("name", TABLE_FUNCTIONS)
def test_every_table_function_is_refused_by_the_query_check(name: str) -> None:
    sql = f"SELECT * FROM {name}('/etc/passwd')"
    if name in HARMLESS:
        return  # rows from arguments only; covered by test_harmless_functions_still_work
    with pytest.raises(UnsafeSQL) as err:
        check_query(sql)
    assert name in str(err.value).lower() or "does not parse" in str(err.value)
    with pytest.raises(UnsafeSQL):
        check_expression(f"(SELECT count(*) FROM {name}('/etc/passwd'))")
    with pytest.raises(UnsafeSQL):
        check_query(f"SELECT * FROM silver_x WHERE id IN (SELECT 1 FROM {name}('/etc/passwd'))")


@pytest.mark.parametrize("sql", STATEMENTS)
def test_every_other_statement_kind_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeSQL):
        check_query(sql)


def test_harmless_functions_still_work() -> None:
    assert check_query("SELECT * FROM range(3)") == ()
    assert check_query("SELECT unnest([1, 2]) AS x") == ()
    engine = DuckDBEngine()
    try:
        assert engine.query("SELECT sum(range) AS s FROM range(4)", "test").to_pylist() == [{"s": 6}]
    finally:
        engine.close()


@pytest.mark.parametrize("name", ["read_text", "read_csv", "read_blob", "read_json", "read_parquet", "glob",
                                  "query", "sniff_csv", "parquet_metadata"])
def test_gold_sql_and_silver_expressions_refuse_file_readers_at_validate(name: str) -> None:
    arg = "'SELECT 1'" if name == "query" else "'/etc/passwd'"
    gold = {"name": "w", "jobs": [{"name": "g", "kind": "gold", "tables": [
        {"target": "gold_x", "sql": f"SELECT * FROM {name}({arg})"}]}]}
    silver = {"name": "w", "jobs": [{"name": "s", "kind": "silver", "tables": [
        {"target": "silver_x", "source": "bronze_x", "keys": ["id"],
         "derived": {"loot": f"(SELECT count(*) FROM {name}({arg}))"}}]}]}
    for spec in (gold, silver):
        with pytest.raises(ValidationError) as err:
            Workflow.model_validate(spec)
        assert name in str(err.value)


@pytest.fixture
def lake_ctx(tmp_path: Path) -> Context:
    project = tmp_path / "p"
    init_project(project)
    return Context.open(project)


@pytest.mark.parametrize("name", [n for n in TABLE_FUNCTIONS if n not in HARMLESS][:60])
def test_queries_refuse_every_table_function(lake_ctx: Context, name: str) -> None:
    with pytest.raises(UserCodeError):
        lake_ctx.query(f"SELECT * FROM {name}('/etc/passwd')")


def test_a_sealed_engine_refuses_files_even_without_the_parser_check(tmp_path: Path) -> None:
    """The second layer alone: raw SQL on the engine's connection after seal()."""
    mine = tmp_path / "mine.parquet"
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), mine)
    pq.write_table(pa.table({"secret": ["x"]}), other)
    (tmp_path / "notes.txt").write_text("private")
    engine = DuckDBEngine()
    try:
        engine.register_files("mine", [str(mine)], pa.schema([("a", pa.int64())]))
        engine.seal()
        assert engine.con.execute("SELECT sum(a) FROM mine").fetchone() == (3,)
        attacks = [f"SELECT * FROM read_text('{tmp_path / 'notes.txt'}')", "SELECT * FROM read_text('/etc/passwd')",
                   "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_blob('/etc/hostname')",
                   f"SELECT * FROM read_parquet('{other}')", f"SELECT * FROM glob('{tmp_path}/*')",
                   f"ATTACH '{tmp_path / 'x.db'}' AS x", f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
                   "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true",
                   f"SET allowed_paths = ['{other}']", "SET lock_configuration = false",
                   "SELECT * FROM read_text('http://127.0.0.1:9/x')"]
        for sql in attacks:
            with pytest.raises(duckdb.Error):
                engine.con.execute(sql).fetchall()
        assert not (tmp_path / "out.csv").exists() and not (tmp_path / "x.db").exists()
        with pytest.raises(RuntimeError):
            engine.register_files("late", [str(other)], pa.schema([("secret", pa.string())]))
    finally:
        engine.close()


def test_python_variables_are_never_read_by_name() -> None:
    secret_table = pa.table({"password": ["hunter2"]})  # noqa: F841  (what a replacement scan would find)
    engine = DuckDBEngine()
    try:
        with pytest.raises(UserCodeError):
            engine.query("SELECT * FROM secret_table", "test")
    finally:
        engine.close()
