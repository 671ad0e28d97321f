"""Template gallery: cards filtered by industry and category, a preview (jobs and data-flow
diagram) and a customize-and-create wizard."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.templates.registry import Template
from flowforge.ui import services, workflow_services
from flowforge.ui.layout import (
    error_message,
    frame,
    go,
    load,
    login_redirect,
    notify_error,
    page,
    page_user,
    plural,
    table,
)
from flowforge.ui.lineage import chart_options


async def preview(tpl: Template) -> None:
    try:
        data = await load(services.template_preview, tpl.name)
    except Exception as exc:
        notify_error(exc)
        return
    with ui.dialog().props("maximized=false") as dialog, ui.card().classes("w-[1100px] max-w-full"):
        ui.label(tpl.title).classes("text-xl font-semibold")
        ui.label(tpl.description).classes("text-gray-600")
        ui.label("Jobs").classes("font-medium")
        table([{"job": j["name"], "kind": j["kind"], "writes": ", ".join(j["outputs"]),
                "description": j["description"]} for j in data["jobs"]])
        ui.label("Data flow").classes("font-medium")
        ui.echart(chart_options(data["graph"])).classes("w-full h-[420px]").props("data-testid=template-flow")
        ui.button("Close", on_click=dialog.close).props("flat")
    dialog.open()


async def wizard(user: services.UiUser, tpl: Template) -> None:
    """Steps: name, ownership and tags; connections and table names; review (with a warning for tables
    another workflow already writes) and create."""
    values = tpl.defaults()
    extra: dict[str, str] = {"tags": ""}
    try:
        tables = {t: t for t in await load(workflow_services.template_tables, tpl.name)}
        connections = [c.name for c in await load(services.connection_summaries, user)]
    except Exception as exc:
        notify_error(exc)
        return

    def tags() -> list[str] | None:
        given = workflow_services.split_tags(extra["tags"])
        return given or None

    async def plan() -> Any:
        """What the workflow would write with the values as they are, or why it cannot be made."""
        try:
            return await load(workflow_services.template_plan, user, tpl.name, values, tags(), tables)
        except Exception as exc:
            return exc

    with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-full"):
        ui.label(f"Create a workflow from {tpl.title}").classes("text-xl font-semibold")
        with ui.stepper().props("vertical").classes("w-full") as stepper:
            with ui.step("Name"):
                for key in ("workflow_name", "team", "environment"):
                    if key in tpl.parameters:
                        ui.input(str(tpl.parameters[key].get("description", key)), value=values[key]).bind_value(
                            values, key).props(f"data-testid=param-{key}").classes("w-96")
                ui.input("Tags (comma-separated; empty keeps the template's)", placeholder="bfsi, pilot").bind_value(
                    extra, "tags").props("data-testid=param-tags").classes("w-96")
                with ui.stepper_navigation():
                    ui.button("Next", on_click=stepper.next).props("data-testid=wizard-next-1")
            with ui.step("Sources and tables"):
                for key, meta in tpl.parameters.items():
                    if key in ("workflow_name", "team", "environment"):
                        continue
                    label = str(meta.get("description", key))
                    if key.endswith("_connection") and connections:
                        ui.select(sorted({*connections, values[key]}), label=label, value=values[key]).bind_value(
                            values, key).props(f"data-testid=param-{key}").classes("w-96")
                    else:
                        ui.input(label, value=values[key]).bind_value(values, key).props(
                            f"data-testid=param-{key}").classes("w-96")
                ui.label("Tables this workflow writes (rename any of them)").classes("font-medium mt-2")
                with ui.grid(columns=2).classes("w-full gap-x-4 gap-y-0"):
                    for name in tables:
                        ui.input(value=name).bind_value(tables, name).props(
                            f"dense data-testid=table-{name}").classes("w-full")

                async def to_review() -> None:
                    review.refresh(await plan())
                    stepper.next()

                with ui.stepper_navigation():
                    ui.button("Next", on_click=to_review).props("data-testid=wizard-next-2")
                    ui.button("Back", on_click=stepper.previous).props("flat")
            with ui.step("Create"):
                @ui.refreshable
                def review(found: Any) -> None:
                    ui.label(f"Creates workflows/{values.get('workflow_name', '')}.yml").props(
                        "data-testid=wizard-file")
                    if isinstance(found, Exception):
                        ui.label(error_message(found)).classes("text-negative").props("data-testid=wizard-problem")
                        return
                    ui.label(f"It writes {plural(len(found.writes), 'table')}: {', '.join(found.writes)}").classes(
                        "text-sm text-gray-700 break-words")
                    if found.conflicts:
                        with ui.column().classes("gap-1 p-3 rounded bg-amber-50 border border-amber-300").props(
                                "data-testid=wizard-conflicts"):
                            ui.label(f"⚠ {plural(len(found.conflicts), 'table')} already written by another "
                                     "workflow. Two writers of one table overwrite each other's data; go back and "
                                     "rename them, or create it anyway.").classes("text-amber-900 font-medium")
                            for warning in found.warnings:
                                ui.label(warning).classes("text-sm text-amber-900")

                review(await plan())

                async def create() -> None:
                    try:
                        name = await load(workflow_services.create_from_template, user, tpl.name, values, tags(),
                                          tables)
                    except Exception as exc:
                        notify_error(exc)
                        return
                    ui.notify(f"Workflow '{name}' created.", type="positive")
                    dialog.close()
                    go(f"/workflows/{name}")

                with ui.stepper_navigation():
                    ui.button("Create workflow", icon="check", on_click=create).props("data-testid=wizard-create")
                    ui.button("Back", on_click=stepper.previous).props("flat")
    dialog.open()


def register() -> None:
    @page("/templates")
    async def templates_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Template gallery", user):
            try:
                everything = await load(services.templates)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            filters = {"industry": "", "category": ""}

            async def refilter(key: str, value: str | None) -> None:
                filters[key] = value or ""
                try:
                    found = await load(services.templates, filters["industry"], filters["category"])
                except Exception as exc:
                    notify_error(exc)
                    return
                cards.refresh(found)

            with ui.row().classes("gap-4"):
                ui.select(["", *sorted({t.industry for t in everything})], label="Industry", value="",
                          on_change=lambda e: refilter("industry", e.value)).classes(
                    "w-48").props("data-testid=filter-industry")
                ui.select(["", *sorted({t.category for t in everything})], label="Category", value="",
                          on_change=lambda e: refilter("category", e.value)).classes(
                    "w-48").props("data-testid=filter-category")

            @ui.refreshable
            def cards(found: list[Template]) -> None:
                if not found:
                    ui.label("No template matches these filters; clear the industry or category to see them "
                             "all.").classes("text-gray-600").props("data-testid=templates-none-match")
                with ui.row().classes("gap-4"):
                    for tpl in found:
                        with ui.card().classes("w-96").props(f"data-testid=template-{tpl.name}"):
                            ui.label(tpl.title).classes("text-lg font-semibold")
                            with ui.row().classes("gap-2"):
                                ui.badge(tpl.industry.upper(), color="primary")
                                ui.badge(tpl.category, color="secondary")
                            ui.label(tpl.description).classes("text-sm text-gray-700")
                            with ui.row():
                                ui.button("Preview", icon="visibility", on_click=lambda t=tpl: preview(t)).props(
                                    f"outline data-testid=preview-{tpl.name}")
                                if user.can_edit:
                                    ui.button("Use template", icon="rocket_launch",
                                              on_click=lambda t=tpl: wizard(user, t)).props(
                                        f"data-testid=use-{tpl.name}")

            cards(everything)
        return None
