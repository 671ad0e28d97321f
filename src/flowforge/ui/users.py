"""Users (admins): create users, change roles, disable and enable, reset passwords, list and revoke
tokens. My account (everyone): change my password, create and revoke my own API tokens (a new
token is shown once). The users service checks every action itself; the pages only ask it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from nicegui import run, ui

from flowforge.core.users import ROLES
from flowforge.ui import admin_services as admin
from flowforge.ui.layout import error_message, frame, load, login_redirect, notify_error, page, page_user, table
from flowforge.ui.services import UiUser

DENIED = ('<!doctype html><title>Not allowed · FlowForge</title>'
          '<p data-testid="access-denied">This page needs the admin role.</p>'
          '<p><a href="/ui/workflows">Back to FlowForge</a></p>')


def register() -> None:
    @page("/users")
    async def users_page(request: Request) -> RedirectResponse | HTMLResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        if not user.is_admin:  # the service refuses too; the page says so at once
            return HTMLResponse(DENIED, status_code=403)
        with frame("Users", user):
            create_form(user)
            try:
                people = await load(admin.users, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            user_list(user, people)
        return None

    @page("/account")
    async def account_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("My account", user):
            ui.label(f"Signed in as {user.name}, role {user.role}.").props("data-testid=account-summary")
            password_form(user)
            ui.label("API tokens").classes("text-lg font-medium")
            ui.label("A token acts as you on the API (Authorization: Bearer <token>). It is shown once, when "
                     "created; revoke one you no longer use.").classes("text-gray-600")
            await token_panel(user, user.name)
        return None

    # -- users (admin) ---------------------------------------------------------------------------
    def create_form(user: UiUser) -> None:
        v: dict[str, Any] = {"username": "", "password": "", "role": "viewer"}
        with ui.card().classes("w-full"):
            ui.label("New user").classes("text-lg font-medium")
            with ui.row().classes("gap-4 items-center"):
                ui.input("User name").bind_value(v, "username").props("data-testid=new-username")
                ui.input("Initial password (8+ characters)", password=True).bind_value(v, "password").classes(
                    "w-72").props("data-testid=new-password autocomplete=new-password")
                ui.select(list(ROLES), label="Role").bind_value(v, "role").classes("w-32").props(
                    "data-testid=new-role")

                async def create() -> None:
                    try:
                        await run.io_bound(admin.create_user, user, str(v["username"]), str(v["password"]),
                                           str(v["role"]))
                    except Exception as exc:
                        notify_error(exc)
                        return
                    ui.notify(f"Created user '{v['username']}'.", type="positive")
                    v["username"] = v["password"] = ""
                    await relist(user)

                ui.button("Create user", icon="person_add", on_click=create).props("data-testid=create-user")

    async def relist(user: UiUser) -> None:
        """The users again, read first so the old list stays until the new one comes."""
        try:
            people = await load(admin.users, user)
        except Exception as exc:
            notify_error(exc)
            return
        user_list.refresh(user, people)

    @ui.refreshable
    def user_list(user: UiUser, people: list[Any]) -> None:
        with ui.column().classes("w-full gap-2").props("data-testid=user-list"):
            for person in people:
                with ui.card().classes("w-full").props(f"data-testid=user-{person.username}"), \
                        ui.row().classes("w-full items-center justify-between"):
                        with ui.row().classes("items-center gap-3"):
                            ui.label(person.username).classes("text-lg font-medium")
                            ui.badge("disabled" if person.disabled else "active",
                                     color="grey" if person.disabled else "positive").props(
                                f"data-testid=status-{person.username}")
                            ui.label(f"since {person.created_at:%Y-%m-%d}").classes("text-xs text-gray-500")
                        with ui.row().classes("items-center gap-2"):
                            ui.select(list(ROLES), value=person.role, label="Role",
                                      on_change=lambda e, n=person.username, old=person.role: change_role(
                                          user, n, str(e.value), old)).classes("w-32").props(
                                f"data-testid=role-{person.username}")
                            label = "Enable" if person.disabled else "Disable"
                            ui.button(label, icon="block" if not person.disabled else "check_circle",
                                      on_click=lambda n=person.username, d=not person.disabled: disable(user, n, d)
                                      ).props(f"outline dense data-testid=disable-{person.username}")
                            ui.button("Reset password", icon="key",
                                      on_click=lambda n=person.username: reset_dialog(user, n)).props(
                                f"outline dense data-testid=reset-{person.username}")
                            ui.button("Tokens", icon="vpn_key",
                                      on_click=lambda n=person.username: tokens_dialog(user, n)).props(
                                f"outline dense data-testid=tokens-{person.username}")

    async def change_role(user: UiUser, name: str, role: str, old: str) -> None:
        if role == old:
            return
        try:
            await run.io_bound(admin.set_role, user, name, role)
        except Exception as exc:
            notify_error(exc)
        else:
            ui.notify(f"'{name}' is now {role}.", type="positive")
        await relist(user)

    async def disable(user: UiUser, name: str, disabled: bool) -> None:
        try:
            await run.io_bound(admin.set_disabled, user, name, disabled)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"'{name}' {'disabled: their sessions ended' if disabled else 'enabled'}.", type="positive")
        await relist(user)

    def reset_dialog(user: UiUser, name: str) -> None:
        v = {"password": ""}
        with ui.dialog() as dialog, ui.card():
            ui.label(f"New password for {name}").classes("text-lg")
            ui.label("Their open sessions end; give them the new password yourself.").classes("text-gray-600")
            ui.input("New password (8+ characters)", password=True).bind_value(v, "password").classes("w-80").props(
                "data-testid=reset-password autocomplete=new-password")

            async def save() -> None:
                try:
                    await run.io_bound(admin.reset_password, user, name, v["password"])
                except Exception as exc:
                    notify_error(exc)
                    return
                v["password"] = ""
                dialog.close()
                ui.notify(f"Password of '{name}' reset.", type="positive")

            with ui.row():
                ui.button("Reset", on_click=save).props("data-testid=reset-save")
                ui.button("Cancel", on_click=dialog.close).props("flat")
        dialog.open()

    async def tokens_dialog(user: UiUser, name: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-none"):
            ui.label(f"API tokens of {name}").classes("text-lg")
            await token_panel(user, name, create=False)
            ui.button("Close", on_click=dialog.close).props("flat")
        dialog.open()

    # -- my account ---------------------------------------------------------------------------------
    def password_form(user: UiUser) -> None:
        v = {"current": "", "new": "", "repeat": ""}
        with ui.card().classes("w-full"):
            ui.label("Change my password").classes("text-lg font-medium")
            with ui.row().classes("gap-4 items-center"):
                ui.input("Current password", password=True).bind_value(v, "current").props(
                    "data-testid=current-password autocomplete=current-password")
                ui.input("New password (8+ characters)", password=True).bind_value(v, "new").classes("w-64").props(
                    "data-testid=my-new-password autocomplete=new-password")
                ui.input("New password again", password=True).bind_value(v, "repeat").props(
                    "data-testid=my-new-password-2 autocomplete=new-password")

                async def save() -> None:
                    if v["new"] != v["repeat"]:
                        ui.notify("The two new passwords differ.", type="negative")
                        return
                    try:
                        await run.io_bound(admin.change_my_password, user, v["current"], v["new"])
                    except Exception as exc:
                        notify_error(exc)
                        return
                    v["current"] = v["new"] = v["repeat"] = ""
                    ui.notify("Password changed; your other sessions ended.", type="positive")

                ui.button("Change password", icon="lock_reset", on_click=save).props("data-testid=change-password")


async def token_panel(user: UiUser, username: str, create: bool = True) -> None:
    """The tokens of ``username`` with revoke buttons; ``create`` adds the new-token form (own account)."""
    box = ui.column().classes("w-full gap-2")

    async def rows() -> None:
        try:
            found = await load(admin.tokens, user, username)
        except Exception as exc:
            notify_error(exc)
            return
        box.clear()
        with box:
            if not found:
                ui.label("No tokens.").classes("text-gray-500").props("data-testid=no-tokens")
            else:
                table([{"id": t.id, "name": t.name, "created": f"{t.created_at:%Y-%m-%d %H:%M}",
                        "last used": f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
                        "state": "revoked" if t.revoked else "active"} for t in found]).props("data-testid=token-table")
                with ui.row().classes("gap-1"):
                    for t in found:
                        if not t.revoked:
                            ui.button(f"Revoke {t.name} (#{t.id})", icon="delete", color="negative",
                                      on_click=lambda i=t.id: revoke(i)).props(f"flat dense data-testid=revoke-{t.id}")

    async def revoke(token_id: int) -> None:
        try:
            await run.io_bound(admin.revoke_token, user, username, token_id)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify("Token revoked.", type="positive")
        await rows()

    if create:
        v = {"name": "api"}
        with ui.row().classes("gap-4 items-center"):
            ui.input("Token name", placeholder="ci").bind_value(v, "name").props("data-testid=token-name")

            async def make() -> None:
                try:
                    token = await run.io_bound(admin.create_token, user, username, v["name"])
                except Exception as exc:
                    notify_error(exc)
                    return
                await rows()
                with ui.dialog() as shown, ui.card().classes("w-[640px] max-w-none"):
                    ui.label("Your new token: copy it now, it is not shown again.").classes("font-medium")
                    ui.input(value=token).props("readonly data-testid=new-token").classes("w-full font-mono")
                    ui.button("Done", on_click=shown.close).props("data-testid=token-done")
                shown.on("hide", shown.delete)  # the token leaves the page with the dialog
                shown.open()

            ui.button("Create token", icon="vpn_key", on_click=make).props("data-testid=create-token")
    await rows()
