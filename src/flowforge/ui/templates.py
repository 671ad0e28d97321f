"""Template gallery: cards filtered by industry and category, a preview (jobs and data-flow
diagram) and a customize-and-create wizard."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.templates.registry import Template
from flowforge.ui import services
from flowforge.ui.layout import current_user, frame, go, login_redirect, notify_error, table
from flowforge.ui.lineage import chart_options


def preview(tpl: Template) -> None:
    data = services.template_preview(tpl.name)
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


def wizard(user: services.UiUser, tpl: Template) -> None:
    """Steps: name and ownership, connections, review and create."""
    values = tpl.defaults()
    connections = [c.name for c in services.connection_summaries(user)]
    with ui.dialog() as dialog, ui.card().classes("w-[720px] max-w-full"):
        ui.label(f"Create a workflow from {tpl.title}").classes("text-xl font-semibold")
        with ui.stepper().props("vertical").classes("w-full") as stepper:
            with ui.step("Name"):
                for key in ("workflow_name", "team", "environment"):
                    if key in tpl.parameters:
                        ui.input(str(tpl.parameters[key].get("description", key)), value=values[key]).bind_value(
                            values, key).props(f"data-testid=param-{key}").classes("w-96")
                with ui.stepper_navigation():
                    ui.button("Next", on_click=stepper.next).props("data-testid=wizard-next-1")
            with ui.step("Sources"):
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
                with ui.stepper_navigation():
                    ui.button("Next", on_click=stepper.next).props("data-testid=wizard-next-2")
                    ui.button("Back", on_click=stepper.previous).props("flat")
            with ui.step("Create"):
                ui.label().bind_text_from(values, "workflow_name", lambda n: f"Creates workflows/{n}.yml")

                def create() -> None:
                    try:
                        name = services.create_from_template(user, tpl.name, dict(values))
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
    @ui.page("/templates")
    def templates_page(request: Request) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Template gallery", user):
            everything = services.templates()
            filters = {"industry": "", "category": ""}
            with ui.row().classes("gap-4"):
                ui.select(["", *sorted({t.industry for t in everything})], label="Industry", value="",
                          on_change=lambda e: (filters.update(industry=e.value or ""), cards.refresh())).classes(
                    "w-48").props("data-testid=filter-industry")
                ui.select(["", *sorted({t.category for t in everything})], label="Category", value="",
                          on_change=lambda e: (filters.update(category=e.value or ""), cards.refresh())).classes(
                    "w-48").props("data-testid=filter-category")

            @ui.refreshable
            def cards() -> None:
                found = services.templates(filters["industry"], filters["category"])
                if not found:
                    ui.label("No template matches these filters.").classes("text-gray-600")
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

            cards()
        return None
