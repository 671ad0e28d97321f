"""Set-up for the Connections, Users, SQL console and Catalog browser tests: an API client signed
in with a bearer token, users of each role, and a filled lakehouse (the BFSI template run once)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.e2e.browser.conftest import ADMIN_PASSWORD

WORKFLOW = "bfsi_admin_pages"
PASSWORDS = {"vic_viewer": "viewer-pass-0001", "ed_editor": "editor-pass-0002"}
# runs when rendered as HTML: sets a flag and tries to make its author an admin
XSS = ("<img src=x onerror=\"window.__xss=1;fetch('/api/v1/users',{method:'POST',headers:{'content-type':"
       "'application/json'},body:JSON.stringify({username:'mallory',password:'mallory-pass-1',role:'admin'})})\">"
       "<script>window.__xss=2</script>")
_done: set[str] = set()


def api(server: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    answer = httpx.post(f"{server}/api/v1/auth/login", json={"username": username, "password": password,
                                                             "issue_token": True}, timeout=30)
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server}/api/v1", timeout=60,
                        headers={"Authorization": f"Bearer {answer.json()['token']}"})


def ensure_users(server: str) -> None:
    if "users" in _done:
        return
    with api(server) as admin:
        for name, role in (("vic_viewer", "viewer"), ("ed_editor", "editor")):
            answer = admin.post("/users", json={"username": name, "password": PASSWORDS[name], "role": role})
            assert answer.status_code in (201, 409), answer.text
    _done.add("users")


def ensure_lake(server: str) -> None:
    """The BFSI workflow created from its template and run to success once per session."""
    if "lake" in _done:
        return
    with api(server) as admin:
        if not any(t["name"] == "gold_customer_360" for t in admin.get("/catalog/tables").json()):
            made = admin.post("/templates/bfsi_customer_360/instantiate",
                              json={"params": {"workflow_name": WORKFLOW}, "overwrite": True})
            assert made.status_code == 201, made.text
            run = admin.post("/runs", json={"workflow": WORKFLOW}).json()
            deadline = time.monotonic() + 300
            status = "queued"
            while status in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.5)
                status = admin.get(f"/runs/{run['id']}").json()["status"]
            assert status == "success", status
    _done.add("lake")


def field(page: Any, testid: str) -> Any:
    """A text field by its test id (Quasar puts the attribute on the native input)."""
    return page.locator(f"input[data-testid={testid}], [data-testid={testid}] input, "
                        f"textarea[data-testid={testid}], [data-testid={testid}] textarea").first


def no_script_ran(page: Any) -> None:
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
