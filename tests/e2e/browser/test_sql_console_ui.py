"""The SQL console: the schema browser beside the editor, a query run into a results table, the
row limit, a CSV download, the user's own history, and the sandbox refusing files, ATTACH and
COPY ... TO exactly as the query API does."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.admin_helpers import PASSWORDS, ensure_lake, ensure_users, field
from tests.e2e.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def write_sql(page: Any, sql: str) -> None:
    editor = page.locator("[data-testid=sql-editor] .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    editor.fill(sql)


def run(page: Any) -> str:
    status = page.locator("[data-testid=sql-status]")
    page.click("[data-testid=run-sql]")
    page.wait_for_function("() => { const t = document.querySelector('[data-testid=sql-status]')?.innerText;"
                           " return t && t !== 'Running…'; }")
    return str(status.inner_text())


def test_a_query_runs_into_a_table_with_a_limit_a_csv_and_a_history(admin_page: Any, server: str) -> None:
    ensure_lake(server)
    page = admin_page
    page.goto(server + "/ui/sql")
    browser_panel = page.locator("[data-testid=schema-browser]")
    browser_panel.get_by_text("gold_customer_360").wait_for()
    accounts = page.locator("[data-testid=schema-silver_accounts]")
    accounts.get_by_text("silver_accounts").click()
    accounts.get_by_text("DECIMAL(", exact=False).first.wait_for()
    page.click("[data-testid=use-silver_accounts]")
    page.locator("[data-testid=sql-editor]").get_by_text("FROM silver_accounts").wait_for()

    write_sql(page, "SELECT customer_id, total_balance FROM gold_customer_360 ORDER BY customer_id")
    field(page, "row-limit").fill("5")
    status = run(page)
    assert status.startswith("5 rows") and "more rows exist" in status
    grid = page.locator("[data-testid=sql-result-table]")
    expect(grid.locator("tbody.q-virtual-scroll__content tr")).to_have_count(5)  # rows render after the status
    assert "total_balance · DECIMAL(" in grid.locator("thead").inner_text()
    shot(page, "sql_console_results")

    with page.expect_download() as download:
        page.click("[data-testid=download-csv]")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["customer_id", "total_balance"] and len(rows) == 6

    history = page.locator("[data-testid=history-entry]")
    assert "gold_customer_360" in history.first.inner_text() and "5 rows" in history.first.inner_text()
    write_sql(page, "SELECT 1")
    history.first.locator("button").click()  # back into the editor
    page.locator("[data-testid=sql-editor]").get_by_text("ORDER BY customer_id").wait_for()


@pytest.mark.parametrize(("sql", "refusal"), [
    ("SELECT * FROM read_text('/etc/passwd')", "read_text is not allowed"),
    ("ATTACH '/etc/passwd' AS p", "not ATTACH"),
    ("COPY (SELECT * FROM gold_customer_360) TO '/tmp/flowforge-ui-leak.csv'", "not COPY"),
])
def test_the_console_refuses_what_leaves_the_sandbox(browser: Any, server: str, sql: str, refusal: str) -> None:
    ensure_lake(server)
    ensure_users(server)
    page = sign_in(browser, server, "vic_viewer", PASSWORDS["vic_viewer"])
    page.goto(server + "/ui/sql")
    write_sql(page, sql)
    status = run(page)
    assert refusal in status, status
    assert page.locator("[data-testid=sql-result-table]").count() == 0
    assert "root:x:0:0" not in page.content()
    assert not Path("/tmp/flowforge-ui-leak.csv").exists()
    assert "failed" in page.locator("[data-testid=history-entry]").first.inner_text()
    shot(page, f"sql_console_refused_{sql.split()[0].lower()}")
    page.context.close()


def test_each_user_sees_only_their_own_history(browser: Any, server: str) -> None:
    ensure_lake(server)
    ensure_users(server)
    page = sign_in(browser, server, "ed_editor", PASSWORDS["ed_editor"])
    page.goto(server + "/ui/sql")
    write_sql(page, "SELECT 'editor-private' AS marker")
    page.keyboard.press("Control+Enter")  # runs it, as the Run button does
    page.locator("[data-testid=sql-status]").get_by_text("1 row").wait_for()
    page.context.close()
    page = sign_in(browser, server, "vic_viewer", PASSWORDS["vic_viewer"])
    page.goto(server + "/ui/sql")
    page.locator("[data-testid=sql-history-panel]").wait_for()
    page.wait_for_timeout(300)
    assert "editor-private" not in page.content()
    page.context.close()


def test_hostile_values_and_column_names_render_as_text(admin_page: Any, server: str) -> None:
    from tests.e2e.browser.admin_helpers import XSS, no_script_ran

    ensure_lake(server)
    page = admin_page
    page.goto(server + "/ui/sql")
    quoted = XSS.replace("'", "''")
    write_sql(page, f"SELECT '{quoted}' AS \"<img src=x onerror=window.__xss=3>\"")
    assert run(page).startswith("1 row")
    grid = page.locator("[data-testid=sql-result-table]")
    assert "onerror" in grid.locator("thead").inner_text()
    assert "onerror" in grid.locator("tbody.q-virtual-scroll__content").inner_text()
    page.wait_for_timeout(500)
    no_script_ran(page)
    assert "onerror" in page.locator("[data-testid=history-entry]").first.inner_text()
