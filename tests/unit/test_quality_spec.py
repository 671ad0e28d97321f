"""The ``tests:`` field in workflow YAML: the forms a user writes, and what a mistake looks like."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from flowforge.errors import SpecError
from flowforge.quality.base import TEST_KINDS
from flowforge.quality.spec import Tests
from flowforge.spec import parse_workflow

WORKFLOW = """\
name: shop
jobs:
  - name: land
    kind: ingest
    connection: files
    tables:
      - files: orders.csv
        target: bronze_orders
        tests:
          - not_null: order_id
  - name: clean
    kind: silver
    tables:
      - target: silver_orders
        source: bronze_orders
        keys: [order_id]
        tests:
          - unique: order_id
          - accepted_values: {column: status, values: [placed, shipped], severity: warn}
          - expression: {sql: "amount >= 0", severity: drop, mostly: 0.99}
          - test: regex
            column: email
            pattern: '^[^@]+@[^@]+$'
            severity: quarantine
          - row_count: {min: 1, max_change_pct: 20}
  - name: report
    kind: gold
    tables:
      - target: gold_revenue
        sql: SELECT sum(amount) AS revenue FROM silver_orders
        tests: [{row_count: {min: 1}}]
"""


def _tests(value: object) -> tuple[object, ...]:
    return TypeAdapter(Tests).validate_python(value)


def test_every_form_a_user_writes_parses_and_survives_the_round_trip() -> None:
    wf = parse_workflow(WORKFLOW, "shop.yml")
    silver = wf.jobs[1].tables[0]
    assert [t.title() for t in silver.tests] == [
        "unique(order_id)", "accepted_values(status in [placed, shipped])", "expression(amount >= 0)",
        "regex(email ~ ^[^@]+@[^@]+$)", "row_count(>= 1, ±20%)"]
    assert [t.severity for t in silver.tests] == ["fail", "warn", "drop", "quarantine", "fail"]
    assert silver.tests[2].mostly == 0.99
    # what the metadata store keeps (and the job editor writes back) parses to the same workflow
    again = parse_workflow(yaml.safe_dump(wf.to_dict()), "again.yml")
    assert again == wf


@pytest.mark.parametrize("kind", sorted(TEST_KINDS))
def test_each_kind_has_a_yaml_example_that_loads(kind: str) -> None:
    doc = TEST_KINDS[kind].__doc__ or ""
    block = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert block, f"{kind} has no YAML example in its docstring"
    tests = _tests(yaml.safe_load(block.group(1))["tests"])
    assert tests and all(t.test == kind for t in tests)


def test_a_mistake_names_the_file_line_and_what_to_do() -> None:
    text = WORKFLOW.replace("          - unique: order_id\n", "          - uniq: order_id\n")
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "shop.yml")
    assert info.value.line == 18 and "'uniq'" in str(info.value) and "'unique'" in str(info.value)

    text = WORKFLOW.replace("row_count: {min: 1, max_change_pct: 20}", "row_count: {min: 1, severity: drop}")
    with pytest.raises(SpecError, match="tests the whole table, so severity 'drop'"):
        parse_workflow(text, "shop.yml")


@pytest.mark.parametrize("sql", [
    "amount > 0) OR (1 = 1",
    "1; DROP TABLE silver_orders",
    "amount IN (SELECT amount FROM gold_revenue)",
    "length(read_text('/etc/passwd')) > 0",
    "getenv('AWS_SECRET_ACCESS_KEY') IS NULL",
    "sum(amount) > 0",
])
def test_an_expression_is_one_row_condition_and_nothing_else(sql: str) -> None:
    with pytest.raises(ValidationError):
        _tests([{"expression": sql}])


def test_values_and_patterns_are_literals_never_sql() -> None:
    tests = _tests([{"accepted_values": {"column": "status", "values": ["it's", "x') OR TRUE --"]}},
                    {"regex": {"column": "email", "pattern": "^a'b$"}}])
    from flowforge.quality.scope import Scope

    scope = Scope(None, table_name="t", types={"status": "VARCHAR", "email": "VARCHAR"},  # type: ignore[arg-type]
                  kept_columns=None, lakehouse=str, label="t")
    assert tests[0].failing(scope) == ('''"status" IS NOT NULL AND NOT coalesce("status" IN '''
                                       '''('it''s', 'x'') OR TRUE --'), false)''')
    assert tests[1].failing(scope) == '''NOT regexp_matches("email", '^a''b$')'''


def test_a_cdc_table_takes_warn_and_fail_only() -> None:
    base = """\
name: cdc
jobs:
  - name: product_cdc
    kind: cdc
    connection: events
    target: bronze_product_cdc
    tables:
      - target: silver_product
        keys: [ID]
        tests:
          - not_null: {column: NAME, severity: SEVERITY}
"""
    wf = parse_workflow(base.replace("SEVERITY", "warn"), "cdc.yml")
    assert wf.jobs[0].tables[0].tests[0].severity == "warn"
    with pytest.raises(SpecError, match="not available on a cdc table"):
        parse_workflow(base.replace("SEVERITY", "quarantine"), "cdc.yml")


def test_two_tests_with_one_name_must_be_told_apart() -> None:
    with pytest.raises(ValidationError, match="give one of them a 'name'"):
        _tests([{"not_null": "id"}, {"not_null": "id"}])
    named = _tests([{"not_null": "id"}, {"not_null": {"column": "id", "name": "id_present_again"}}])
    assert [t.title() for t in named] == ["not_null(id)", "id_present_again"]


def test_arguments_are_checked_when_the_file_is_read() -> None:
    for bad, message in [
        ({"range": {"column": "x"}}, "give 'min', 'max' or both"),
        ({"row_count": 5}, "takes its arguments as a mapping"),
        ({"freshness": {"column": "ts", "max_age": "soon"}}, "not a duration"),
        ({"regex": {"column": "x", "pattern": "(unclosed"}}, "does not compile"),
        ({"schema": {"columns": {"id": "NOT A TYPE ((("}}}, "is not a SQL type"),
        ({"not_null": {"column": "x", "mostly": 1.5}}, "less than or equal to 1"),
        ({"reconcile": {"expression": "sum(a)", "against": "t", "tolerance": 1, "tolerance_pct": 2}}, "not both"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(message)):
            _tests([bad])
