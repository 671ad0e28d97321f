"""The search page in headless Chromium: pick the table, search, filter, read the provenance;
a product name holding HTML is shown as text, never run."""

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
from tests.embed_helpers import PRODUCTS, embed_project, product_table

pytestmark = pytest.mark.browser
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> Evil boots"


@pytest.fixture(scope="module")
def search_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    from flowforge.core.context import Context

    project = embed_project(tmp_path_factory.mktemp("search_ui") / "project")
    with Context.open(project) as ctx:
        products = [*PRODUCTS, (41, HOSTILE, "Waterproof hiking boots with a script in the name", "outdoor")]
        ctx.store.overwrite("silver", "silver_products", product_table(products), {})
        assert ctx.run("search").status == "success"
    with serving(project) as base:
        yield base


@pytest.fixture(scope="module")
def page(browser: Any, search_server: str) -> Iterator[Any]:
    """Signed in with the session's one Chromium (Playwright's sync API allows one per process)."""
    page = sign_in(browser, search_server, "admin", ADMIN_PASSWORD)
    yield page
    page.context.close()


def test_search_page_ranks_filters_and_shows_provenance(page: Any, search_server: str) -> None:
    page.locator("header").get_by_text("Search", exact=True).click()  # in the navigation
    page.wait_for_url("**/search")
    shot(page, "search_page")
    page.locator("[data-testid=search-table]").wait_for()
    assert "silver_products" in page.locator("[data-testid=search-table]").inner_text()
    page.locator("[data-testid=search-query] input, input[data-testid=search-query]").first.fill(
        "waterproof boots for hiking")
    page.click("[data-testid=search-run]")
    hits = page.locator("[data-testid=search-hits]")
    try:
        hits.wait_for()
    except Exception:
        shot(page, "FAILED_search_page")
        raise
    first_row = hits.locator("tbody tr").first
    assert "Trailmaster waterproof hiking boots" in hits.inner_text() or HOSTILE in hits.inner_text()
    assert "no checks" in first_row.inner_text()
    assert "Lineage: silver_products → product_vectors" in page.locator("[data-testid=search-lineage]").inner_text()
    assert HOSTILE in hits.inner_text()  # the name is shown as text ...
    assert page.title() != "pwned" and page.locator("[data-testid=search-hits] img").count() == 0  # ... not run
    shot(page, "search_results")

    page.locator("[data-testid=search-where] input, input[data-testid=search-where]").first.fill(
        "category = 'kitchen'")
    page.click("[data-testid=search-run]")
    page.wait_for_function("document.querySelector('[data-testid=search-hits]') && "
                           "!document.querySelector('[data-testid=search-hits]').innerText.includes('Trailmaster')")
    text = page.locator("[data-testid=search-hits]").inner_text()
    kitchen = {name for _, name, _, cat in PRODUCTS if cat == "kitchen"}
    assert any(name in text for name in kitchen)

    page.locator("[data-testid=search-where] input, input[data-testid=search-where]").first.fill("1=1; DROP TABLE x")
    page.click("[data-testid=search-run]")
    error = page.locator("[data-testid=search-error]")
    error.wait_for()
    assert "one expression" in error.inner_text()
