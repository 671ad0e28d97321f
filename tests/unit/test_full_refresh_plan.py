"""Which tables ``--full-refresh [--select …]`` rebuilds and which jobs that runs (issue 11)."""

from __future__ import annotations

import pytest
import yaml

from flowforge.errors import SpecError
from flowforge.runner.refresh import plan_refresh
from flowforge.spec import parse_workflow

WF = parse_workflow(yaml.safe_dump({"name": "shop", "jobs": [
    {"name": "land", "kind": "ingest", "connection": "db",
     "tables": [{"table": "a", "target": "bronze_a"}, {"table": "b", "target": "bronze_b"}]},
    {"name": "clean", "kind": "silver", "tables": [
        {"target": "silver_a", "source": "bronze_a", "keys": ["id"]},
        {"target": "silver_b", "source": "bronze_b", "keys": ["id"]}]},
    {"name": "report", "kind": "gold", "tables": [{"target": "gold_a", "sql": "SELECT * FROM silver_a"}]},
    {"name": "events", "kind": "cdc", "connection": "ev", "target": "bronze_ev", "tables": [{"target": "silver_ev"}]},
]}), "shop.yml")


def test_a_selected_table_brings_what_depends_on_it() -> None:
    refresh, jobs = plan_refresh(WF, full_refresh=True, tables=["bronze_a"])
    assert refresh.tables == {"bronze_a", "silver_a", "gold_a"}
    assert jobs == ["clean", "land", "report"]  # the runner keeps dependency order
    assert not refresh.rebuilds("silver_b") and not refresh.force


def test_everything_but_cdc_tables_without_a_selection() -> None:
    refresh, jobs = plan_refresh(WF, full_refresh=True)
    assert refresh.tables == {"bronze_a", "bronze_b", "silver_a", "silver_b", "gold_a"}
    assert jobs is not None and "events" in jobs


def test_no_refresh_keeps_the_job_selection() -> None:
    refresh, jobs = plan_refresh(WF, jobs=["land"], force=True)
    assert refresh.tables == frozenset() and refresh.force and jobs == ["land"]
    assert plan_refresh(WF) == (plan_refresh(WF)[0], None)


@pytest.mark.parametrize(("tables", "full", "message"), [
    (["nope"], True, "writes no table"),
    (["silver_ev"], True, "flowforge cdc reset shop events"),
    (["bronze_a"], False, "goes with --full-refresh"),
])
def test_refused_selections(tables: list[str], full: bool, message: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_refresh(WF, full_refresh=full, tables=tables)
    assert message in f"{err.value.message} {err.value.hint}"
