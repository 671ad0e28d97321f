"""Workflows, jobs, runs, live events, catalog, lineage and audit through the API, as a user would."""

from __future__ import annotations

import json

from tests.api.conftest import Api, wait_for_run

DAILY = """\
name: daily_orders
description: Orders, cleaned daily
team: sales
environment: prod
tags: [orders, daily]
jobs:
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - {files: "orders*.csv", target: bronze_daily_orders}
  - name: clean
    kind: silver
    tables:
      - target: silver_daily_orders
        source: bronze_daily_orders
        keys: [order_id]
        order_by: updated_at
"""


def _names(api: Api, query: str = "") -> list[str]:
    return [w["name"] for w in api.get(f"/workflows{query}", "viewer").json()["data"]]


def test_workflow_round_trip(api: Api) -> None:
    created = api.post("/workflows", "editor", json={"yaml": DAILY})
    assert created.status_code == 201, created.text
    assert [j["name"] for j in created.json()["jobs"]] == ["land", "clean"]
    assert (api.ctx.settings.workflows_path / "daily_orders.yml").read_text() == DAILY
    assert api.post("/workflows", "editor", json={"yaml": DAILY}).status_code == 409

    assert "daily_orders" in _names(api)
    assert _names(api, "?team=sales&environment=prod&tag=daily") == ["daily_orders"]
    assert _names(api, "?search=CLEANED") == ["daily_orders"]
    assert "daily_orders" not in _names(api, "?team=nobody")
    assert "example" in _names(api)  # the scaffold's file, registered when listed

    edited = api.call("PUT", "/workflows/daily_orders", "editor", json={"yaml": DAILY.replace("team: sales",
                                                                                              "team: finance")})
    assert edited.status_code == 200 and edited.json()["team"] == "finance"
    assert api.call("PUT", "/workflows/daily_orders", "editor",
                    json={"yaml": DAILY.replace("name: daily_orders", "name: renamed")}).status_code == 422

    clone = api.post("/workflows/daily_orders/clone", "editor", json={"new_name": "daily_orders_eu"})
    assert clone.status_code == 201 and clone.json()["team"] == "finance"
    detail_by_id = api.get(f"/workflows/{clone.json()['id']}", "viewer").json()
    assert detail_by_id["name"] == "daily_orders_eu"
    assert api.call("DELETE", "/workflows/daily_orders_eu", "editor").status_code == 204
    assert not (api.ctx.settings.workflows_path / "daily_orders_eu.yml").exists()
    assert api.get("/workflows/daily_orders_eu", "viewer").status_code == 404

    assert api.post("/workflows/daily_orders/pause", "editor").json()["status"] == "paused"
    assert _names(api, "?status=paused") == ["daily_orders"]
    refused = api.post("/runs", "editor", json={"workflow": "daily_orders"})
    assert refused.status_code == 400 and "paused" in refused.json()["detail"]
    assert api.post("/workflows/daily_orders/resume", "editor").json()["status"] == "active"

    run = api.post("/runs", "editor", json={"workflow": "daily_orders"})
    assert run.status_code == 202 and run.json()["actor"] == "editor"
    finished = wait_for_run(api, run.json()["id"])
    assert finished["status"] == "success", finished
    history = api.get("/runs?workflow=daily_orders&status=success", "viewer").json()
    assert [r["id"] for r in history] == [finished["id"]]
    assert api.get("/runs?workflow=daily_orders&status=failed", "viewer").json() == []
    jobs = api.get(f"/runs/{finished['id']}/jobs", "viewer").json()["jobs"]
    assert [(j["job"], j["status"], j["rows_written"]) for j in jobs] == [("land", "success", 3),
                                                                          ("clean", "success", 3)]
    assert all(j["seconds"] is not None for j in jobs)
    logs = api.get(f"/runs/{finished['id']}/logs", "viewer").json()
    assert [entry["job"] for entry in logs] == ["land", "clean"]
    assert api.get("/workflows/daily_orders", "viewer").json()["runs"][0]["id"] == finished["id"]
    listed = next(w for w in api.get("/workflows", "viewer").json()["data"] if w["name"] == "daily_orders")
    assert listed["last_run"]["status"] == "success"

    assert api.call("DELETE", "/workflows/daily_orders", "editor").status_code == 204
    assert "daily_orders" not in _names(api)
    assert api.get("/catalog/tables/silver_daily_orders", "viewer").status_code == 200  # tables are kept


