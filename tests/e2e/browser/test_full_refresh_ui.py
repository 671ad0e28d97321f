"""The "Full refresh" button of a workflow page rebuilds its tables from their sources in one
overwrite commit each, as ``flowforge run --full-refresh`` does (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable

from flowforge.core.context import Context
from tests.e2e.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORKFLOW = "refresh_from_ui"


def test_full_refresh_from_the_workflow_page(admin_page: Any, server: str, ui_project: Path) -> None:
    spec = {"name": WORKFLOW, "jobs": [
        {"name": "land", "kind": "ingest", "connection": "core_banking",
         "tables": [{"table": "customers", "target": "bronze_refresh_customers", "incremental": "modified_date"}]},
        {"name": "clean", "kind": "silver", "tables": [
            {"target": "silver_refresh_customers", "source": "bronze_refresh_customers", "keys": ["customer_id"]}]}]}
    (ui_project / "workflows" / f"{WORKFLOW}.yml").write_text(yaml.safe_dump(spec))
    with Context.open(ui_project) as ctx:
        assert ctx.run(WORKFLOW).status == "success"
        rows = ctx.store.open("bronze", "bronze_refresh_customers").to_pyarrow_table().num_rows  # type: ignore[union-attr]

    page = admin_page
    page.goto(server + f"/ui/workflows/{WORKFLOW}")
    page.click("[data-testid=full-refresh]")
    page.get_by_text(re.compile("Rebuild tables of")).wait_for()
    shot(page, "full_refresh_dialog")
    page.click("[data-testid=refresh-go]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-success]").wait_for(timeout=120_000)

    for layer, table in (("bronze", "bronze_refresh_customers"), ("silver", "silver_refresh_customers")):
        dt = DeltaTable(str(ui_project / "lakehouse" / layer / table))
        assert dt.version() == 1 and dt.history(1)[0]["operationParameters"]["mode"] == "Overwrite"
        assert dt.to_pyarrow_table().num_rows == rows
        assert DeltaTable(str(ui_project / "lakehouse" / layer / table), version=0).to_pyarrow_table().num_rows == rows
