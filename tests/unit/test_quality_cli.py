"""A jaffle shop ported from dbt: its schema.yml tests imported, run with every run, run alone
with ``flowforge test``, and published as OpenLineage facets."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from tests.cli_helpers import invoke

from flowforge.core.context import Context
from flowforge.quality.dbt import read_schema

README = Path(__file__).resolve().parents[2] / "README.md"

RAW_CUSTOMERS = "id,first_name,last_name\n1,Michael,P.\n2,Shawn,M.\n3,Kathleen,P.\n"
RAW_ORDERS = ("id,user_id,order_date,status\n1,1,2018-01-01,returned\n2,3,2018-01-02,completed\n"
              "3,2,2018-01-04,completed\n4,1,2018-01-05,placed\n")
RAW_PAYMENTS = ("id,order_id,payment_method,amount\n1,1,credit_card,1000\n2,2,credit_card,2000\n"
                "3,3,coupon,100\n4,4,coupon,2500\n5,4,gift_card,100\n")
# the jaffle shop's models, as gold SQL over the raw seeds landed in bronze
WORKFLOW = """\
name: jaffle_shop
jobs:
  - name: land
    kind: ingest
    connection: seeds
    tables:
      - {files: raw_customers.csv, target: raw_customers}
      - {files: raw_orders.csv, target: raw_orders}
      - {files: raw_payments.csv, target: raw_payments}
  - name: models
    kind: gold
    tables:
      - target: customers
        sql: |
          SELECT c.id AS customer_id, c.first_name, c.last_name, min(o.order_date) AS first_order,
                 max(o.order_date) AS most_recent_order, count(o.id) AS number_of_orders
          FROM raw_customers c LEFT JOIN raw_orders o ON o.user_id = c.id
          GROUP BY ALL
      - target: orders
        sql: |
          SELECT o.id AS order_id, o.user_id AS customer_id, o.order_date, o.status,
                 coalesce(sum(p.amount) FILTER (WHERE p.payment_method = 'credit_card'), 0) / 100 AS credit_card_amount,
                 coalesce(sum(p.amount) FILTER (WHERE p.payment_method = 'coupon'), 0) / 100 AS coupon_amount,
                 coalesce(sum(p.amount) FILTER (WHERE p.payment_method = 'bank_transfer'), 0) / 100
                   AS bank_transfer_amount,
                 coalesce(sum(p.amount) FILTER (WHERE p.payment_method = 'gift_card'), 0) / 100 AS gift_card_amount,
                 coalesce(sum(p.amount), 0) / 100 AS amount
          FROM raw_orders o LEFT JOIN raw_payments p ON p.order_id = o.id
          GROUP BY ALL
"""


def _readme_schema() -> str:
    block = re.search(r"<!-- jaffle-shop-schema -->\n```yaml\n(.*?)```", README.read_text(), re.S)
    assert block, "the README shows the jaffle shop's schema.yml"
    return block.group(1)


@pytest.fixture
def jaffle(tmp_path: Path) -> Path:
    project = tmp_path / "jaffle"
    (project / "workflows").mkdir(parents=True)
    (project / "seeds").mkdir()
    for name, text in (("raw_customers", RAW_CUSTOMERS), ("raw_orders", RAW_ORDERS), ("raw_payments", RAW_PAYMENTS)):
        (project / "seeds" / f"{name}.csv").write_text(text)
    (project / "flowforge.yml").write_text(yaml.safe_dump(
        {"lakehouse": "lakehouse", "data_roots": ["seeds"],
         "connections": {"seeds": {"type": "files", "path": "seeds", "format": "csv"}}}))
    (project / "workflows" / "jaffle_shop.yml").write_text(WORKFLOW)
    return project


def test_the_readme_schema_translates_test_for_test() -> None:
    result = read_schema(_readme_schema(), {})
    assert not result.skipped
    assert result.tables["customers"] == [{"unique": "customer_id"}, {"not_null": "customer_id"}]
    orders = result.tables["orders"]
    assert orders[:4] == [{"unique": "order_id"}, {"not_null": "order_id"}, {"not_null": "customer_id"},
                          {"relationships": {"column": "customer_id", "to": "customers", "field": "customer_id"}}]
    assert orders[4] == {"accepted_values": {"column": "status", "values": [
        "placed", "shipped", "completed", "return_pending", "returned"]}}
    assert len(orders) == 10
    assert "# customers\ntests:\n- unique: customer_id\n" in result.yaml()


def test_dbt_utils_and_config_carry_over_and_the_rest_is_listed() -> None:
    schema = """
version: 2
models:
  - name: payments
    tests:
      - dbt_utils.expression_is_true: {expression: "amount >= 0", config: {severity: warn}}
      - dbt_utils.unique_combination_of_columns: {combination_of_columns: [order_id, payment_method]}
      - dbt_utils.equal_rowcount: {compare_model: ref('stg_payments')}
      - my_project.custom_check: {limit: 3}
    columns:
      - name: amount
        data_tests:
          - dbt_utils.accepted_range: {min_value: 0, inclusive: false, config: {where: "status = 'ok'"}}
          - dbt_utils.not_null_proportion: {at_least: 0.95}
          - dbt_utils.expression_is_true: {expression: "< 100000"}
      - name: paid_at
        tests:
          - dbt_utils.recency: {datepart: hour, field: paid_at, interval: 6}
          - dbt_utils.recency: {datepart: month, field: paid_at, interval: 1}
          - accepted_values: {values: ["{{ var('methods') }}"]}
