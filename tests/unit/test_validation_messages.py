"""`flowforge validate` tells every problem at once, in words, with the line, the allowed fields, a close
match, readable SQL errors and dependency cycles; a workflow's name is never taken for a folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.cli_helpers import init_project, invoke

from flowforge.errors import SpecError
from flowforge.spec.loader import parse_workflow

MISTYPED = """\
name: typos
jobs:
  - name: ingest_orders
    kind: ingest
    conection: local_files
    tables:
      - {files: "orders*.csv", target: bronze_orders, delimitr: ";"}
  - name: clean_orders
    kind: silver
    tables:
      - target: silver_orders
        source: bronze_orders
        keys: [order_id]
        oder_by: updated_at
"""


def test_every_problem_is_listed_with_its_line_a_close_match_and_the_allowed_fields() -> None:
    with pytest.raises(SpecError) as caught:
        parse_workflow(MISTYPED, "typos.yml")
    text = str(caught.value)
    assert "3 problems" in text
    assert "more problem" not in text
    assert "line 5: jobs.0.conection: unknown field 'conection' (did you mean 'connection'?)" in text
    assert ("allowed: connection, depends_on, description, exclude, include, kind, name, on_schema_change, tables, "
            "target_template") in text
    assert "line 7: jobs.0.tables.0.delimitr: unknown field 'delimitr'" in text
    assert "line 14: jobs.1.tables.0.oder_by: unknown field 'oder_by' (did you mean 'order_by'?)" in text
    # the typo is not reported a second time as a missing field, nor its list as too short
    assert "missing required field 'connection'" not in text
    assert "at least" not in text and "after validation" not in text


def test_pydantic_wording_becomes_plain_words() -> None:
    with pytest.raises(SpecError) as caught:
        parse_workflow("name: empty\njobs:\n  - {name: a, kind: silver, tables: []}\n", "empty.yml")
    assert "jobs.0.tables: needs at least one entry" in str(caught.value)
    assert "Tuple should" not in str(caught.value)
    # an ingest job may find its tables in the source instead: it says how
    with pytest.raises(SpecError) as caught:
        parse_workflow("name: empty\njobs:\n  - {name: a, kind: ingest, connection: c, tables: []}\n", "empty.yml")
    assert ("jobs.0.tables: needs at least one entry, or 'include' patterns (tables: \"*\" lands every table)"
            in str(caught.value))


def test_a_sql_error_names_line_column_and_the_offending_text_without_token_dumps() -> None:
    spec = """\
name: bad_sql
jobs:
  - name: daily
    kind: gold
    tables:
      - target: gold_daily
        sql: |
          SELECT a, sum(b) AS
          FROM silver_orders GROUP BY 1
      - target: gold_where
        sql: SELECT FROM WHERE x
"""
    with pytest.raises(SpecError) as caught:
        parse_workflow(spec, "bad_sql.yml")
    text = str(caught.value)
    assert "line 7: jobs.0.tables.0.sql: the SQL does not parse: Invalid expression / Unexpected token " \
           "at line 2, column 18, near 'SELECT a, sum(b) AS FROM >>silver_orders<< GROUP BY 1'" in text
    assert "line 11: jobs.0.tables.1.sql:" in text and "got 'WHERE'" in text
    assert "<Token" not in text and "TokenType" not in text
    assert "sql: sql:" not in text


def test_a_dependency_cycle_fails_validate_and_shows_the_cycle(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop")
    (project / "workflows" / "loop.yml").write_text("""\
name: loop
jobs:
  - name: first
    kind: gold
    tables: [{target: gold_a, sql: "SELECT * FROM gold_b"}]
  - name: second
    kind: gold
    tables: [{target: gold_b, sql: "SELECT * FROM gold_a"}]
""", encoding="utf-8")
    code, out = invoke(project, "validate", "loop")
    assert code != 0
    assert "cycle: first → second → first" in out or "cycle: second → first → second" in out
    assert "loop.yml" in out


def test_a_workflow_named_like_the_project_folder_runs_by_name(tmp_path: Path) -> None:
    project = init_project(tmp_path / "example")  # the scaffold's workflow is also called "example"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the folder that holds the project folder of the same name
    try:
        code, out = invoke(Path("example"), "run", "example")
    finally:
        os.chdir(cwd)
    assert code == 0, out
    assert "IsADirectoryError" not in out
    assert "Finished run 1 of 'example': 3 jobs" in out and "PASS=3 ERROR=0" in out
    assert (project / "lakehouse" / "gold" / "gold_daily_revenue" / "_delta_log").is_dir()
