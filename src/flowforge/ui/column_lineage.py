"""Column lineage in the UI: every column of a workflow's tables as a graph (sources on the left, gold
on the right); clicking a column highlights the columns it comes from and the columns it feeds, and
lists them with how each step transforms it. ``/lineage/column?table=..&column=..`` opens the graph of
the workflow that writes the table with that column selected (the catalog links there)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import events, ui

from flowforge.ui.layout import error_message, frame, go, load, login_redirect, page, page_user, table
from flowforge.ui.services import UiUser, acting

SEP = "::"
KIND_COLORS = {"source": "#6b7280", "sink": "#0f766e", "bronze": "#b06a2c", "silver": "#8a99a8", "gold": "#d4a017",
               "table": "#4b5563"}


# -- services --------------------------------------------------------------------------------------
def column_graph(user: UiUser, workflow: str) -> dict[str, Any]:
    with acting(user) as c:
        c.workflows.get(workflow)  # registers a workflow file not seen before
        graph = c.column_lineage.graph(workflow)
        layers = {a.table_name: a.layer for a in c.metadata.list_assets()}
    for t in graph["tables"]:
        t["layer"] = layers.get(t["node"], t["kind"])
    return graph


def column_trace(user: UiUser, table_name: str, column: str | None = None) -> dict[str, Any]:
    with acting(user) as c:
        return c.column_lineage.columns(table_name, column)


# -- the chart -------------------------------------------------------------------------------------
def _plain(text: str) -> str:
    return text.replace("{", "(").replace("}", ")").replace("|", "/")


def _depths(graph: dict[str, Any]) -> dict[str, int]:
    """Each table's distance from the sources, so data flows left to right."""
    inputs: dict[str, set[str]] = {}
    for e in graph["edges"]:
        if e["source"]["node"] != e["target"]["node"]:
            inputs.setdefault(e["target"]["node"], set()).add(e["source"]["node"])
    depth: dict[str, int] = {}

    def of(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            parents = inputs.get(node, set()) - seen
            depth[node] = 1 + max((of(p, seen | {node}) for p in parents), default=-1)
        return depth[node]

    for t in graph["tables"]:
        of(t["node"])
    return depth


def chart_options(graph: dict[str, Any], selected: str | None = None,
                  related: set[str] | None = None) -> dict[str, Any]:
    """Tables as headers with their columns stacked below; ``selected`` (``node::column``) and the
    ``related`` columns in red, the rest dimmed."""
    depths = _depths(graph)
    lit = ({selected} | (related or set())) if selected else set()
    cursor: dict[int, int] = {}
    data = []
    for t in sorted(graph["tables"], key=lambda t: (depths.get(t["node"], 0), t["node"])):
        x = depths.get(t["node"], 0) * 320
        y = cursor.get(x, 0)
        color = KIND_COLORS.get(str(t.get("layer")), KIND_COLORS["table"])
        data.append({"name": t["node"] + SEP, "x": x, "y": y, "value": 0, "symbolSize": [190, 26],
                     "label": {"formatter": _plain(t["table"]), "fontWeight": "bold",
                               "color": "#111827" if lit else "#fff"},
                     "itemStyle": {"color": color, "opacity": 0.35 if lit else 1},
                     "tooltip": {"formatter": _plain(f"{t['table']} ({t.get('layer')})")}})
        for i, col in enumerate(t["columns"], start=1):
            name = f"{t['node']}{SEP}{col}"
            on = name in lit
            data.append({"name": name, "x": x, "y": y + i * 24, "value": i, "symbolSize": [180, 20],
                         "label": {"formatter": _plain(col), "color": "#fff" if on else "#111827"},
                         "itemStyle": {"color": "#dc2626" if name == selected else "#f87171" if on else "#f3f4f6",
                                       "borderColor": color, "borderWidth": 1, "opacity": 0.45 if lit and not on
                                       else 1},
                         "tooltip": {"formatter": _plain(f"{t['table']}.{col}")}})
        cursor[x] = y + (len(t["columns"]) + 2) * 24
    links = []
    for e in graph["edges"]:
        a = f"{e['source']['node']}{SEP}{e['source']['column']}"
        b = f"{e['target']['node']}{SEP}{e['target']['column']}"
        on = a in lit and b in lit
        links.append({"source": a, "target": b, "lineStyle": {"width": 3 if on else 1, "color": "#dc2626" if on
                                                              else "#9ca3af", "opacity": 1 if on or not lit else 0.15}})
    return {
        "tooltip": {"trigger": "item", "confine": True},
        "xAxis": {"show": False}, "yAxis": {"show": False, "inverse": True},
        "series": [{"type": "graph", "layout": "none", "roam": True, "symbol": "rect", "data": data, "links": links,
                    "edgeSymbol": ["none", "arrow"], "edgeSymbolSize": 6,
                    "label": {"show": True, "position": "inside", "fontSize": 10, "overflow": "truncate",
                              "width": 176},
                    "lineStyle": {"curveness": 0.15}}],
    }


def chart_height(graph: dict[str, Any]) -> int:
    depths = _depths(graph)
    per: dict[int, int] = {}
    for t in graph["tables"]:
        d = depths.get(t["node"], 0)
        per[d] = per.get(d, 0) + (len(t["columns"]) + 2) * 24
    return max(420, min(4000, max(per.values(), default=0) + 60))  # about one pixel per unit: readable boxes


async def column_view(user: UiUser, workflow: str, select: tuple[str, str] | None = None,
                      graph: dict[str, Any] | Exception | None = None) -> None:
    """The column graph of ``workflow`` (``graph``: read already, or why it could not be); ``select`` is
    a (table, column) to highlight first."""
    if graph is None:
        try:
            graph = await load(column_graph, user, workflow)
        except Exception as exc:
            graph = exc
    if isinstance(graph, Exception):
        ui.label(error_message(graph)).classes("text-negative")
        return
    if not graph["tables"]:
        ui.label("No column lineage yet: run the workflow once so FlowForge knows its tables' columns.").classes(
            "text-gray-600").props("data-testid=column-lineage-empty")
        return
    ui.label("Click a column to highlight where it comes from and where it goes; click a table's header to "
             "open it in the catalog.").classes("text-gray-600 text-sm")
    chart = ui.echart(chart_options(graph)).classes("w-full border rounded").style(
        f"height: {chart_height(graph)}px").props("data-testid=column-lineage-chart")
    details = ui.column().classes("w-full")

    async def show(node: str, column: str) -> None:
        try:
            found = await load(column_trace, user, node, column)
        except Exception as exc:
            details.clear()
            with details:
                ui.label(error_message(exc)).classes("text-negative")
            return
        related = {f"{h['node']}{SEP}{h['column']}" for h in found["upstream"] + found["downstream"]}
        chart.options.clear()
        chart.options.update(chart_options(graph, f"{found['node']}{SEP}{found['column']}", related))
        chart.update()
        details.clear()
        with details:
            ui.label(f"{found['table']}.{found['column']}").classes("text-lg font-bold").props(
                "data-testid=column-selected")
            for title, key in (("Comes from", "upstream"), ("Feeds", "downstream")):
                hops = found[key]
                ui.label(f"{title} ({len(hops)})").classes("font-bold")
                if not hops:
                    ui.label("nothing" if key == "downstream" else "nothing: it starts here").classes("text-gray-600")
                    continue
                table([{"column": f"{h['table']}.{h['column']}", "steps away": h["depth"], "how": h["subtype"],
                        "expression": h["description"], "job": h["job"]} for h in hops],
                      ["column", "steps away", "how", "expression", "job"]).props(f"data-testid=column-{key}")

    async def clicked(e: events.EChartPointClickEventArguments) -> None:
        node, _, column = str(e.name).partition(SEP)
        if column:
            await show(node, column)
        elif not node.startswith(("source:", "sink:")):
            go(f"/catalog/{node}")

    chart.on_point_click(clicked)
    if select is not None:
        await show(*select)


async def catalog_tab(user: UiUser, table_name: str) -> None:
    """The catalog's Lineage tab of one table: each column with what it comes from and feeds, linked to the
    column graph."""
    try:
        found = await load(column_trace, user, table_name)
    except Exception as exc:
        ui.label(error_message(exc)).classes("text-gray-600")
        return
    for col in found["columns"]:
        ins = sorted({f"{e['source']['table']}.{e['source']['column']}" for e in found["edges"]
                      if e["type"] == "DIRECT" and e["target"]["node"] == found["node"]
                      and e["target"]["column"] == col})
        outs = sorted({f"{e['target']['table']}.{e['target']['column']}" for e in found["edges"]
                       if e["type"] == "DIRECT" and e["source"]["node"] == found["node"]
                       and e["source"]["column"] == col})
        with ui.row().classes("items-center gap-3 w-full"):
            ui.link(col, "/lineage/column?" + urlencode({"table": found["node"], "column": col})).props(
                f"data-testid=column-link-{col}").classes("font-mono w-64").style("text-decoration: none")
            ui.label(("← " + ", ".join(ins)) if ins else "").classes("text-sm text-gray-700")
            ui.label(("→ " + ", ".join(outs)) if outs else "").classes("text-sm text-gray-700")


def register() -> None:
    @page("/lineage/column")
    async def column_page(request: Request, table: str, column: str | None = None) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame(f"Column lineage · {table}" + (f".{column}" if column else ""), user):
            try:
                found = await load(column_trace, user, table, column)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            if found["workflow"] is None:
                ui.label(f"{found['table']} is not written by any workflow.").classes("text-gray-600")
                return None
            ui.link(f"← Lineage of {found['workflow']}", f"/workflows/{found['workflow']}/lineage")
            await column_view(user, found["workflow"], (found["node"], found["column"]) if found["column"] else None)
        return None
