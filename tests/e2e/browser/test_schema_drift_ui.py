"""The catalog page of a table whose source dropped a column: the Schema tab marks it dropped
(and says since when), the other columns are not, and the schema changes are listed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flowforge.core.context import Context
from tests.e2e.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORKFLOW = """\
name: drift_ui
jobs:
  - name: land
    kind: ingest
    connection: core_banking
    tables:
      - {table: drift_items, target: bronze_drift_items}
"""


def test_catalog_schema_tab_marks_a_dropped_column(admin_page: Any, server: str, ui_project: Path) -> None:
    db = ui_project / "data" / "bfsi.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE drift_items (id INTEGER PRIMARY KEY, legacy_code TEXT, label TEXT)")
        conn.execute("INSERT INTO drift_items VALUES (1, 'L-1', 'one')")
    conn.close()
    (ui_project / "workflows" / "drift_ui.yml").write_text(WORKFLOW, encoding="utf-8")
    with Context.open(ui_project) as ctx:
        assert ctx.run("drift_ui").status == "success"
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE drift_items DROP COLUMN legacy_code")
            conn.execute("INSERT INTO drift_items VALUES (2, 'two')")
        conn.close()
        assert ctx.run("drift_ui").status == "success"

    page = admin_page
    page.goto(server + "/ui/catalog/bronze_drift_items")
    page.locator("[data-testid=status-legacy_code]").get_by_text("dropped since", exact=False).wait_for()
    assert page.locator("[data-testid=status-label]").count() == 0  # the other columns are not marked
    changes = page.locator("[data-testid=schema-changes]")
    change = changes.get_by_role("row").filter(has_text="legacy_code")
    assert "dropped" in change.inner_text() and "TEXT" in change.inner_text()
    shot(page, "40_catalog_dropped_column")
