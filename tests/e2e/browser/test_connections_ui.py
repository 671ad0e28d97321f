"""The Connections page: every connection with where it points and the jobs that use it; an
editor creates a database and a files connection, tests, edits and deletes them; a stored secret
never reaches the browser, and a hostile database name renders as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser.admin_helpers import (
    PASSWORDS,
    WORKFLOW,
    XSS,
    api,
    ensure_lake,
    ensure_users,
    field,
    no_script_ran,
)
from tests.e2e.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECRET = "Ui-conn-Secret-never-shown-42"


def pick(page: Any, testid: str, option: str) -> None:
    page.locator(f"[data-testid={testid}]").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_the_list_shows_where_each_connection_points_and_who_uses_it(admin_page: Any, server: str) -> None:
    ensure_lake(server)
    page = admin_page
    page.goto(server + "/ui/connections")
    card = page.locator("[data-testid=connection-core_banking]")
    card.wait_for()
    usage = page.locator("[data-testid=usage-core_banking]")
    assert "Used by" in usage.inner_text() and f"{WORKFLOW} · ingest_core_banking" in usage.inner_text()
    assert "flowforge.yml" in card.inner_text()
    shot(page, "connections_list")


def test_an_editor_creates_tests_and_deletes_a_database_connection(browser: Any, server: str) -> None:
    ensure_users(server)
    page = sign_in(browser, server, "ed_editor", PASSWORDS["ed_editor"])
    page.goto(server + "/ui/connections")
    page.click("[data-testid=new-connection]")
    field(page, "edit-conn-name").fill("ui_sqlite")
    pick(page, "edit-conn-kind", "SQLite file")
    field(page, "edit-conn-sqlite-path").fill("data/bfsi.db")
    page.click("[data-testid=editor-test]")
    page.locator("[data-testid=editor-result]").get_by_text("✔ Connected").wait_for()
    shot(page, "connections_create_sqlite")
    page.click("[data-testid=editor-save]")
    page.locator("[data-testid=connection-ui_sqlite]").wait_for()
    assert "bfsi.db" in page.locator("[data-testid=where-ui_sqlite]").inner_text()
    page.click("[data-testid=test-ui_sqlite]")
    page.get_by_text("ui_sqlite: Connected").wait_for()
    page.click("[data-testid=delete-ui_sqlite]")
    page.click("[data-testid=confirm-delete]")
    page.locator("[data-testid=connection-ui_sqlite]").wait_for(state="detached")
    with api(server) as admin:
        assert admin.get("/connections/ui_sqlite").status_code == 404
    page.context.close()


def test_an_editor_creates_and_edits_a_files_connection(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/connections")
    page.click("[data-testid=new-connection]")
    field(page, "edit-conn-name").fill("ui_files")
    pick(page, "edit-conn-kind", "Files (CSV, JSON, Parquet; folder or s3://)")
    field(page, "edit-conn-path").fill("data/crm")
    page.click("[data-testid=editor-test]")
    page.locator("[data-testid=editor-result]").get_by_text("✔ Connected").wait_for()
    shot(page, "connections_create_files")
    page.click("[data-testid=editor-save]")
    where = page.locator("[data-testid=where-ui_files]")
    where.wait_for()
    assert "csv files in" in where.inner_text()
    page.click("[data-testid=edit-ui_files]")
    pick(page, "edit-conn-format", "json")
    page.click("[data-testid=editor-save]")
    page.get_by_text("Saved 'ui_files'").wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=where-ui_files]')?.innerText.includes('json')")
    with api(server) as admin:
        assert admin.get("/connections/ui_files").json()["kind"] == "files"


def test_a_stored_password_never_reaches_the_page_and_an_empty_one_keeps_it(admin_page: Any, server: str,
                                                                              ui_project: Path) -> None:
    from flowforge.core.context import Context
    from flowforge.settings import Settings

    with api(server) as admin:
        made = admin.post("/connections", json={"name": "ui_pg", "type": "postgres", "password": SECRET, "options": {
            "host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "postgres"}})
        assert made.status_code == 201, made.text
    page = admin_page
    page.goto(server + "/ui/connections")
    page.click("[data-testid=edit-ui_pg]")
    password = field(page, "edit-conn-password")
    password.wait_for()
    assert password.input_value() == ""
    page.get_by_text("leave empty to keep").first.wait_for()
    assert SECRET not in page.content()
    page.click("[data-testid=editor-test]")  # tested with the stored password
    page.locator("[data-testid=editor-result]").get_by_text("✔ Connected").wait_for()
    field(page, "edit-conn-user").fill("postgres")
    shot(page, "connections_edit_secret_kept")
    page.click("[data-testid=editor-save]")
    page.get_by_text("Saved 'ui_pg'").wait_for()
    assert SECRET not in page.content()
    with Context(Settings.load(ui_project)) as ctx:
        stored = ctx.connections.stored("ui_pg")
        assert stored is not None and stored.password.get_secret_value() == SECRET  # type: ignore[attr-defined]
    # the address changes, the password is not typed again: refused, the stored one is not sent there
    page.click("[data-testid=edit-ui_pg]")
    field(page, "edit-conn-host").fill("attacker.example")
    page.click("[data-testid=editor-save]")
    page.get_by_text("type its password again").wait_for()


def test_a_hostile_connection_address_renders_as_text(admin_page: Any, server: str) -> None:
    with api(server) as admin:
        assert admin.post("/connections", json={"name": XSS, "type": "sqlite", "options": {
            "path": "data/bfsi.db"}}).status_code == 400  # names are identifiers
        made = admin.post("/connections", json={"name": "ui_hostile", "type": "postgres", "options": {
            "host": "127.0.0.1", "database": XSS, "user": "postgres"}})
        assert made.status_code == 201, made.text
    page = admin_page
    page.goto(server + "/ui/connections")
    where = page.locator("[data-testid=where-ui_hostile]")
    where.wait_for()
    page.wait_for_timeout(500)
    assert "onerror" in where.inner_text()  # shown as the text it is
    no_script_ran(page)
    with api(server) as admin:
        assert "mallory" not in {u["username"] for u in admin.get("/users").json()}
        admin.delete("/connections/ui_hostile")


def test_a_viewer_sees_connections_but_cannot_change_them(browser: Any, server: str) -> None:
    ensure_users(server)
    page = sign_in(browser, server, "vic_viewer", PASSWORDS["vic_viewer"])
    page.goto(server + "/ui/connections")
    page.locator("[data-testid=connection-core_banking]").wait_for()
    assert page.locator("[data-testid=new-connection]").count() == 0
    assert page.locator("[data-testid^=edit-], [data-testid^=delete-], [data-testid^=test-]").count() == 0
    shot(page, "connections_viewer")
    page.context.close()