def test_listing_pages_and_reports_broken_files(api: Api) -> None:
    for i in range(3):
        api.post("/workflows", "editor", json={"yaml": DAILY.replace("daily_orders", f"paged_{i}")})
    first = api.get("/workflows?search=paged_&limit=2", "viewer").json()
    second = api.get("/workflows?search=paged_&limit=2&offset=2", "viewer").json()
    assert (first["count"], second["count"]) == (3, 3)
    assert [w["name"] for w in first["data"] + second["data"]] == ["paged_0", "paged_1", "paged_2"]
    (api.ctx.settings.workflows_path / "broken.yml").write_text("name: broken\njobs: [\n")
    listed = api.get("/workflows", "viewer").json()
    assert [(w["name"], w["status"]) for w in listed["invalid"]] == [("broken", "invalid")]
    assert "line" in listed["invalid"][0]["error"] or "YAML" in listed["invalid"][0]["error"]
    (api.ctx.settings.workflows_path / "broken.yml").unlink()
    for i in range(3):
        api.call("DELETE", f"/workflows/paged_{i}", "editor")


def test_jobs_crud_and_inline_validation(api: Api) -> None:
    api.post("/workflows", "editor", json={"yaml": DAILY.replace("daily_orders", "jobs_wf")})
    bad = "name: extra\nkind: silver\ntables:\n  - target: silver_x\n    source: bronze_jobs_wf\n    colour: red\n"
    result = api.post("/workflows/jobs_wf/jobs/validate", "viewer", json={"yaml": bad}).json()
    assert result["valid"] is False
    assert result["issues"][0]["field"].endswith("colour") and result["issues"][0]["line"] == 6
    unknown = {"name": "x", "kind": "ingest", "connection": "nope", "tables": [{"files": "a.csv", "target": "b_x"}]}
    issues = api.post("/workflows/jobs_wf/jobs/validate", "viewer", json={"spec": unknown}).json()["issues"]
    assert issues[0]["field"] == "connection" and "nope" in issues[0]["message"]
    wf_check = api.post("/workflows/validate", "viewer", json={"yaml": "name: w\njobs: every day\n"}).json()
    assert wf_check["valid"] is False and wf_check["issues"][0]["field"] == "jobs"
    blank = api.post("/workflows/validate", "viewer", json={"yaml": "name: w\njobs: []\n"}).json()
    assert blank["valid"] is True  # a new workflow has no jobs until they are added

    good = {"name": "gold_totals", "kind": "gold",
            "tables": [{"target": "gold_jobs_wf", "sql": "SELECT count(*) AS n FROM silver_jobs_wf"}]}
    assert api.post("/workflows/jobs_wf/jobs/validate", "viewer", json={"spec": good}).json()["valid"] is True
    added = api.post("/workflows/jobs_wf/jobs", "editor", json={"spec": good})
    assert added.status_code == 201 and added.json()["inputs"] == ["silver_jobs_wf"]
    assert api.post("/workflows/jobs_wf/jobs", "editor", json={"spec": good}).status_code == 409
    clone = api.post("/workflows/jobs_wf/jobs/gold_totals/clone", "editor", json={"new_name": "gold_totals_2"})
    assert clone.status_code == 201 and clone.json()["outputs"] == ["gold_jobs_wf_copy"]
    good["tables"][0]["sql"] = "SELECT count(*) AS orders FROM silver_jobs_wf"  # type: ignore[index]
    updated = api.call("PUT", "/workflows/jobs_wf/jobs/gold_totals", "editor", json={"spec": good})
    assert "orders" in updated.json()["spec"]["tables"][0]["sql"]
    assert api.call("DELETE", "/workflows/jobs_wf/jobs/gold_totals_2", "editor").status_code == 204
    names = [j["name"] for j in api.get("/workflows/jobs_wf/jobs", "viewer").json()]
    assert names == ["land", "clean", "gold_totals"]
    assert api.get("/workflows/jobs_wf/jobs/nope", "viewer").status_code == 404

    run = api.post("/runs", "editor", json={"workflow": "jobs_wf", "job": "land"}).json()  # only that job
    done = wait_for_run(api, run["id"])
    jobs = api.get(f"/runs/{done['id']}/jobs", "viewer").json()["jobs"]
    assert [j["job"] for j in jobs] == ["land"]
    assert api.post("/runs", "editor", json={"workflow": "jobs_wf", "job": "nope"}).status_code == 422


