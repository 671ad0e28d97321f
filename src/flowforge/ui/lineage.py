"""Lineage: a left-to-right ECharts graph (source → bronze → silver → gold) with zoom, pan,
hover details, click-through to the catalog and the highlighted path of a selected job; below it
the column graph (``ui/column_lineage.py``), where a click highlights a column's upstream and
downstream columns."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import events, run, ui

from flowforge.core.workflows import WorkflowDetail
from flowforge.ui import services
from flowforge.ui.layout import error_message, frame, go, load, login_redirect, page, page_user

LAYERS = ("source", "bronze", "silver", "gold")
COLORS = {"source": "#6b7280", "bronze": "#b06a2c", "silver": "#8a99a8", "gold": "#d4a017", "table": "#4b5563"}


def _tooltip(node: dict[str, Any]) -> str:
    """The hover box: ECharts renders a formatter string as HTML, so every value is escaped here."""
    rows = node.get("rows")
    updated = escape(str(node.get("last_updated") or "not yet")[:19].replace("T", " "))
    label = escape(str(node["label"]))
    if node.get("type") == "source":
        return f"<b>{label}</b><br/>source"
    rows_text = f"{rows:,}" if isinstance(rows, int) else "unknown"
    return f"<b>{label}</b><br/>layer: {escape(str(node.get('type')))}<br/>rows: {rows_text}<br/>last update: {updated}"


def _plain(text: str) -> str:
    """A label as ECharts draws it: braces and pipes would be read as its rich-text markup."""
    return text.replace("{", "(").replace("}", ")").replace("|", "/")


def path_of(graph: dict[str, Any], tables: set[str]) -> set[str]:
    """Every node upstream or downstream of ``tables`` (a job's inputs and outputs)."""
    edges = [(e["source"], e["target"]) for e in graph["edges"]]
    found = set(tables)
    for forward in (True, False):
        frontier = set(tables)
        while frontier:
            nxt = {b if forward else a for a, b in edges if (a if forward else b) in frontier}
            frontier = nxt - found
            found |= nxt
    return found


def chart_options(graph: dict[str, Any], highlight: set[str] | None = None) -> dict[str, Any]:
    by_layer: dict[str, int] = {}
    data = []
    for node in graph["nodes"]:
        layer = node.get("type") if node.get("type") in LAYERS else "silver"
        row = by_layer.get(layer, 0)
        by_layer[layer] = row + 1
        dim = bool(highlight) and node["id"] not in (highlight or set())
        data.append({
            "name": node["id"], "x": LAYERS.index(layer) * 300, "y": row * 90,
            "value": node.get("rows"), "label": {"show": True, "formatter": _plain(str(node["label"]))},
            "itemStyle": {"color": COLORS.get(str(node.get("type")), COLORS["table"]), "opacity": 0.25 if dim else 1,
                          "borderColor": "#dc2626" if highlight and not dim else "#fff", "borderWidth": 3},
            "tooltip": {"formatter": _tooltip(node)},
        })
    links = [{"source": e["source"], "target": e["target"],
              "lineStyle": {"width": 4, "color": "#dc2626", "opacity": 1} if highlight and e["source"] in highlight
              and e["target"] in highlight else {"width": 1.5, "opacity": 0.35 if highlight else 0.8}}
             for e in graph["edges"]]
    return {
        "tooltip": {"trigger": "item", "confine": True},
        "xAxis": {"show": False}, "yAxis": {"show": False},
        "series": [{
            "type": "graph", "layout": "none", "roam": True, "symbol": "roundRect", "symbolSize": [170, 46],
            "edgeSymbol": ["none", "arrow"], "edgeSymbolSize": 9, "data": data, "links": links,
            # long names wrap inside the box (at any character: names have no spaces) instead of being cut off
            "label": {"position": "inside", "color": "#fff", "fontSize": 11, "lineHeight": 13, "overflow": "breakAll",
                      "width": 160, "align": "center"},
            "emphasis": {"focus": "adjacency"}, "lineStyle": {"curveness": 0.1},
        }],
        "graphic": [{"type": "text", "left": f"{4 + i * 24}%", "top": 4, "style": {"text": layer.upper(),
                     "fill": "#374151", "font": "bold 12px sans-serif"}} for i, layer in enumerate(LAYERS)],
    }


def lineage_view(workflow_name: str, graph: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    """The graph, a job selector that highlights that job's path, and the JSON behind it."""
    job_tables = {}
    for job in jobs:
        outputs = set(job.get("outputs", ()))
        job_tables[str(job["name"])] = outputs | {e["source"] for e in graph["edges"] if e["target"] in outputs}
    chart = ui.echart(chart_options(graph)).classes("w-full h-[520px] border rounded").props(
        "data-testid=lineage-chart")

    def open_table(e: events.EChartPointClickEventArguments) -> None:
        name = str(e.name)
        if e.series_type == "graph" and not name.startswith("source:"):
            go(f"/catalog/{name}")

    chart.on_point_click(open_table)

    def highlight(e: events.ValueChangeEventArguments[Any]) -> None:
        tables = job_tables.get(str(e.value or ""), set())
        chart.options.clear()
        chart.options.update(chart_options(graph, path_of(graph, tables) if tables else None))
        chart.update()

    with ui.row().classes("items-center gap-4"):
        ui.select(["", *job_tables], label="Highlight the path of job", on_change=highlight).classes(
            "w-72").props("data-testid=highlight-job clearable")
        ui.label("Scroll to zoom, drag to pan, hover a table for rows and last update, click it to open it.").classes(
            "text-gray-600 text-sm")
    with ui.expansion("Lineage JSON").classes("w-full"):
        ui.code(json.dumps(graph, indent=2), language="json").classes("w-full")


def jobs_of(detail: WorkflowDetail) -> list[dict[str, Any]]:
    """The tables each job writes (its inputs come from the graph's edges)."""
    return [{"name": job.name, "outputs": list(job.outputs)} for job in detail.jobs]


def register() -> None:
    from flowforge.ui import column_lineage

    column_lineage.register()

    @page("/workflows/{name}/lineage")
    async def lineage_page(request: Request, name: str, column: str | None = None) -> RedirectResponse | None:
        """``?column=table.column`` selects a column in the column graph below the table graph."""
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Lineage · {name}", user):
            try:
                graph = await load(services.lineage, user, name)
                detail = await load(services.workflow, user, name)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            try:  # read before the table graph is drawn: the page then goes out whole when the reads are quick
                columns: dict[str, Any] | Exception = await load(column_lineage.column_graph, user, name)
            except Exception as exc:
                columns = exc
            ui.link("← Back to the workflow", f"/workflows/{name}")
            lineage_view(name, graph, jobs_of(detail))
            ui.label("Columns").classes("text-xl font-bold mt-4")
            select = tuple(column.rsplit(".", 1)) if column and "." in column else None
            await column_lineage.column_view(user, name, select, columns)  # type: ignore[arg-type]
        return None

    @page("/workflows/{name}/lineage.json")
    async def lineage_json(request: Request, name: str) -> Any:
        from fastapi.responses import JSONResponse

        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        return JSONResponse(await run.io_bound(services.lineage, user, name))
