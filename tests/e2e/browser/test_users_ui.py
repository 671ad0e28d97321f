"""The Users page (admins) and My account (everyone): create a user, change their role, disable
and enable them, reset their password, list and revoke their tokens; change my own password and
make my own token, shown once. A viewer or editor cannot reach the Users page, and the last admin
stays an admin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.browser.admin_helpers import PASSWORDS, api, ensure_users, field
from tests.e2e.browser.conftest import shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def can_sign_in(server: str, username: str, password: str) -> bool:
    answer = httpx.post(f"{server}/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)
    return answer.status_code == 200


def pick(page: Any, testid: str, option: str) -> None:
    page.locator(f"[data-testid={testid}]").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_an_admin_creates_a_user_changes_the_role_disables_and_resets_the_password(admin_page: Any,
                                                                                   server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/users")
    field(page, "new-username").fill("ui_carol")
    field(page, "new-password").fill("carol-first-pw")
    page.click("[data-testid=create-user]")
    card = page.locator("[data-testid=user-ui_carol]")
    card.wait_for()
    assert can_sign_in(server, "ui_carol", "carol-first-pw")

    pick(page, "role-ui_carol", "editor")
    page.get_by_text("'ui_carol' is now editor.").wait_for()
    with api(server) as admin:
        assert next(u for u in admin.get("/users").json() if u["username"] == "ui_carol")["role"] == "editor"

    page.click("[data-testid=disable-ui_carol]")
    page.locator("[data-testid=status-ui_carol]").get_by_text("disabled").wait_for()
    assert not can_sign_in(server, "ui_carol", "carol-first-pw")
    shot(page, "users_list")
    page.click("[data-testid=disable-ui_carol]")  # enable again
    page.locator("[data-testid=status-ui_carol]").get_by_text("active").wait_for()

    page.click("[data-testid=reset-ui_carol]")
    field(page, "reset-password").fill("carol-second-pw")
    shot(page, "users_reset_password")
    page.click("[data-testid=reset-save]")
    page.get_by_text("Password of 'ui_carol' reset.").wait_for()
    assert can_sign_in(server, "ui_carol", "carol-second-pw")
    assert not can_sign_in(server, "ui_carol", "carol-first-pw")


def test_an_admin_lists_and_revokes_a_users_tokens(admin_page: Any, server: str) -> None:
    ensure_users(server)
    with api(server, "vic_viewer", PASSWORDS["vic_viewer"]) as viewer:
        token = viewer.post("/auth/tokens", json={"name": "vic-ci"}).json()["token"]
        token_id = next(t["id"] for t in viewer.get("/auth/tokens").json() if t["name"] == "vic-ci")
    page = admin_page
    page.goto(server + "/ui/users")
    page.click("[data-testid=tokens-vic_viewer]")
    dialog = page.locator(".q-dialog")
    dialog.get_by_text("vic-ci").first.wait_for()
    assert token not in page.content()
    shot(page, "users_tokens")
    dialog.locator(f"[data-testid=revoke-{token_id}]").click()
    page.get_by_text("Token revoked.").wait_for()
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/api/v1/auth/me", headers=bearer, timeout=30).status_code == 401


def test_the_last_admin_cannot_demote_themselves(admin_page: Any, server: str) -> None:
    page = admin_page
    page.goto(server + "/ui/users")
    page.locator("[data-testid=user-admin]").wait_for()
    pick(page, "role-admin", "viewer")
    page.get_by_text("'admin' is the only enabled admin.").first.wait_for()
    page.locator("[data-testid=disable-admin]").click()
    page.get_by_text("'admin' is the only enabled admin.").first.wait_for()
    with api(server) as admin:
        me = next(u for u in admin.get("/users").json() if u["username"] == "admin")
        assert me["role"] == "admin" and not me["disabled"]


def test_my_account_changes_my_password_and_makes_a_token_shown_once(browser: Any, server: str) -> None:
    with api(server) as admin:
        admin.post("/users", json={"username": "ui_dora", "password": "dora-first-pw", "role": "viewer"})
    page = sign_in(browser, server, "ui_dora", "dora-first-pw")
    page.click("[data-testid=my-account]")
    page.wait_for_url("**/ui/account")
    field(page, "current-password").fill("not-my-password")
    field(page, "my-new-password").fill("dora-second-pw")
    field(page, "my-new-password-2").fill("dora-second-pw")
    page.click("[data-testid=change-password]")
    page.get_by_text("The current password is wrong.").wait_for()
    field(page, "current-password").fill("dora-first-pw")
    page.click("[data-testid=change-password]")
    page.get_by_text("Password changed").wait_for()
    assert can_sign_in(server, "ui_dora", "dora-second-pw")

    field(page, "token-name").fill("dora-laptop")
    page.click("[data-testid=create-token]")
    shown = field(page, "new-token")
    shown.wait_for()
    token = shown.input_value()
    assert token.startswith("ff_")
    shot(page, "account_token_shown_once")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/api/v1/auth/me", headers=bearer, timeout=30).json()["username"] == "ui_dora"
    page.click("[data-testid=token-done]")
    page.locator("[data-testid=new-token]").wait_for(state="detached")
    page.wait_for_timeout(500)
    assert token not in page.content()
    page.locator("[data-testid=token-table]").get_by_text("dora-laptop").wait_for()
    page.locator("[data-testid^=revoke-]").last.click()
    page.get_by_text("Token revoked.").wait_for()
    assert httpx.get(f"{server}/api/v1/auth/me", headers=bearer, timeout=30).status_code == 401
    shot(page, "account")
    page.context.close()


@pytest.mark.parametrize("who", ["vic_viewer", "ed_editor"])
def test_viewers_and_editors_cannot_reach_the_users_page(browser: Any, server: str, who: str) -> None:
    ensure_users(server)
    page = sign_in(browser, server, who, PASSWORDS[who])
    assert page.locator("header").get_by_text("Users", exact=True).count() == 0
    answer = page.goto(server + "/ui/users")
    assert answer is not None and answer.status == 403
    page.get_by_text("This page needs the admin role.").wait_for()
    shot(page, f"users_denied_{who}")
    with api(server, who, PASSWORDS[who]) as client:
        assert client.patch(f"/users/{who}", json={"role": "admin"}).status_code == 403
        assert client.get("/users").status_code == 403
        assert client.get("/auth/me").json()["role"] != "admin"
    page.context.close()
