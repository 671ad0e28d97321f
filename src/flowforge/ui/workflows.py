"""Workflows list: status, jobs, triggers and last run, with run, pause/resume, clone and delete."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import services
from flowforge.ui.layout import current_user, frame, go, login_redirect, notify_error, status_badge


async def start_run(name: str, user: services.UiUser) -> None:
    try:
        run_id = await run.io_bound(services.trigger_run, user, name)
    except Exception as exc:
        notify_error(exc)
        return
    go(f"/runs/{run_id}")


def confirm_delete(user: services.UiUser, name: str, after: Callable[[], object]) -> None:
    with ui.dialog() as dialog, ui.card():
        ui.label(f"Delete workflow '{name}'? Its jobs and schedule are removed; tables stay.")
        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")

            def do_delete() -> None:
                try:
                    services.delete_workflow(user, name)
                except Exception as exc:
                    notify_error(exc)
                else:
                    ui.notify(f"Deleted '{name}'.", type="positive")
                    after()
                dialog.close()

            ui.button("Delete", color="negative", on_click=do_delete).props("data-testid=confirm-delete")
    dialog.open()


def ask_clone(user: services.UiUser, name: str, after: Callable[[str], object]) -> None:
    with ui.dialog() as dialog, ui.card():
        new_name = ui.input("Name of the copy", value=f"{name}_copy")
        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")

            def do_clone() -> None:
                try:
                    services.clone_workflow(user, name, new_name.value)
                except Exception as exc:
                    notify_error(exc)
                else:
                    ui.notify(f"Cloned to '{new_name.value}'.", type="positive")
                    after(new_name.value)
                dialog.close()

            ui.button("Clone", on_click=do_clone)
    dialog.open()


def toggle_pause(user: services.UiUser, name: str, paused: bool, after: Callable[[], object]) -> None:
    try:
        services.set_paused(user, name, paused)
    except Exception as exc:
        notify_error(exc)
        return
    ui.notify(f"'{name}' {'paused' if paused else 'resumed'}.", type="positive")
    after()


def register() -> None:
    @ui.page("/workflows")
    def workflows_page(request: Request) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Workflows", user):
            if user.can_edit:
                with ui.row():
                    ui.button("New from template", icon="add",
                              on_click=lambda: go("/templates")).props("data-testid=new-workflow")
            listing()
        return None

    @ui.refreshable
    def listing() -> None:
        user = current_user(ui.context.client.request)
        if user is None:
            ui.navigate.to("/login")
            return
        rows = services.workflow_summaries(user)
        if not rows:
            ui.label("No workflows yet. Create one from a template.").classes("text-gray-600")
        with ui.column().classes("w-full gap-2"):
            for row in rows:
                last = row.last_run
                card = ui.card().classes("w-full").props(f"data-testid=workflow-{row.name}")
                with card, ui.row().classes("w-full items-center justify-between"):
                        with ui.column().classes("gap-0"):
                            ui.link(row.name, f"/workflows/{row.name}").classes("text-lg font-medium")
                            ui.label(row.error or row.description).classes("text-gray-600 text-sm")
                        with ui.row().classes("items-center gap-4 text-sm"):
                            ui.label(f"{row.jobs} jobs")
                            with ui.row().classes("gap-1").props(f"data-testid=triggers-{row.name}"):
                                for text in row.triggers or ("manual",):
                                    ui.badge(text, color="blue-grey").props("outline")
                            status_badge(row.status)
                            ui.label("last run:")
                            status_badge(last.status if last else "never run")
                            if last:
                                ui.link(f"#{last.id} {last.started_at:%Y-%m-%d %H:%M}", f"/runs/{last.id}")
                        if user is not None and user.can_edit:
                            actions(row.name, row.status, user)


    def actions(name: str, status: str, user: services.UiUser) -> None:
        with ui.row().classes("gap-1"):
            ui.button(icon="play_arrow", on_click=lambda: start_run(name, user)).props(
                f"flat round data-testid=run-{name}").tooltip("Run now")
            paused = status == "paused"
            ui.button(icon="play_circle" if paused else "pause",
                      on_click=lambda: toggle_pause(user, name, not paused, listing.refresh)).props(
                f"flat round data-testid=pause-{name}").tooltip("Resume" if paused else "Pause")
            ui.button(icon="content_copy", on_click=lambda: ask_clone(user, name, lambda _: listing.refresh())).props(
                f"flat round data-testid=clone-{name}").tooltip("Clone")
            ui.button(icon="delete", color="negative", on_click=lambda: confirm_delete(
                user, name, listing.refresh)).props(f"flat round data-testid=delete-{name}").tooltip("Delete")
