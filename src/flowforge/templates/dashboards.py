"""Dashboards defined next to a template's gold tables (``dashboards:`` in its template.yml).

Each chart is a query over lakehouse tables by name, run by the same engine as ``flowforge
query``, and a chart type; ``echarts_option`` turns the result into an ECharts option with no
HTML and no JavaScript in it (tooltips drawn as rich text on the canvas), so no value from the
data can become markup in the page.

```yaml
dashboards:
  - name: sales
    title: E-commerce sales
    charts:
      - id: revenue_by_month
        title: Revenue by month and channel (VND)
        type: bar                   # bar, line or pie
        stack: true
        sql: SELECT month, channel, sum(revenue) AS revenue FROM mart_monthly_revenue GROUP BY ALL ORDER BY 1
        x: month                    # categories (pie: slice names)
        y: revenue                  # values
        series: channel             # optional: one series per value of this column
```
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError

from flowforge.errors import FlowForgeError, NotFoundError, SpecError
from flowforge.spec.base import Identifier, SpecModel

if TYPE_CHECKING:
    from flowforge.core.context import Context

MAX_ROWS = 1_000


class Chart(SpecModel):
    id: Identifier
    title: str
    type: Literal["bar", "line", "pie"]
    sql: str
    x: str
    y: str
    series: str | None = None
    stack: bool = False
    horizontal: bool = False


class Dashboard(SpecModel):
    template: str = ""
    name: Identifier
    title: str
    description: str = ""
    charts: tuple[Chart, ...] = Field(min_length=1)


class ChartData(SpecModel):
    chart: Chart
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    error: str | None = None
    truncated: bool = False


class DashboardData(SpecModel):
    dashboard: Dashboard
    charts: tuple[ChartData, ...]


def list_dashboards() -> list[Dashboard]:
    """Every dashboard of every template, validated (a broken definition is a SpecError naming it)."""
    from flowforge.templates.registry import list_templates

    out: list[Dashboard] = []
    for tpl in list_templates():
        path = tpl.folder / "template.yml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in raw.get("dashboards") or []:
            try:
                out.append(Dashboard.model_validate({**item, "template": tpl.name}))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise SpecError(f"Dashboard of template {tpl.name}: {where}: {first['msg']}", file=str(path)) from None
    return out


def get_dashboard(template: str, name: str | None = None) -> Dashboard:
    found = [d for d in list_dashboards() if d.template == template and (name is None or d.name == name)]
    if not found:
        known = ", ".join(f"{d.template}/{d.name}" for d in list_dashboards()) or "none"
        raise NotFoundError(f"No dashboard {template}/{name or '*'} (dashboards: {known}).")
    return found[0]


def dashboard_data(ctx: Context, template: str, name: str | None = None) -> DashboardData:
    """Run every chart's query; a chart whose tables are missing carries the reason instead of data."""
    dashboard = get_dashboard(template, name)
    return DashboardData(dashboard=dashboard, charts=tuple(_chart_data(ctx, c) for c in dashboard.charts))


def _chart_data(ctx: Context, chart: Chart) -> ChartData:
    try:
        table = ctx.query(chart.sql)
    except FlowForgeError as exc:
        hint = f" {exc.hint}" if exc.hint else ""
        return ChartData(chart=chart, error=f"{exc.message}{hint}")
    missing = [c for c in (chart.x, chart.y, chart.series) if c and c not in table.column_names]
    if missing:
        return ChartData(chart=chart, error=f"Chart {chart.id}: its query returns no column(s) {', '.join(missing)} "
                                            f"(it returns {', '.join(table.column_names)}).")
    rows = table.slice(0, MAX_ROWS).to_pylist()
    names = tuple(table.column_names)
    return ChartData(chart=chart, columns=names, rows=tuple(tuple(_plain(r[n]) for n in names) for r in rows),
                     truncated=table.num_rows > MAX_ROWS)


def _plain(value: Any) -> Any:
    """JSON- and chart-friendly: decimals as numbers, dates as ISO text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def echarts_option(data: ChartData) -> dict[str, Any]:
    """The ECharts option of one chart: text only, no formatter functions, no HTML."""
    chart = data.chart
    col = {name: i for i, name in enumerate(data.columns)}
    tooltip = {"trigger": "item" if chart.type == "pie" else "axis", "renderMode": "richText", "confine": True}
    base: dict[str, Any] = {"tooltip": tooltip, "animation": False, "grid": {"containLabel": True, "left": 8,
                                                                             "right": 16, "top": 40, "bottom": 8}}
    if chart.type == "pie":
        slices = [{"name": str(r[col[chart.x]]), "value": r[col[chart.y]]} for r in data.rows]
        return {**base, "legend": {"type": "scroll", "top": 0},
                "series": [{"type": "pie", "radius": ["35%", "65%"], "top": 24, "data": slices,
                            "label": {"show": True, "formatter": "{b}: {d}%"}}]}
    categories: list[str] = []
    seen: set[str] = set()
    for r in data.rows:
        key = str(r[col[chart.x]])
        if key not in seen:
            seen.add(key)
            categories.append(key)
    if chart.series:
        names: list[str] = list(dict.fromkeys(str(r[col[chart.series]]) for r in data.rows))
        grid: dict[str, dict[str, Any]] = {n: {} for n in names}
        for r in data.rows:
            grid[str(r[col[chart.series]])][str(r[col[chart.x]])] = r[col[chart.y]]
        series = [{"name": n, "type": chart.type, "data": [grid[n].get(c) for c in categories],
                   **({"stack": "total"} if chart.stack else {})} for n in names]
    else:
        series = [{"name": chart.y, "type": chart.type, "data": [r[col[chart.y]] for r in data.rows]}]
    category_axis = {"type": "category", "data": categories, "axisLabel": {"hideOverlap": True}}
    value_axis = {"type": "value"}
    axes = ({"xAxis": value_axis, "yAxis": category_axis} if chart.horizontal
            else {"xAxis": category_axis, "yAxis": value_axis})
    legend = {"legend": {"type": "scroll", "top": 0}} if chart.series else {}
    return {**base, **axes, **legend, "series": series}
