"""The command line warns of a second writer when a template is used; validation problems in
plain words (``spec/messages.py``); in-place YAML edits keep comments."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.cli_helpers import init_project, invoke

from flowforge.core.spec_edit import merge_text, replace_job
from flowforge.spec.messages import plain_message, plain_messages, relevant
from flowforge.spec.workflow import Workflow


def test_templates_use_warns_of_tables_already_written(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    code, out = invoke(project, "templates", "use", "bfsi_customer_360")
    assert code == 0, out
    code, out = invoke(project, "templates", "use", "bfsi_customer_360", "--param", "workflow_name=bank_two",
                       "--tag", "pilot")
    assert code == 0, out
    assert "Warning:" in out and "'gold_customer_360' is already written by job 'build_gold_customer_360'" in out
    assert "tags: [pilot]" in (project / "workflows" / "bank_two.yml").read_text()
    code, out = invoke(project, "templates", "use", "product_search", "--table",
                       "bronze_products=bronze_products_v2")
    assert "Warning:" not in out


def _errors(data: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Workflow.model_validate(data)
    return [plain_message(e) for e in relevant(info.value.errors())]


def test_messages_say_what_is_wrong_in_plain_words() -> None:
    ingest = {"name": "a", "kind": "ingest", "connection": "c"}
    assert _errors({"name": "w", "jobs": [{"name": "a", "kind": "silver", "tables": []}]}) == [
        "needs at least one entry"]
    assert _errors({"name": "w", "jobs": [{**ingest, "tables": []}]}) == [
        "needs at least one entry, or 'include' patterns (tables: \"*\" lands every table)"]
    assert _errors({"name": "w", "jobs": [{"name": "a"}]}) == ["missing required field 'kind'"]
    assert _errors({"name": "w", "concurrency": "never", "jobs": []}) == [
        "must be one of 'queue', 'skip', 'fail' (not 'never')"]
    assert _errors({"name": "w", "tags": "x", "jobs": []}) == ["must be a list"]
    assert _errors({"name": "w", "colour": "red", "jobs": []}) == [
        "unknown field 'colour'; check its spelling, or remove it"]
    [batch] = _errors({"name": "w", "jobs": [{**ingest, "tables": [{"table": "t", "target": "b", "batch_size": 0}]}]})
    assert batch == "must be at least 1"
    [kind] = _errors({"name": "w", "jobs": [{"name": "a", "kind": "ingets"}]})
    assert kind.startswith("kind 'ingets' is not known; use one of 'ingest', 'silver'")
    for text in _errors({"name": "1 bad", "jobs": [{**ingest, "tables": []}]}):
        assert "should" not in text and "Value error" not in text
    assert plain_messages([{"type": "missing", "loc": ("jobs", 0, "ingest", "connection"), "msg": "x"}]) == [
        "jobs.0.ingest.connection: missing required field 'connection'"]


COMMENTED = """\
name: w  # the workflow
jobs:
  # first
  - name: a
    kind: gold
    tables:
      - {target: gold_a, sql: "SELECT 1 AS x"}  # tiny

  # second
  - name: b
    kind: gold
    tables:
      - target: gold_b
        sql: |
          SELECT 2 AS y
triggers:
  - every: 1h  # hourly
"""


def test_in_place_edits_keep_comments_and_the_rest_of_the_file() -> None:
    import yaml

    spec = yaml.safe_load(COMMENTED)
    assert merge_text(COMMENTED, spec) == COMMENTED
    spec["jobs"][1]["tables"][0]["sql"] = "SELECT 3 AS y\n"
    out = merge_text(COMMENTED, spec)
    assert out.replace("SELECT 3", "SELECT 2") == COMMENTED
    spec["jobs"].append({"name": "c", "kind": "gold", "tables": [{"target": "gold_c", "sql": "SELECT 4 AS z"}]})
    out = merge_text(COMMENTED, spec)
    assert out.replace("SELECT 3", "SELECT 2").startswith(COMMENTED.split("triggers:")[0])
    assert out.endswith("triggers:\n  - every: 1h  # hourly\n")
    assert yaml.safe_load(out) == spec
    spec = yaml.safe_load(COMMENTED)
    del spec["jobs"][0]
    out = merge_text(COMMENTED, spec)
    assert "# tiny" not in out and "# first" not in out and yaml.safe_load(out) == spec
    assert out == COMMENTED.replace(COMMENTED[COMMENTED.index("  # first"):COMMENTED.index("  # second")], "")
    spec["tags"] = ["x"]
    assert "# the workflow" in merge_text(COMMENTED, spec) and "# hourly" in merge_text(COMMENTED, spec)
    typed = "name: a  # renamed later\nkind: gold\ntables:\n  - {target: gold_a, sql: SELECT 5 AS x}\n"
    out = replace_job(COMMENTED, 0, typed)
    assert "  - name: a  # renamed later\n    kind: gold\n" in out and "# second" in out
    assert yaml.safe_load(out)["jobs"][0]["tables"][0]["sql"] == "SELECT 5 AS x"
