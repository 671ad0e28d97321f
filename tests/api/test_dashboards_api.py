"""Template dashboards: their definitions, their data through the API, and charts that carry
text only (hostile labels stay data, never markup or script)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowforge.api import create_app
from flowforge.core.context import Context
from flowforge.demo.ecommerce_project import WORKFLOW, setup_ecommerce_project
from flowforge.settings import Settings
from flowforge.templates.dashboards import Chart, ChartData, echarts_option, list_dashboards


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Context, dict[str, str], Path]]:
    project = tmp_path_factory.mktemp("dash") / "shop"
    setup_ecommerce_project(project, scale=0.01, seed=4)
    ctx = Context(Settings.load(project).model_copy(update={"actor": "test-setup"}))  # the owner, as admin
    tokens = {}
    for role in ("viewer", "admin"):
        ctx.users.create_user(role, f"{role}-Pass-0001", role)  # type: ignore[arg-type]
        tokens[role] = ctx.users.create_token(role, "test")
    with TestClient(create_app(ctx.settings, ctx)) as client:
        yield client, ctx, tokens, project
    ctx.close()


def _get(client: TestClient, token: str | None, url: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1{url}", headers=headers)


def test_the_ecommerce_template_defines_the_three_charts_the_issue_asks_for() -> None:
    sales = next(d for d in list_dashboards() if d.template == "ecommerce_analytics")
    ids = {c.id for c in sales.charts}
    assert {"revenue_by_month", "orders_by_status", "customers_by_segment"} <= ids


def test_dashboard_data_before_and_after_the_workflow_runs(shop: Any) -> None:
    client, ctx, tokens, project = shop
    assert _get(client, None, "/dashboards").status_code == 401
    listed = _get(client, tokens["viewer"], "/dashboards").json()
    assert ("ecommerce_analytics", "sales") in {(d["template"], d["name"]) for d in listed}
    before = _get(client, tokens["viewer"], "/dashboards/ecommerce_analytics/sales").json()
    assert all(c["error"] and "not in the lakehouse" in c["error"] and c["echarts"] is None for c in before["charts"])
    assert _get(client, tokens["viewer"], "/dashboards/ecommerce_analytics/nope").status_code == 404

    assert ctx.run(WORKFLOW).status == "success"
    data = _get(client, tokens["viewer"], "/dashboards/ecommerce_analytics/sales").json()
    charts = {c["chart"]["id"]: c for c in data["charts"]}
    assert all(c["error"] is None for c in charts.values())
    with sqlite3.connect(project / "data" / "shop.db") as db:
        orders = dict(db.execute("SELECT status, count(*) FROM orders GROUP BY 1").fetchall())
        segments = dict(db.execute("SELECT segment, count(*) FROM customers GROUP BY 1").fetchall())
    by_status = charts["orders_by_status"]
    assert {r[0]: r[1] for r in by_status["rows"]} == orders
    assert {d["name"]: d["value"] for d in by_status["echarts"]["series"][0]["data"]} == orders
    assert {r[0]: r[1] for r in charts["customers_by_segment"]["rows"]} == segments
    revenue = charts["revenue_by_month"]["echarts"]
    assert revenue["xAxis"]["data"][0] == "2024-01" and len(revenue["series"]) == 4  # one stacked bar per channel
    assert {s["stack"] for s in revenue["series"]} == {"total"}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


@pytest.mark.parametrize("kind", ["bar", "line", "pie"])
def test_hostile_labels_stay_plain_text_in_the_chart_options(kind: str) -> None:
    evil = "<img src=x onerror=alert(1)>"
    chart = Chart(id="c", title="t", type=kind, sql="SELECT 1", x="label", y="value", series="group")
    data = ChartData(chart=chart, columns=("label", "group", "value"),
                     rows=((evil, "{@[1]}</script>", 1.0), ("function(){}", ":x", 2.0)))
    option = echarts_option(data)
    assert option["tooltip"]["renderMode"] == "richText"  # drawn on the canvas, not as HTML
    # no key a client could evaluate as JavaScript (NiceGUI treats ':key' as code), no formatter from data
    assert not [k for k in _keys(option) if k.startswith(":")]
    text = json.dumps(option)
    assert "function(" not in text.replace('"function(){}"', "")
    formatters = [v for k, v in _walk(option) if k == "formatter"]
    assert all(f == "{b}: {d}%" for f in formatters)
    assert evil in text  # kept, as a value the chart draws as text


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
