"""Dashboards defined by templates, and their chart data (the UI's Dashboards page reads the same)."""

from typing import Any

from fastapi import APIRouter

from flowforge.api.deps import Ctx, CurrentUser

router = APIRouter(prefix="/dashboards", tags=["dashboards"])


@router.get("")
def list_dashboards(_: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    """Every template dashboard: template, name, title, description and its charts' definitions."""
    return [d.model_dump() for d in ctx.dashboards()]


@router.get("/{template}/{name}")
def dashboard(template: str, name: str, _: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Each chart's columns and rows (first 1,000), or why it has none, plus its ECharts option."""
    from flowforge.templates.dashboards import echarts_option

    data = ctx.dashboard_data(template, name)
    return {"dashboard": data.dashboard.model_dump(),
            "charts": [{**c.model_dump(), "echarts": None if c.error else echarts_option(c)} for c in data.charts]}
