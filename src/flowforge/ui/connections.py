"""Connections: every connection with where it points and the jobs that use it; editors create
(database or files), edit, test and delete stored ones. Secrets are write-only: the page never
receives one, and an edit with an empty secret keeps the stored value."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import admin_services as admin
from flowforge.ui.connection_form import ConnectionEditor
from flowforge.ui.layout import error_message, frame, load, login_redirect, notify_error, page, page_user
from flowforge.ui.services import UiUser


def register() -> None:
    @page("/connections")
    async def connections_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Connections", user):
            ui.label("Sources FlowForge reads from. Passwords and keys are stored encrypted and are never shown "
                     "again; to change one, type it anew.").classes("text-gray-600")
            if user.can_edit:
                ui.button("New connection", icon="add", on_click=lambda: open_editor(user, None)).props(
                    "data-testid=new-connection")
            try:
                found = await load(admin.connections, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            listing(user, found)
        return None

    async def relist(user: UiUser) -> None:
        """The list again, read first so the old one stays until the new one comes."""
        try:
            found = await load(admin.connections, user)
        except Exception as exc:
            notify_error(exc)
            return
        listing.refresh(user, found)

    @ui.refreshable
    def listing(user: UiUser, found: tuple[list[Any], dict[str, list[tuple[str, str]]]]) -> None:
        items, usage = found
        if not items:
            ui.label("No connections yet. Add one with 'New connection', or under 'connections:' in "
                     "flowforge.yml.").classes("text-gray-500").props("data-testid=connections-empty")
            return
        with ui.column().classes("w-full gap-2").props("data-testid=connections-list"):
            for item in items:
                used = usage.get(item.name, [])
                with ui.card().classes("w-full").props(f"data-testid=connection-{item.name}"):
                    with ui.row().classes("w-full items-center justify-between"):
                        with ui.row().classes("items-center gap-3"):
                            ui.label(item.name).classes("text-lg font-medium")
                            ui.badge(item.kind, color="blue-grey")
                            ui.label(item.where).classes("text-gray-700").props(f"data-testid=where-{item.name}")
                            ui.label("flowforge.yml" if item.source == "flowforge.yml" else "stored").classes(
                                "text-xs text-gray-500")
                        if user.can_edit:
                            actions(user, item.name, item.source == "store", used)
                    if used:
                        with ui.row().classes("gap-2 items-center").props(f"data-testid=usage-{item.name}"):
                            ui.label(f"Used by {len(used)} job{'s' if len(used) != 1 else ''}:").classes("text-sm")
                            for workflow, job in used:
                                ui.link(f"{workflow} · {job}", f"/workflows/{workflow}").classes("text-sm")
                    else:
                        ui.label("Not used by any workflow.").classes("text-sm text-gray-500").props(
                            f"data-testid=usage-{item.name}")

    def actions(user: UiUser, name: str, stored: bool, used: list[tuple[str, str]]) -> None:
        with ui.row().classes("gap-1"):
            ui.button("Test", icon="cable", on_click=lambda: test(user, name)).props(
                f"outline dense data-testid=test-{name}")
            if stored:
                ui.button("Edit", icon="edit", on_click=lambda: open_editor(user, name)).props(
                    f"outline dense data-testid=edit-{name}")
                ui.button("Delete", icon="delete", color="negative",
                          on_click=lambda: confirm_delete(user, name, used)).props(
                    f"flat dense data-testid=delete-{name}")

    async def test(user: UiUser, name: str) -> None:
        try:
            message = await run.io_bound(admin.test_saved_connection, user, name)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"{name}: {message}", type="positive")

    def confirm_delete(user: UiUser, name: str, used: list[tuple[str, str]]) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(f"Delete connection '{name}'?").classes("text-lg")
            if used:
                ui.label(f"{len(used)} job(s) use it and will fail until it is defined again: "
                         + ", ".join(f"{w}.{j}" for w, j in used)).classes("text-negative")

            async def go_on() -> None:
                try:
                    await load(admin.delete_connection, user, name)
                except Exception as exc:
                    notify_error(exc)
                    return
                dialog.close()
                ui.notify(f"Deleted '{name}'.", type="positive")
                await relist(user)

            with ui.row():
                ui.button("Delete", color="negative", on_click=go_on).props("data-testid=confirm-delete")
                ui.button("Cancel", on_click=dialog.close).props("flat")
        dialog.open()

    async def open_editor(user: UiUser, name: str | None) -> None:
        if name is None:
            editor = ConnectionEditor()
        else:
            try:
                kind, options, secrets_set = await load(admin.editable_connection, user, name)
            except Exception as exc:
                notify_error(exc)
                return
            editor = ConnectionEditor(name, kind, options, secrets_set)
        with ui.dialog() as dialog, ui.card().classes("w-[900px] max-w-none"):
            ui.label(f"Edit connection {name}" if name else "New connection").classes("text-lg font-medium")
            editor.render()
            result = ui.label().props("data-testid=editor-result")

            async def check() -> None:
                result.classes(remove="text-positive text-negative")
                result.text = "Testing…"
                try:
                    message = await run.io_bound(admin.test_new_connection, user, name or str(editor.values["name"]),
                                                 editor.data(), name is not None)
                except Exception as exc:
                    result.text = f"Connection failed: {_message(exc)}"
                    result.classes("text-negative")
                    return
                result.text = f"✔ {message}"
                result.classes("text-positive")

            async def save() -> None:
                try:
                    if name is None:
                        await run.io_bound(admin.create_connection, user, str(editor.values["name"]), editor.data())
                    else:
                        await run.io_bound(admin.update_connection, user, name, editor.data())
                except Exception as exc:
                    notify_error(exc)
                    return
                editor.values["password"] = editor.values["url"] = editor.values["aws_secret_access_key"] = ""
                dialog.close()
                ui.notify(f"Saved '{name or editor.values['name']}'.", type="positive")
                await relist(user)

            with ui.row().classes("gap-2"):
                ui.button("Test connection", icon="cable", on_click=check).props("outline data-testid=editor-test")
                ui.button("Save", icon="save", on_click=save).props("data-testid=editor-save")
                ui.button("Cancel", on_click=dialog.close).props("flat")
        dialog.open()


def _message(exc: BaseException) -> str:
    from flowforge.ui.layout import error_message

    return error_message(exc)
