"""Schedules and run control in the web UI: trigger badges, the schedule editor with cron help and
next fire times, the runs page's filters with rerun-from-failure and cancel, and the alerts page.
Each page is saved as a screenshot."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.browser.conftest import own_server, shot
from tests.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAME = "ui_sched"
HOOK_TOKEN = "T-ui-hook-token-never-shown"
BROKEN = f"""\
name: {NAME}
description: 'A <img src=x onerror="window.pwned=1"> description'
jobs:
  - {{name: base, kind: gold, tables: [{{target: gold_ui_base, sql: "SELECT 1 AS x"}}]}}
  - {{name: top, kind: gold, tables: [{{target: gold_ui_top, sql: "SELECT x, BROKEN_COL FROM gold_ui_base"}}]}}
triggers:  # the test server runs a scheduler: none of these fires while the tests run
  - {{every: 30d}}
  - {{files: crm_files, pattern: "<b>bold</b>*.csv", poll: 1d}}
"""


def field(page: Any, testid: str) -> Any:
    return page.locator(f"input[data-testid={testid}], [data-testid={testid}] input").first


def pick(page: Any, testid: str, option: str) -> None:
    page.locator(f"[data-testid={testid}]").click()
    page.get_by_role("option", name=option, exact=True).click()


# a project and server of this module's own: what other pages' tests leave behind cannot reach its saves
ui_project, server, admin_page = own_server("schedules")


@pytest.fixture(scope="module")
def workflow_file(ui_project: Path) -> Path:
    path = ui_project / "workflows" / f"{NAME}.yml"
    path.write_text(BROKEN, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/{HOOK_TOKEN}", received
    server.shutdown()


def test_trigger_badges_and_the_schedule_editor(admin_page: Any, server: str, workflow_file: Path) -> None:
    page = admin_page
    page.goto(server + "/ui/workflows")
    badges = page.locator(f"[data-testid=triggers-{NAME}]")
    badges.get_by_text("every 30d").wait_for()
    assert badges.locator("b").count() == 0 and "<b>bold</b>*.csv" in badges.inner_text()  # shown, not rendered
    assert page.evaluate("window.pwned") is None
    shot(page, "20_workflow_trigger_badges")

    page.goto(server + f"/ui/workflows/{NAME}")
    page.click("[data-testid=schedule-tab]")
    page.locator("[data-testid=next-fires-0]").get_by_text(re.compile(r" 00:00:00 UTC")).first.wait_for()
    assert page.locator("[data-testid=next-fires-0] >> text=/UTC$/").count() == 5
    page.get_by_text("Cron help").click()
    page.get_by_text("06:00 on weekdays").wait_for()
    page.click("[data-testid=remove-trigger-1]")
    page.click("[data-testid=add-cron]")
    cron = field(page, "cron-1")
    cron.fill("banana")
    cron.press("Tab")
    page.locator("[data-testid=next-fires-1]").get_by_text(re.compile("is not a cron expression")).wait_for()
    cron.fill("30 2 1 1 *")
    cron.press("Tab")
    pick(page, "timezone-1", "Europe/Berlin")
    page.locator("[data-testid=next-fires-1]").get_by_text(re.compile(r"-01-01 02:30 CET")).first.wait_for()
    shot(page, "21_schedule_editor")
    wanted = [{"every": "30d", "catchup": "latest"},
              {"cron": "30 2 1 1 *", "timezone": "Europe/Berlin", "catchup": "latest"}]
    # saving validates the workflow: slow under load, so the file is what is awaited (a toast lasts seconds
    # and can come and go between two looks); the toasts seen meanwhile say why, should it never come
    toasts: set[str] = set()

    def triggers_saved() -> Any:
        toasts.update(page.locator(".q-notification").all_inner_texts())
        return yaml.safe_load(workflow_file.read_text()).get("triggers")

    page.click("[data-testid=save-triggers]")  # once: the time zone field let go when a zone was picked
    saved = eventually(triggers_saved, lambda t: t == wanted, attempts=360, pause=0.5)
    assert saved == wanted, f"the file was not saved; the page said: {sorted(toasts)}"
    page.reload()
    page.locator("[data-testid=triggers]").get_by_text("cron 30 2 1 1 * (Europe/Berlin)").wait_for()


def test_runs_page_filters_and_rerun_from_failure(admin_page: Any, server: str, workflow_file: Path) -> None:
    page = admin_page
    page.goto(server + f"/ui/workflows/{NAME}")
    page.click("[data-testid=run-workflow]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-partial]").wait_for(timeout=120_000)
    page.locator("[data-testid=job-top]").click()
    page.locator("[data-testid=log-top]").get_by_text(re.compile("BROKEN_COL")).wait_for()
    workflow_file.write_text(workflow_file.read_text().replace(", BROKEN_COL", ""), encoding="utf-8")

    page.goto(server + "/ui/runs")
    pick(page, "filter-workflow", NAME)
    pick(page, "filter-status", "partial")
    rows = page.locator("[data-testid=runs-table] tbody tr")
    rows.first.get_by_text(NAME).wait_for()
    assert rows.count() == 1
    shot(page, "22_runs_filtered")
    rows.first.locator(".q-checkbox").click()
    page.click("[data-testid=rerun-failed]")
    page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
    page.locator("[data-testid=run-status] [data-testid=status-success]").wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"top — success")).wait_for()
    assert page.get_by_text(re.compile(r"base — ")).count() == 0  # only the failed job ran again
    page.get_by_text(re.compile(r"rerun of \d+")).wait_for()


def test_cancel_a_queued_run(admin_page: Any, server: str, ui_project: Path, workflow_file: Path) -> None:
    from flowforge.core.context import Context
    from flowforge.runner.leases import LeaseKeeper, workflow_lease

    page = admin_page
    with Context.open(ui_project) as ctx, LeaseKeeper(ctx.metadata, timeout=60) as keeper:
        assert keeper.try_acquire([workflow_lease(NAME)]).acquired  # as if another run were in progress
        page.goto(server + f"/ui/workflows/{NAME}")
        page.click("[data-testid=run-workflow]")
        page.wait_for_url(re.compile(r".*/ui/runs/\d+$"))
        page.locator("[data-testid=run-status] [data-testid=status-queued]").wait_for()
        page.get_by_text(re.compile("waiting for the running one")).wait_for()
        shot(page, "23_run_queued")
        page.click("[data-testid=cancel-run]")
        page.locator("[data-testid=run-status] [data-testid=status-cancelled]").wait_for(timeout=60_000)


def test_alerts_page_keeps_the_webhook_url_secret(admin_page: Any, server: str,
                                                  hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = hook
    page = admin_page
    page.goto(server + "/ui/alerts")
    field(page, "channel-name").fill("ui_slack")
    field(page, "channel-url").fill(url)
    page.click("[data-testid=save-channel]")
    channels = page.locator("[data-testid=alert-channels]")
    channels.get_by_text("slack webhook to http://127.0.0.1").wait_for()
    page.click("[data-testid=test-ui_slack]")
    page.get_by_text("Test alert to 'ui_slack': HTTP 200").wait_for()
    assert received and "test alert" in received[-1]["text"]
    shot(page, "24_alerts")
    assert HOOK_TOKEN not in page.content()
    page.reload()
    assert HOOK_TOKEN not in page.content()
