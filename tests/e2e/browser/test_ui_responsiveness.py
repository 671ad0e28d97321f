"""One user's slow page does not hold up another user's. On PostgreSQL metadata another connection
holds the audit log locked (as a migration, a VACUUM FULL or a purge of old entries does), so the
admin's Audit log page waits on it; meanwhile a viewer opens the Connections page, clicks through to
the Catalog and reads both, and the admin's audit log appears as soon as the lock goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser.conftest import ADMIN_PASSWORD, demo_without_workflow, serving, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
VIEWER, VIEWER_PASSWORD = "bea", "bea-Viewer-Pass-01"


@pytest.fixture
def pg_server_url(tmp_path: Path, pg_database: str, browser: Any) -> Iterator[tuple[str, str]]:
    """``flowforge serve`` of the demo project with its metadata in a fresh PostgreSQL database (the
    scheduler off, so nothing but the pages under test reads the store); (base URL, database)."""
    from flowforge.core.context import Context
    from flowforge.settings import Settings

    project = demo_without_workflow(tmp_path)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FLOWFORGE_METADATA_URL", pg_database)
        env.setenv("FLOWFORGE_SCHEDULER__IN_SERVE", "false")
        with serving(project) as base:
            setup = Context(Settings.load(project).model_copy(update={"actor": "test-setup"}))
            try:
                setup.users.create_user(VIEWER, VIEWER_PASSWORD, "viewer")
            finally:
                setup.close()
            yield base, pg_database


def _wait_for_lock_waiter(conn: Any, timeout: float = 30.0) -> None:
    """Until a server connection waits on the lock this test holds: the admin's call is in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'").fetchone()[0]
        if waiting:
            return
        time.sleep(0.1)
    pytest.fail("the admin's Audit log page never reached the locked audit log")


def test_a_page_waiting_on_the_metadata_store_does_not_hold_up_another_users_page(
        browser: Any, pg_server_url: tuple[str, str]) -> None:
    import psycopg
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    base, database = pg_server_url
    admin = sign_in(browser, base, "admin", ADMIN_PASSWORD)
    viewer = sign_in(browser, base, VIEWER, VIEWER_PASSWORD)
    watcher = psycopg.connect(database, autocommit=True)
    holder = psycopg.connect(database)
    try:
        holder.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        admin.evaluate("setTimeout(() => window.location.assign('/ui/audit'), 0)")  # no waiting for it here
        _wait_for_lock_waiter(watcher)

        try:
            viewer.goto(base + "/ui/connections", timeout=20_000)
            card = viewer.locator("[data-testid=connection-core_banking]").inner_text(timeout=20_000)
            viewer.get_by_role("link", name="Catalog").click()
            empty = viewer.locator("[data-testid=catalog-empty]").inner_text(timeout=20_000)
        except PlaywrightTimeout:
            pytest.fail("the viewer's pages did not answer while the admin's Audit log page waited on the store")
        assert "core_banking" in card and "sqlite" in card
        assert "no tables yet" in empty

        # the admin's call was still waiting all along: the page says it is loading and shows no entries yet
        admin.locator("[data-testid=loading]").wait_for(timeout=20_000)
        assert admin.locator("[data-testid=audit-table]").count() == 0
        holder.rollback()
        entries = admin.locator("[data-testid=audit-table]").inner_text(timeout=30_000)
        assert f"user {VIEWER}" in entries
        assert admin.locator("[data-testid=loading]").count() == 0
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
        admin.context.close()
        viewer.context.close()