def test_run_stream_delivers_start_and_success_events(api: Api) -> None:
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    events = api.stream_events(run["id"])
    parsed = [(name, json.loads(data)) for name, data in events]
    assert parsed[0][0] == "run" and parsed[0][1]["status"] == "running"
    jobs = [(d["job"], d["status"]) for name, d in parsed if name == "job"]
    assert jobs == [("ingest_orders", "start"), ("ingest_orders", "success"), ("clean_orders", "start"),
                    ("clean_orders", "success"), ("daily_revenue", "start"), ("daily_revenue", "success")]
    assert parsed[-1][0] == "run" and parsed[-1][1]["status"] == "success"
    # a finished run replays the same events
    assert api.stream_events(run["id"]) == events


def test_run_stream_polls_runs_started_elsewhere(api: Api) -> None:
    from flowforge.core.context import Context

    with Context(api.ctx.settings) as other:  # like a CLI run: another Context, no bus
        summary = other.run("example", select=["ingest_orders"])
    from flowforge.core import runs

    runs.BUS._channels.clear()
    events = [(name, json.loads(data)) for name, data in api.stream_events(summary.run_id)]
    assert [(d.get("job"), d["status"]) for _, d in events] == [
        (None, "running"), ("ingest_orders", "start"), ("ingest_orders", "success"), (None, "success")]


def test_catalog_detail_and_lineage_after_the_example_ran(api: Api) -> None:
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    wait_for_run(api, run["id"])
    run = api.post("/runs", "editor", json={"workflow": "example", "force": True}).json()  # gold rebuilt anyway
    wait_for_run(api, run["id"])
    tables = api.get("/catalog/tables?layer=gold", "viewer").json()
    assert "gold_daily_revenue" in [t["name"] for t in tables] and {t["layer"] for t in tables} == {"gold"}
    detail = api.get("/catalog/tables/silver_orders?sample=2", "viewer").json()
    assert detail["layer"] == "silver" and detail["rows"] == 3 and detail["last_updated"]
    assert {"name": "amount", "type": "DECIMAL(38,2)", "arrow_type": "decimal128(38, 2)", "nullable": True} \
        in detail["columns"]  # the same SQL type names as the table list, the physical type beside
    assert detail["history"][-1]["version"] == 0 and detail["history"][-1]["rows_added"] == 3
    gold = api.get("/catalog/tables/gold_daily_revenue", "viewer").json()  # rebuilt by the forced run
    assert len(gold["history"]) >= 2 and gold["history"][0]["version"] == gold["version"] >= 1
    assert all(v["operation"] and v["timestamp"] for v in gold["history"])
    assert len(detail["sample"]) == 2
    sample = detail["sample"][0]
    assert isinstance(sample["amount"], str) and "T" in sample["updated_at"]  # exact decimals, ISO timestamps
    assert api.get("/catalog/tables/nope", "viewer").status_code == 404

    graph = api.get("/workflows/example/lineage", "viewer").json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["source:local_files.orders*.csv"]["type"] == "source"
    assert (nodes["bronze_orders"]["layer"], nodes["silver_orders"]["layer"],
            nodes["gold_daily_revenue"]["layer"]) == ("bronze", "silver", "gold")
    assert nodes["gold_daily_revenue"]["rows"] == 2 and nodes["gold_daily_revenue"]["last_updated"]
    assert {"source": "bronze_orders", "target": "silver_orders"} in graph["edges"]
    wf_id = api.get("/workflows/example", "viewer").json()["id"]
    assert api.get(f"/workflows/{wf_id}/lineage", "viewer").json() == graph
    assert api.get("/workflows/nope/lineage", "viewer").status_code == 404


