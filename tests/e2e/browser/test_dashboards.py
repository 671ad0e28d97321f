"""The e-commerce dashboard in headless Chromium: from the navigation to six drawn charts, with a
customer segment named like an HTML injection that must stay text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.browser.conftest import (
    ADMIN_PASSWORD,
    require_browser,
    serving,
    shot,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EVIL = '<img src=x onerror="window.__pwned = 1">'


def _accept_segment(workflow: Path, segment: str) -> None:
    """The business adds a (hostile) segment to the accepted ones, as a user would after the check flags it."""
    spec = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    checks = [test["accepted_values"] for job in spec["jobs"] for table in job.get("tables", [])
              for test in table.get("tests", []) if isinstance(test, dict) and "accepted_values" in test
              and test["accepted_values"].get("column") == "segment"]
    assert checks, "the template checks customer segments"
    for check in checks:
        check["values"].append(segment)
    workflow.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    from flowforge.core.context import Context
    from flowforge.demo.ecommerce_project import WORKFLOW, setup_ecommerce_project

    project = tmp_path_factory.mktemp("shop_ui") / "shop"
    made = setup_ecommerce_project(project, scale=0.01, seed=8)
    _accept_segment(made.workflow, EVIL)
    with sqlite3.connect(project / "data" / "shop.db") as db:
        db.execute("UPDATE customers SET segment = ? WHERE customer_id <= 3", (EVIL,))
    with Context.open(project) as ctx:
        assert ctx.run(WORKFLOW).status == "success"
    with serving(project) as base:
        yield base


@pytest.fixture(scope="module")
def page(browser: Any, shop_server: str) -> Iterator[Any]:
    """Signed in with the session's one Chromium (Playwright's sync API allows one per process)."""
    signed_in = sign_in(browser, shop_server, "admin", ADMIN_PASSWORD)
    dialogs: list[str] = []
    signed_in.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    signed_in.dialogs = dialogs
    yield signed_in
    signed_in.context.close()


def test_the_dashboard_opens_from_the_navigation_and_draws_every_chart(page: Any, shop_server: str) -> None:
    page.get_by_role("link", name="Dashboards").click()
    page.wait_for_url("**/ui/dashboards")
    card = page.locator("[data-testid=dashboard-ecommerce_analytics-sales]")
    card.wait_for()
    card.get_by_role("link", name="E-commerce sales").click()
    page.wait_for_url("**/ui/dashboards/ecommerce_analytics/sales")
    for chart in ("revenue_by_month", "orders_by_status", "customers_by_segment", "revenue_by_segment",
                  "top_products", "payment_success"):
        page.locator(f"[data-testid=echart-{chart}] canvas").first.wait_for()
    assert page.locator("[data-testid^=chart-error-]").count() == 0
    page.get_by_text("Revenue by month and channel (million VND)").wait_for()
    pie = page.locator("[data-testid=echart-customers_by_segment] canvas").first
    box = pie.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2)  # a tooltip, drawn as text
    page.wait_for_timeout(300)
    shot(page, "20_ecommerce_dashboard")
    # the hostile segment name is data: no element was made from it, no script ran
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []


def test_an_unknown_dashboard_says_so(page: Any, shop_server: str) -> None:
    page.goto(shop_server + "/ui/dashboards/ecommerce_analytics/nothing")
    error = page.locator("[data-testid=dashboard-error]")
    error.wait_for()
    assert "No dashboard ecommerce_analytics/nothing" in error.inner_text()
