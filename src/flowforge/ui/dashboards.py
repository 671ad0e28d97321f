"""Dashboards: the charts a template defines next to its gold tables (ECharts, as the lineage graph).

Every text on these pages (titles, descriptions, axis and slice names from the data, error
messages) is rendered as text: labels are Vue text bindings, and the chart options carry no
HTML and no JavaScript formatter (see ``flowforge.templates.dashboards.echarts_option``).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.templates.dashboards import ChartData, echarts_option
from flowforge.ui import services
from flowforge.ui.layout import error_message, frame, load, login_redirect, page, page_user


def chart_card(data: ChartData) -> None:
    chart = data.chart
    with ui.card().classes("w-full md:w-[48%] min-w-[420px]").props(f"data-testid=chart-{chart.id}"):
        ui.label(chart.title).classes("text-base font-medium")
        if data.error:
            ui.label(data.error).classes("text-negative text-sm").props(f"data-testid=chart-error-{chart.id}")
            return
        if not data.rows:
            ui.label("No rows yet.").classes("text-gray-600 text-sm")
            return
        ui.echart(echarts_option(data)).classes("w-full h-80").props(f"data-testid=echart-{chart.id}")
        if data.truncated:
            ui.label("Showing the first 1,000 rows.").classes("text-gray-600 text-xs")


def register() -> None:
    @page("/dashboards")
    async def dashboards_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Dashboards", user):
            try:
                found = await load(services.dashboards, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            ui.label("Charts defined by templates over their gold tables; they read this project's lakehouse.").classes(
                "text-gray-600")
            with ui.row().classes("gap-4"):
                for d in found:
                    with ui.card().classes("w-96").props(f"data-testid=dashboard-{d.template}-{d.name}"):
                        ui.link(d.title, f"/dashboards/{d.template}/{d.name}").classes("text-lg font-semibold")
                        ui.label(f"Template: {d.template} · {len(d.charts)} charts").classes("text-sm text-gray-600")
                        if d.description:
                            ui.label(d.description).classes("text-sm")
        return None

    @page("/dashboards/{template}/{name}")
    async def dashboard_page(request: Request, template: str, name: str) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Dashboard", user) as heading:
            try:
                data = await load(services.dashboard_data, user, template, name)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative").props("data-testid=dashboard-error")
                return None
            heading.text = data.dashboard.title
            ui.page_title(f"{data.dashboard.title} · FlowForge")
            ui.link("← All dashboards", "/dashboards")  # NiceGUI adds the /ui mount prefix
            if data.dashboard.description:
                ui.label(data.dashboard.description).classes("text-gray-600")
            with ui.row().classes("w-full gap-4"):
                for chart in data.charts:
                    chart_card(chart)
        return None
