"""Data quality in the web UI: a run's tests on the run page, the Quality tab of a catalog table
with its history and quarantine, and a replay, with every value shown as text (never as HTML)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = "<img src=x onerror=window.__pwned=1>"
WORKFLOW = f"""\
name: crm_quality
jobs:
  - name: land_crm
    kind: ingest
    connection: crm_files
    tables:
      - files: "*.csv"
        target: bronze_crm_quality
        tests:
          - not_null: customer_id
          - accepted_values:
              column: loyalty_tier
              values: [bronze, silver]
              severity: quarantine
              name: "{HOSTILE}"
"""


def test_run_page_and_quality_tab(admin_page: Any, server: str, ui_project: Path) -> None:
    (ui_project / "workflows" / "crm_quality.yml").write_text(WORKFLOW)
    page = admin_page
    page.goto(server + "/ui/workflows/crm_quality")
    page.click("[data-testid=run-workflow]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-success]").wait_for(timeout=240_000)
    tests = page.locator("[data-testid=run-tests]")
    tests.get_by_text(re.compile(r"Tests: PASS=1 WARN=1 ERROR=0")).wait_for()
    # the hostile test name is shown as text, and no element came out of it
    tests.get_by_text(HOSTILE, exact=False).first.wait_for()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    shot(page, "20_run_tests")

    page.goto(server + "/ui/catalog/bronze_crm_quality")
    page.get_by_role("tab", name="Quality").click()
    latest = page.locator("[data-testid=quality-latest]")
    latest.get_by_role("cell", name="not_null(customer_id)").wait_for()
    summary = page.locator("[data-testid=quarantine-summary]")
    held = int(re.search(r"Quarantine: ([\d,]+) pending", summary.inner_text()).group(1).replace(",", ""))
    assert held > 0
    assert page.evaluate("window.__pwned") is None
    shot(page, "21_quality_tab")

    # every tier is accepted now: replaying brings the held rows back into bronze
    (ui_project / "workflows" / "crm_quality.yml").write_text(
        WORKFLOW.replace("values: [bronze, silver]", "values: [bronze, silver, gold, platinum]"))
    page.click("[data-testid=replay]")
    page.get_by_text(re.compile(f"Replayed {held} row\\(s\\); 0 still failing")).wait_for()
    page.locator("[data-testid=quarantine-summary]").get_by_text(
        re.compile(f"0 pending, {held} replayed")).wait_for()
    shot(page, "22_quality_replayed")
