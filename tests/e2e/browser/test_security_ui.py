"""Attacks that need a real browser: a stored XSS payload in a table name must not run in the
admin's lineage page (ECharts renders tooltips as HTML), and a disabled user's open page can do
nothing and soon leaves for the sign-in page."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.browser.conftest import ADMIN_PASSWORD, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOAD = ("<img src=x onerror=\"window.__xss=1;fetch('/api/v1/users',{method:'POST',headers:{'content-type':"
           "'application/json'},body:JSON.stringify({username:'mallory',password:'mallory-pass-1',role:'admin'})})\">")


def _api(server: str, username: str, password: str) -> httpx.Client:
    from tests.security.conftest import Client

    client = Client(base_url=f"{server}/api/v1", headers={"Origin": server}, timeout=30)
    answer = client.post("/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return client


def test_a_stored_xss_payload_in_a_table_name_does_not_run(browser: Any, server: str) -> None:
    with _api(server, "admin", ADMIN_PASSWORD) as admin:
        admin.post("/users", json={"username": "eve", "password": "eve-password-1", "role": "editor"})
    spec = {"name": "xss_lineage", "jobs": [{"name": "land", "kind": "ingest", "connection": "core_banking",
                                             "tables": [{"table": PAYLOAD, "target": "bronze_xss"}]}]}
    with _api(server, "eve", "eve-password-1") as eve:
        assert eve.post("/workflows", json={"spec": spec}).status_code == 201

    page = sign_in(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(server + "/ui/workflows/xss_lineage/lineage")
    page.locator("[data-testid=lineage-chart] canvas").first.wait_for()
    # show the tooltip of every node, as hovering would (ECharts renders it as HTML)
    shown = page.evaluate("""() => {
        const el = document.querySelector('[data-testid=lineage-chart]');
        const chart = getElement(el).chart;  // NiceGUI's echart component keeps its ECharts instance
        const n = chart.getOption().series[0].data.length;
        for (let i = 0; i < n; i++) chart.dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: i});
        return n;
    }""")
    assert shown >= 2
    page.wait_for_timeout(1000)
    page.get_by_text("Lineage JSON").click()  # the raw JSON holds the payload too
    page.wait_for_timeout(500)
    shot(page, "security_xss_lineage")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    with _api(server, "admin", ADMIN_PASSWORD) as admin:
        assert "mallory" not in {u["username"] for u in admin.get("/users").json()}
    page.context.close()


def test_a_disabled_users_open_page_can_no_longer_act(browser: Any, server: str) -> None:
    with _api(server, "admin", ADMIN_PASSWORD) as admin:
        admin.post("/users", json={"username": "otto", "password": "otto-password-1", "role": "editor"})
        runs_before = len(admin.get("/runs", params={"limit": 1000}).json())
        workflows = admin.get("/workflows").json()["data"]
    name = workflows[0]["name"]
    page = sign_in(browser, server, "otto", "otto-password-1")
    page.locator(f"[data-testid=run-{name}]").wait_for()
    with _api(server, "admin", ADMIN_PASSWORD) as admin:
        assert admin.patch("/users/otto", json={"disabled": True}).status_code == 200
    page.click(f"[data-testid=run-{name}]")
    page.get_by_text("Your session has ended").wait_for()
    shot(page, "security_disabled_user")
    page.wait_for_url("**/ui/login**", timeout=30_000)  # the page leaves on its own
    with _api(server, "admin", ADMIN_PASSWORD) as admin:
        runs = admin.get("/runs", params={"limit": 1000}).json()
        assert len(runs) == runs_before, json.dumps(runs[:2], default=str)
    page.context.close()


def test_signing_out_ends_the_session_everywhere(browser: Any, server: str) -> None:
    first = sign_in(browser, server, "admin", ADMIN_PASSWORD)
    cookie = next(c["value"] for c in first.context.cookies() if c["name"] == "flowforge_session")
    first.click("[data-testid=sign-out]")
    first.wait_for_url("**/ui/login**")
    replay = httpx.get(f"{server}/api/v1/auth/me", cookies={"flowforge_session": cookie})
    assert replay.status_code == 401
    first.context.close()
