"""Column lineage in headless Chromium: the lineage page's column graph, a click on a column that
highlights its upstream and downstream columns, and the catalog's Lineage tab linking there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser.conftest import (
    ADMIN_PASSWORD,
    require_browser,
    serving,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lineage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    from flowforge.core.context import Context
    from flowforge.core.project import setup_demo_project

    project = tmp_path_factory.mktemp("column_ui") / "project"
    setup_demo_project(project, scale=0.02)
    with Context.open(project) as ctx:
        assert ctx.run("bfsi_customer_360").status == "success"
    with serving(project) as base:
        yield base


@pytest.fixture(scope="module")
def page(browser: Any, lineage_server: str) -> Iterator[Any]:
    """Signed in with the session's one Chromium (Playwright's sync API allows one per process)."""
    page = sign_in(browser, lineage_server, "admin", ADMIN_PASSWORD)
    yield page
    page.context.close()


def _click_column(page: Any, name: str) -> None:
    """Click the column's box on the chart's canvas, where ECharts drew it."""
    page.wait_for_timeout(800)  # the chart animates in
    page.evaluate("""(name) => {
        const el = document.querySelector('[data-testid=column-lineage-chart]');
        const chart = getElement(Number(el.id.slice(1))).chart;
        const data = chart.getModel().getSeriesByIndex(0).getData();
        const [x, y] = chart.convertToPixel({seriesIndex: 0}, data.getItemLayout(data.indexOfName(name)));
        window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY + y - 300);
    }""", name)
    point = page.evaluate("""(name) => {
        const el = document.querySelector('[data-testid=column-lineage-chart]');
        const chart = getElement(Number(el.id.slice(1))).chart;
        const data = chart.getModel().getSeriesByIndex(0).getData();
        const [x, y] = chart.convertToPixel({seriesIndex: 0}, data.getItemLayout(data.indexOfName(name)));
        const box = el.getBoundingClientRect();
        return [box.left + x, box.top + y];
    }""", name)
    page.mouse.click(point[0], point[1])


def test_clicking_a_column_highlights_where_it_comes_from_and_goes(page: Any, lineage_server: str) -> None:
    page.goto(lineage_server + "/ui/workflows/bfsi_customer_360/lineage")
    page.wait_for_selector("[data-testid=column-lineage-chart]")
    _click_column(page, "bronze_core_accounts::balance")
    page.wait_for_selector("[data-testid=column-selected]")
    assert page.inner_text("[data-testid=column-selected]") == "bronze_core_accounts.balance"
    up = page.inner_text("[data-testid=column-upstream]")
    down = page.inner_text("[data-testid=column-downstream]")
    assert "core_banking.accounts.balance" in up
    assert "silver_accounts.balance" in down and "gold_customer_360.total_balance" in down
    assert "AGGREGATION" in down
    shot(page, "column_lineage_click")


def test_the_catalog_links_a_column_to_its_lineage(page: Any, lineage_server: str) -> None:
    page.goto(lineage_server + "/ui/catalog/gold_customer_360")
    page.get_by_role("tab", name="Lineage").click()
    link = page.locator("[data-testid=column-link-total_balance]")
    link.wait_for()
    assert "silver_accounts.balance" in page.inner_text("body")
    shot(page, "catalog_lineage_tab")
    link.click()
    page.wait_for_url("**/ui/lineage/column**")
    page.wait_for_selector("[data-testid=column-selected]")
    assert page.inner_text("[data-testid=column-selected]") == "gold_customer_360.total_balance"
    up = page.inner_text("[data-testid=column-upstream]")
    assert "silver_accounts.balance" in up and "bronze_core_accounts.balance" in up
    assert "core_banking.accounts.balance" in up
    assert "nothing" in page.inner_text("body").split("Feeds (0)")[1][:40]
    shot(page, "column_lineage_from_catalog")
