"""Workflow YAML validation: what a user sees when a file is wrong."""

from __future__ import annotations

import pytest

from flowforge.core.dag import job_order
from flowforge.errors import SpecError
from flowforge.spec import parse_workflow
from flowforge.templates.registry import get_template, list_templates

VALID = """\
name: shop
jobs:
  - name: land
    kind: ingest
    connection: files
    tables:
      - {files: "orders.csv", target: bronze_orders}
  - name: report
    kind: gold
    tables:
      - target: gold_revenue
        sql: SELECT sum(amount) AS revenue FROM silver_orders
  - name: clean
    kind: silver
    tables:
      - {target: silver_orders, source: bronze_orders, keys: [order_id]}
"""


def test_valid_workflow_orders_jobs_by_the_tables_they_read() -> None:
    wf = parse_workflow(VALID, "shop.yml")
    assert job_order(wf) == ["land", "clean", "report"]
    assert wf.job("report").inputs() == ("silver_orders",)


def test_unknown_field_names_file_line_and_field() -> None:
    text = VALID.replace("    connection: files\n", "    connection: files\n    conection: typo\n")
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "shop.yml")
    assert info.value.line == 6
    assert "shop.yml:6" in str(info.value)
    assert "unknown field 'conection'" in str(info.value)


def test_missing_field_points_at_the_job() -> None:
    text = VALID.replace("    connection: files\n", "")
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "shop.yml")
    assert "missing required field 'connection'" in str(info.value)
    assert info.value.line == 3  # the "- name: land" item


def test_malformed_yaml_reports_the_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_workflow("name: x\njobs:\n  - name: a\n   kind: ingest\n", "bad.yml")
    assert info.value.file == "bad.yml"
    assert info.value.line == 4
    assert "invalid YAML" in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{files: \"orders.csv\", target: bronze_orders}",
          "{files: \"orders.csv\", table: t, target: bronze_orders}"),
         "exactly one of 'table', 'query', 'procedure' or 'files'"),
        (("keys: [order_id]", "keys: []"), "strategy 'merge' needs 'keys'"),
        (("SELECT sum(amount) AS revenue FROM silver_orders", "SELEC sum(amount) FROM silver_orders"),
         "SQL does not parse"),
        (("target: gold_revenue", "target: bronze_orders"), "written by both 'land' and 'report'"),
        (("- name: clean", "- name: land"), "job name 'land' is used twice"),
        (("target: silver_orders", "target: silver-orders"), "not a valid name"),
    ],
)
def test_invalid_workflows_are_refused_with_a_reason(change: tuple[str, str], message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_workflow(VALID.replace(*change), "shop.yml")
    assert message in str(info.value)
    assert info.value.line is not None


def test_dependency_cycle_is_an_error() -> None:
    text = VALID.replace("    connection: files\n", "    connection: files\n    depends_on: [report]\n")
    wf = parse_workflow(text, "shop.yml")
    with pytest.raises(SpecError, match="cycle"):
        job_order(wf)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        parse_workflow("- just\n- a list\n", "list.yml")


def test_every_template_renders_to_a_valid_workflow() -> None:
    templates = list_templates()
    assert "bfsi_customer_360" in [t.name for t in templates]
    for tpl in templates:
        wf = parse_workflow(tpl.render(), tpl.name)
        assert wf.name == tpl.defaults()["workflow_name"]


def test_bfsi_template_has_the_four_jobs_of_the_plan() -> None:
    wf = parse_workflow(get_template("bfsi_customer_360").render({"workflow_name": "c360"}), "t")
    assert wf.name == "c360"
    assert [j.kind for j in wf.jobs] == ["ingest", "ingest", "silver", "gold"]
    assert job_order(wf)[-1] == "build_gold_customer_360"
    assert set(wf.job("build_gold_customer_360").inputs()) == {
        "silver_accounts", "silver_transactions", "silver_customer_master", "silver_crm_customers"}


def test_template_rejects_unknown_parameters() -> None:
    from flowforge.errors import ConfigError

    with pytest.raises(ConfigError, match="no parameter"):
        get_template("bfsi_customer_360").render({"colour": "blue"})


def _yaml_example(doc: str | None) -> object:
    import re

    import yaml

    m = re.search(r"```yaml\n(.*?)```", doc or "", re.S)
    assert m is not None
    return yaml.safe_load(m.group(1))


def test_ingest_docstring_examples_load() -> None:
    from flowforge.spec.jobs import IngestJob, IngestTable

    job = IngestJob.model_validate(_yaml_example(IngestJob.__doc__)[0])  # type: ignore[index]
    assert job.outputs() == ("bronze_customers",) and job.tables[0].sub_microseconds == "error"
    tables = [IngestTable.model_validate(t) for t in _yaml_example(IngestTable.__doc__)]  # type: ignore[attr-defined]
    assert [(t.target, t.sub_microseconds) for t in tables] == [("bronze_audit_trail", "truncate"),
                                                                ("bronze_trades", "string"),
                                                                ("bronze_accounts", "error")]
    assert tables[2].read is not None and tables[2].read.delimiter == ";"
    assert tables[2].read.encoding == "iso8859-1" and tables[2].read.columns == {"balance": "decimal(14,2)"}


def test_an_unknown_sub_microseconds_choice_lists_the_choices() -> None:
    text = VALID.replace('{files: "orders.csv", target: bronze_orders}',
                         '{files: "orders.csv", target: bronze_orders, sub_microseconds: round}')
    with pytest.raises(SpecError) as info:
        parse_workflow(text, "shop.yml")
    message = str(info.value)
    assert "shop.yml:7" in message and "sub_microseconds" in message
    assert "'error'" in message and "'truncate'" in message and "'string'" in message