def test_column_lineage_of_the_example(api: Api) -> None:
    if not api.get("/catalog/tables?layer=silver", "viewer").json():
        wait_for_run(api, api.post("/runs", "editor", json={"workflow": "example"}).json()["id"])
    found = api.get("/lineage/columns?table=silver_orders&column=amount", "viewer").json()
    assert (found["table"], found["column"], found["workflow"]) == ("silver_orders", "amount", "example")
    assert [(h["table"], h["column"], h["kind"]) for h in found["upstream"]] == [
        ("bronze_orders", "amount", "table"), ("local_files.orders*.csv", "amount", "source")]
    assert ("gold_daily_revenue", 1) in [(h["table"], h["depth"]) for h in found["downstream"]]
    graph = api.get("/workflows/example/lineage/columns", "viewer").json()
    assert {"node": "bronze_orders", "table": "bronze_orders", "kind": "table"}.items() <= next(
        t for t in graph["tables"] if t["node"] == "bronze_orders").items()
    assert all(e["type"] == "DIRECT" for e in graph["edges"])
    table = api.get("/lineage/columns?table=orders", "viewer")  # without its layer prefix: ambiguous
    assert table.status_code == 404 and table.json()["hint"] == "Did you mean bronze_orders, silver_orders?"
    assert api.get("/lineage/columns?table=silver_orders&column=nope", "viewer").status_code == 404
    assert api.get("/lineage/columns", "viewer").status_code == 422


def test_every_change_is_audited_with_the_actor(api: Api) -> None:
    api.post("/workflows", "editor", json={"yaml": DAILY.replace("daily_orders", "audit_wf")})
    api.post("/workflows/audit_wf/pause", "admin")
    api.post("/workflows/audit_wf/jobs/land/clone", "editor", json={"new_name": "land2"})
    api.call("DELETE", "/workflows/audit_wf", "admin")
    entries = api.get("/audit?limit=1000", "editor").json()
    mine = [(e["actor"], e["action"]) for e in entries if "audit_wf" in e["object_id"]]
    for expected in [("editor", "workflow.create"), ("admin", "workflow.status"), ("editor", "job.create"),
                     ("editor", "workflow.update"), ("admin", "workflow.delete")]:
        assert expected in mine, (expected, mine)
    assert all(e["actor"] == "admin" for e in api.get("/audit?actor=admin&action=workflow.", "editor").json())


def test_errors_speak_to_the_user(api: Api) -> None:
    bad_yaml = "name: w\njobs:\n  - name: a\n    kind: gold\n    colour: 1\n"
    bad = api.post("/workflows", "editor", json={"yaml": bad_yaml})
    assert bad.status_code == 422
    assert bad.json()["line"] == 3 and "missing required field 'tables'" in bad.json()["detail"]
    assert api.post("/workflows", "editor", json={}).status_code == 422
    assert api.post("/runs", "editor", json={"workflow": "nope"}).status_code == 404
    assert api.get("/runs/999999", "viewer").status_code == 404


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()
