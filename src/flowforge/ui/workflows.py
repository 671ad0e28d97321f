"""Workflows list: search and filters, aligned cards (jobs, triggers, status, last run) with run,
pause/resume, clone and delete; a blank workflow or one from a template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import services, workflow_services
from flowforge.ui.layout import (
    current_user,
    empty_state,
    error_message,
    frame,
    go,
    load,
    login_redirect,
    notify_error,
    page,
    page_user,
    plural,
    settle,
    status_badge,
)


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

            async def do_delete() -> None:
                try:
                    await load(services.delete_workflow, user, name)
                except Exception as exc:
                    notify_error(exc)
                else:
                    ui.notify(f"Deleted '{name}'.", type="positive")
                    await settle(after())
                dialog.close()

            ui.button("Delete", color="negative", on_click=do_delete).props("data-testid=confirm-delete")
    dialog.open()


def ask_clone(user: services.UiUser, name: str, after: Callable[[str], object]) -> None:
    with ui.dialog() as dialog, ui.card():
        new_name = ui.input("Name of the copy", value=f"{name}_copy")
        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")

            async def do_clone() -> None:
                try:
                    await load(services.clone_workflow, user, name, new_name.value)
                except Exception as exc:
                    notify_error(exc)
                else:
                    ui.notify(f"Cloned to '{new_name.value}'.", type="positive")
                    await settle(after(new_name.value))
                dialog.close()

            ui.button("Clone", on_click=do_clone)
    dialog.open()


async def toggle_pause(user: services.UiUser, name: str, paused: bool, after: Callable[[], object]) -> None:
    try:
        await load(services.set_paused, user, name, paused)
    except Exception as exc:
        notify_error(exc)
        return
    ui.notify(f"'{name}' {'paused' if paused else 'resumed'}.", type="positive")
    await settle(after())


STATUSES = ["active", "paused", "invalid"]
# name and description | jobs | triggers | status | last run | actions: the same columns on every card
CARD_COLUMNS = "minmax(0, 1fr) 4.5rem 13rem 5.5rem 16rem 10.5rem"


def new_workflow_dialog(user: services.UiUser) -> None:
    """A blank workflow: name, description, team, environment and tags; jobs are added next."""
    values = {"name": "", "description": "", "team": "", "environment": "dev", "tags": ""}
    with ui.dialog() as dialog, ui.card().classes("w-[560px] max-w-full"):
        ui.label("New blank workflow").classes("text-xl font-semibold")
        details_fields(values)

        async def create() -> None:
            try:
                name = await load(workflow_services.create_blank, user, values["name"].strip(),
                                  values["description"], values["team"], values["environment"],
                                  workflow_services.split_tags(values["tags"]))
            except Exception as exc:
                notify_error(exc)
                return
            dialog.close()
            ui.notify(f"Workflow '{name}' created; add its first job.", type="positive")
            go(f"/workflows/{name}")

        with ui.row():
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Create workflow", icon="check", on_click=create).props("data-testid=create-blank")
    dialog.open()


def details_fields(values: dict[str, str]) -> None:
    ui.input("Name", placeholder="daily_orders").bind_value(values, "name").classes("w-full").props(
        "data-testid=wf-name")
    ui.input("Description", placeholder="What this workflow makes, for whom").bind_value(
        values, "description").classes("w-full").props("data-testid=wf-description")
    with ui.row().classes("w-full gap-4 no-wrap"):
        ui.input("Team", placeholder="analytics").bind_value(values, "team").classes("grow").props(
            "data-testid=wf-team")
        ui.input("Environment", placeholder="dev").bind_value(values, "environment").classes("grow").props(
            "data-testid=wf-environment")
    ui.input("Tags", placeholder="orders, daily (comma-separated)").bind_value(values, "tags").classes(
        "w-full").props("data-testid=wf-tags")


def register() -> None:
    @page("/workflows")
    async def workflows_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Workflows", user):
            try:
                facets = await load(workflow_services.workflow_facets, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            filters: dict[str, Any] = {"search": "", "team": None, "environment": None, "status": None, "tag": None}
            with ui.row().classes("w-full items-center gap-4"):
                if user.can_edit:
                    ui.button("New workflow", icon="add", on_click=lambda: new_workflow_dialog(user)).props(
                        "data-testid=new-blank-workflow")
                    ui.button("New from template", icon="dashboard_customize",
                              on_click=lambda: go("/templates")).props("outline data-testid=new-workflow")
                ui.space()
                ui.input("Search", placeholder="name or description", on_change=lambda: relist(filters)
                         ).bind_value(filters, "search").props("clearable debounce=300 data-testid=wf-search").classes(
                    "w-64")
                for key, label in (("team", "Team"), ("environment", "Environment"), ("tag", "Tag")):
                    ui.select(facets[key], label=label, clearable=True, on_change=lambda: relist(filters)
                              ).bind_value(filters, key).classes("w-40").props(f"data-testid=wf-filter-{key}")
                ui.select(STATUSES, label="Status", clearable=True, on_change=lambda: relist(filters)
                          ).bind_value(filters, "status").classes("w-36").props("data-testid=wf-filter-status")
            try:
                found = await load(workflow_services.workflow_page, user, **filters)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            listing(filters, user, found)
        return None

    async def relist(filters: dict[str, Any]) -> None:
        """The cards again for these filters; read first, so the old cards stay until the new ones come."""
        user = await load(current_user, ui.context.client.request)
        if user is None:
            ui.navigate.to("/login")
            return
        try:
            found = await load(workflow_services.workflow_page, user, **filters)
        except Exception as exc:
            notify_error(exc)
            return
        listing.refresh(filters, user, found)

    @ui.refreshable
    def listing(filters: dict[str, Any], user: services.UiUser, found: Any) -> None:
        rows = [*found.items, *found.invalid]
        if not rows:
            if any(filters.values()):
                with empty_state("No workflow matches this search and these filters. Clear them to see every "
                                 "workflow.", "workflows-none-match"):
                    ui.button("Clear search and filters", icon="filter_alt_off",
                              on_click=ui.navigate.reload).props("outline data-testid=clear-filters")
            else:
                with empty_state("No workflows yet. Start from a template (a complete pipeline to adapt), or "
                                 "create a blank workflow and add jobs to it." if user.can_edit else
                                 "No workflows yet. An editor creates them from a template or from scratch.",
                                 "workflows-empty"), ui.row():
                    if user.can_edit:
                        ui.button("Browse templates", icon="dashboard_customize", on_click=lambda: go("/templates"))
                        ui.button("New blank workflow", icon="add", on_click=lambda: new_workflow_dialog(user)).props(
                            "outline")
            return
        ui.label(f"{plural(len(rows), 'workflow')}" + (" match" if any(filters.values()) else "")).classes(
            "text-sm text-gray-600").props("data-testid=workflow-count")
        with ui.column().classes("w-full gap-2"):
            for row in rows:
                card(row, user, lambda: relist(filters))

    def card(row: Any, user: services.UiUser, again: Callable[[], object]) -> None:
        last = row.last_run
        with ui.card().classes("w-full").props(f"data-testid=workflow-{row.name}"), ui.element("div").classes(
                "grid w-full items-center gap-x-4 text-sm").style(f"grid-template-columns: {CARD_COLUMNS}"):
            with ui.column().classes("gap-0 min-w-0"):
                ui.link(row.name, f"/workflows/{row.name}").classes("text-lg font-medium break-all")
                ui.label(row.error or row.description or "").classes("text-gray-600 text-sm break-words")
                if row.team or row.tags:
                    ui.label(" · ".join(filter(None, [row.team and f"team {row.team}", row.environment,
                                                      ", ".join(row.tags)]))).classes("text-xs text-gray-500")
            ui.label(plural(row.jobs, "job")).classes("text-right tabular-nums").props(f"data-testid=jobs-{row.name}")
            with ui.row().classes("gap-1").props(f"data-testid=triggers-{row.name}"):
                for text in row.triggers or ("manual",):
                    ui.badge(text, color="blue-grey").props("outline")
            with ui.element("div"):
                status_badge(row.status)
            with ui.row().classes("items-center gap-2 no-wrap"):
                ui.label("last run:").classes("text-gray-500")
                status_badge(last.status if last else "never run")
                if last:
                    ui.link(f"#{last.id} {last.started_at:%Y-%m-%d %H:%M}", f"/runs/{last.id}").classes(
                        "whitespace-nowrap")
            if user.can_edit:
                actions(row.name, row.status, user, again)
            else:
                ui.element("div")

    def actions(name: str, status: str, user: services.UiUser, again: Callable[[], object]) -> None:
        with ui.row().classes("gap-1 justify-end no-wrap"):
            ui.button(icon="play_arrow", on_click=lambda: start_run(name, user)).props(
                f"flat round data-testid=run-{name}").tooltip("Run now")
            paused = status == "paused"
            ui.button(icon="play_circle" if paused else "pause",
                      on_click=lambda: toggle_pause(user, name, not paused, again)).props(
                f"flat round data-testid=pause-{name}").tooltip("Resume" if paused else "Pause")
            ui.button(icon="content_copy", on_click=lambda: ask_clone(user, name, lambda _: again())).props(
                f"flat round data-testid=clone-{name}").tooltip("Clone")
            ui.button(icon="delete", color="negative", on_click=lambda: confirm_delete(
                user, name, again)).props(f"flat round data-testid=delete-{name}").tooltip("Delete")
