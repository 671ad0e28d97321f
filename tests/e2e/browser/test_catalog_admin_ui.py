"""The catalog as people read it: SQL type names and locations under the lakehouse root; a search
across tables, columns, descriptions and comments; an editor writes a table's description and a
column's comment, a viewer reads them and cannot change them; hostile text renders as text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.admin_helpers import PASSWORDS, XSS, api, ensure_lake, ensure_users, field, no_script_ran
from tests.e2e.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_list_shows_sql_types_and_relative_locations(admin_page: Any, server: str) -> None:
    ensure_lake(server)
    page = admin_page
    page.goto(server + "/ui/catalog")
    page.get_by_role("tab", name="gold").click()
    gold = page.locator("[data-testid=catalog-gold]")
    gold.get_by_text("gold_customer_360", exact=True).wait_for()
    assert "gold/gold_customer_360" in gold.inner_text()
    assert "/tmp/" not in page.content() and "arro3" not in page.content()
    shot(page, "catalog_list")
    gold.get_by_text("gold_customer_360", exact=True).click()
    page.wait_for_url("**/ui/catalog/gold_customer_360")
    summary = page.locator("[data-testid=table-summary]")
    summary.wait_for()
    assert summary.inner_text().endswith("gold/gold_customer_360")
    assert "DECIMAL(" in page.locator("[data-testid=schema-table]").inner_text()
    assert "/tmp/" not in summary.inner_text()


def test_an_editor_describes_a_table_and_comments_a_column_and_search_finds_it(browser: Any, server: str) -> None:
    ensure_lake(server)
    ensure_users(server)
    page = sign_in(browser, server, "ed_editor", PASSWORDS["ed_editor"])
    page.goto(server + "/ui/catalog/silver_accounts")
    field(page, "description-input").fill("One row per account, current state.\n" + XSS)
    page.click("[data-testid=save-description]")
    page.get_by_text("Description saved.").wait_for()
    field(page, "comment-balance").fill("Ledger balance in the account currency " + XSS)
    page.click("[data-testid=save-comments]")
    page.get_by_text("Saved 1 comment.").wait_for()
    page.reload()
    assert field(page, "comment-balance").input_value().startswith("Ledger balance")
    no_script_ran(page)
    shot(page, "catalog_edit_description")
    page.context.close()

    page = sign_in(browser, server, "vic_viewer", PASSWORDS["vic_viewer"])
    page.goto(server + "/ui/catalog/silver_accounts")
    description = page.locator("[data-testid=table-description]")
    description.wait_for()
    assert "One row per account" in description.inner_text() and "onerror" in description.inner_text()
    assert "Ledger balance" in page.locator("[data-testid=schema-table]").inner_text()
    assert page.locator("[data-testid=description-input], [data-testid=save-comments]").count() == 0
    page.wait_for_timeout(500)
    no_script_ran(page)
    shot(page, "catalog_viewer_reads_description")

    page.goto(server + "/ui/catalog")
    field(page, "catalog-search").fill("ledger")
    page.click("[data-testid=catalog-search-go]")
    hits = page.locator("[data-testid=catalog-hits]")
    hits.wait_for()
    assert "silver_accounts" in hits.inner_text() and "balance" in hits.inner_text()
    field(page, "catalog-search").fill("customer_id")
    page.click("[data-testid=catalog-search-go]")
    page.wait_for_function("() => document.querySelector('[data-testid=catalog-hits]')?.innerText.includes('BIGINT')")
    page.wait_for_timeout(300)
    no_script_ran(page)
    shot(page, "catalog_search")
    page.context.close()
    with api(server) as admin:
        assert "mallory" not in {u["username"] for u in admin.get("/users").json()}


def test_a_viewer_cannot_change_a_description_through_the_api(server: str) -> None:
    ensure_lake(server)
    ensure_users(server)
    with api(server, "vic_viewer", PASSWORDS["vic_viewer"]) as viewer:
        answer = viewer.put("/catalog/tables/silver_accounts/docs", json={"description": "defaced"})
        assert answer.status_code == 403
        assert viewer.get("/catalog/tables/silver_accounts/docs").json()["description"] != "defaced"