"""
    result = read_schema(schema, {"payments": "silver_payments", "stg_payments": "bronze_payments"})
    tests = result.tables["silver_payments"]
    assert {"range": {"column": "amount", "min": 0, "strict_min": True, "strict_max": True,
                      "where": "status = 'ok'"}} in tests
    assert {"not_null": {"column": "amount", "mostly": 0.95}} in tests
    assert {"expression": '"amount" < 100000'} in tests
    assert {"freshness": {"column": "paid_at", "max_age": "6h"}} in tests
    assert {"expression": {"severity": "warn", "sql": "amount >= 0"}} in tests
    assert {"unique_combination": ["order_id", "payment_method"]} in tests
    assert {"reconcile": {"expression": "count(*)", "against": "bronze_payments"}} in tests
    reasons = {(s.test, s.reason) for s in result.skipped}
    assert ("my_project.custom_check", "no FlowForge equivalent (a custom or unsupported generic test)") in reasons
    assert any(t == "dbt_utils.recency" and "month" in r for t, r in reasons)
    assert ("accepted_values", "Jinja in a test argument cannot be translated") in reasons


def test_ported_jaffle_shop_runs_its_dbt_tests(jaffle: Path) -> None:
    (jaffle / "schema.yml").write_text(_readme_schema())
    code, out = invoke(jaffle, "import", "dbt-tests", str(jaffle / "schema.yml"), "--into", "jaffle_shop")
    assert code == 0, out
    assert "Added 12 test(s)" in out
    # importing twice adds nothing twice
    code, out = invoke(jaffle, "import", "dbt-tests", str(jaffle / "schema.yml"), "--into", "jaffle_shop")
    assert "Added 0 test(s)" in out

    code, out = invoke(jaffle, "run", "jaffle_shop")
    assert code == 0, out
    assert "Tests: PASS=12 WARN=0 ERROR=0" in out
    assert "PASS  relationships(customer_id → customers.customer_id)" in out

    code, out = invoke(jaffle, "test", "--select", "orders")
    assert code == 0, out
    assert "Done. PASS=10 WARN=0 ERROR=0 SKIP=0 TOTAL=10" in out
    assert re.search(r"\d PASS accepted_values\(status in \[placed, shipped, completed, return_pending, returned\]\) "
                     r"on orders \.+ \[PASS in \d+\.\d+s\]", out), out

    # an order of an unknown customer: the relationships test fails and says which row
    (jaffle / "seeds" / "raw_orders.csv").write_text(RAW_ORDERS + "5,99,2018-01-06,shipped\n")
    shutil.rmtree(jaffle / "lakehouse")
    code, out = invoke(jaffle, "run", "jaffle_shop")
    assert code == 1
    assert "relationships(customer_id → customers.customer_id) failed: 1 of 5 checked row(s) fail" in out
    assert "'order_id': 5, 'customer_id': 99" in out
    code, out = invoke(jaffle, "test", "jaffle_shop")
    assert code == 0, out  # orders was never committed (its tests skip); customers was, and its tests pass
    assert "Done. PASS=2 WARN=0 ERROR=0 SKIP=10 TOTAL=12" in out
    assert "SKIP unique(order_id) on orders" in out


def test_test_command_errors_say_what_to_do(jaffle: Path) -> None:
    code, out = invoke(jaffle, "test", "--select", "orders")
    assert code == 1 and "No tests are declared on orders" in out
    code, out = invoke(jaffle, "quarantine", "show", "orders")
    assert code == 1 and "no quarantine table" in out and "flowforge quarantine list" in out


def test_run_results_are_openlineage_data_quality_assertions(jaffle: Path, conformance_dir: Path) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    root = conformance_dir / "openlineage" / "spec"
    (jaffle / "schema.yml").write_text(_readme_schema())
    invoke(jaffle, "import", "dbt-tests", str(jaffle / "schema.yml"), "--into", "jaffle_shop")
    with Context.open(jaffle) as ctx:
        run = ctx.run("jaffle_shop")
        facets = ctx.quality.assertions_facets(run.run_id)
    assert sorted(facets) == ["customers", "orders"]
    assert {"assertion": "relationships", "success": True, "column": "customer_id"}.items() <= \
        next(a for a in facets["orders"]["assertions"] if a["assertion"] == "relationships").items()
    files = [root / "OpenLineage.json", *sorted((root / "facets").glob("*.json"))]
    resources = [json.loads(p.read_text()) for p in files]
    registry = Registry().with_resources((r["$id"], Resource.from_contents(r)) for r in resources)
    facet_schema = json.loads((root / "facets" / "DataQualityAssertionsDatasetFacet.json").read_text())
    validator = Draft202012Validator(facet_schema, registry=registry)
    for facet in facets.values():
        errors = list(validator.iter_errors({"dataQualityAssertions": facet}))
        assert not errors, errors[0].message
