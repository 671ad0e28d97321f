"""Writing workflows through the API as a user would: a blank workflow, its name and ownership
(comments and run history kept), a job as its file writes it, a template's plan with a warning
for tables another workflow already writes, and problems worded in plain words."""

from __future__ import annotations

from tests.api.conftest import Api, wait_for_run

COMMENTED = """\
# Orders from the shop's CSV export; owned by the sales analysts.
name: shop_orders
description: Orders, landed daily
team: sales
tags: [orders]
jobs:
  # the CSV files land as they are
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - {files: "orders*.csv", target: bronze_shop_orders}  # one file a day
"""


def test_a_blank_workflow_gets_jobs_later(api: Api) -> None:
    created = api.post("/workflows", "editor", json={"spec": {"name": "blank_one", "team": "ops", "jobs": []}})
    assert created.status_code == 201, created.text
    assert created.json()["jobs"] == [] and created.json()["team"] == "ops"
    refused = api.post("/runs", "editor", json={"workflow": "blank_one"})
    assert refused.status_code >= 400 and "no jobs yet" in refused.text
    job = {"name": "land", "kind": "ingest", "connection": "local_files",
           "tables": [{"files": "orders*.csv", "target": "bronze_blank_one"}]}
    assert api.post("/workflows/blank_one/jobs", "editor", json={"spec": job}).status_code == 201
    assert [j["name"] for j in api.get("/workflows/blank_one", "viewer").json()["jobs"]] == ["land"]


def test_details_change_in_place_and_a_rename_keeps_the_runs(api: Api) -> None:
    assert api.post("/workflows", "editor", json={"yaml": COMMENTED}).status_code == 201
    run = api.post("/runs", "editor", json={"workflow": "shop_orders"}).json()
    wait_for_run(api, run["id"])
    changed = api.call("PATCH", "/workflows/shop_orders", "editor",
                       json={"description": "Orders, landed hourly", "team": "", "environment": "prod",
                             "tags": ["orders", "hourly", " "]})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["description"], body["team"], body["environment"], body["tags"]) == (
        "Orders, landed hourly", None, "prod", ["orders", "hourly"])
    text = (api.ctx.settings.workflows_path / "shop_orders.yml").read_text()
    for comment in ("# Orders from the shop's CSV export", "# the CSV files land as they are", "# one file a day"):
        assert comment in text
    renamed = api.call("PATCH", "/workflows/shop_orders", "editor", json={"new_name": "shop_orders_hourly"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "shop_orders_hourly"
    assert [r["id"] for r in renamed.json()["runs"]] == [run["id"]]
    assert not (api.ctx.settings.workflows_path / "shop_orders.yml").exists()
    assert "# one file a day" in (api.ctx.settings.workflows_path / "shop_orders_hourly.yml").read_text()
    assert api.get("/workflows/shop_orders", "viewer").status_code == 404
    taken = api.call("PATCH", "/workflows/shop_orders_hourly", "editor", json={"new_name": "blank_one"})
    assert taken.status_code == 409
    bad = api.call("PATCH", "/workflows/shop_orders_hourly", "editor", json={"new_name": "../evil"})
    assert bad.status_code == 422 and "not a workflow name" in bad.text
    assert api.call("PATCH", "/workflows/shop_orders_hourly", "viewer", json={"team": "x"}).status_code == 403


def test_a_job_as_written(api: Api) -> None:
    api.post("/workflows", "editor", json={"yaml": COMMENTED.replace("shop_orders", "shop_src")})
    source = api.get("/workflows/shop_src/jobs/land/source", "viewer").json()
    assert source["data"]["tables"] == [{"files": "orders*.csv", "target": "bronze_shop_src"}]
    assert "# one file a day" in source["text"]
    assert api.get("/workflows/shop_src/jobs/nope/source", "viewer").status_code == 404


def test_a_template_plan_warns_of_a_second_writer(api: Api) -> None:
    first = api.post("/templates/bfsi_customer_360/instantiate", "editor",
                     json={"params": {"workflow_name": "bank_a"}})
    assert first.status_code == 201, first.text
    plan = api.post("/templates/bfsi_customer_360/plan", "viewer", json={"params": {"workflow_name": "bank_b"}}).json()
    assert plan["workflow"] == "bank_b" and "gold_customer_360" in plan["writes"]
    assert {c["table"] for c in plan["conflicts"]} == set(plan["writes"])
    assert all(c["workflow"] == "bank_a" for c in plan["conflicts"])
    assert "already written by job 'build_gold_customer_360' of workflow 'bank_a'" in " ".join(plan["warnings"])
    renamed = {t: f"{t}_b" for t in plan["writes"]}
    clean = api.post("/templates/bfsi_customer_360/plan", "viewer",
                     json={"params": {"workflow_name": "bank_b"}, "tables": renamed, "tags": ["pilot"]}).json()
    assert clean["conflicts"] == [] and clean["warnings"] == []
    assert "gold_customer_360_b" in clean["writes"] and "tags: [pilot]" in clean["yaml"]
    assert "bronze_core_customers_b, incremental: modified_date}" in clean["yaml"]  # the template's layout stays


def test_problems_in_plain_words(api: Api) -> None:
    bad = "name: plain\njobs:\n  - name: land\n    kind: ingest\n    connection: local_files\n    tables: []\n"
    issues = api.post("/workflows/validate", "viewer", json={"yaml": bad}).json()["issues"]
    assert issues[0]["message"] == ("needs at least one entry, or 'include' patterns (tables: \"*\" lands every "
                                    "table)") and issues[0]["line"] == 6
    wrong_kind = "name: plain\njobs:\n  - name: land\n    kind: ingets\n"
    issues = api.post("/workflows/validate", "viewer", json={"yaml": wrong_kind}).json()["issues"]
    assert issues[0]["message"].startswith("kind 'ingets' is not known; use one of 'ingest'")
    refused = api.call("PATCH", "/workflows/plain", "editor", json={"tags": "not a list"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["msg"] == "must be a list"
    assert "not a list" not in refused.text  # what was sent is not echoed back
