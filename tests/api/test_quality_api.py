"""Data quality through the API: results of a run, a table's history, the quarantine and replay,
``flowforge test`` and the dbt import, each with the role it needs."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, wait_for_run

QUALITY = """\
name: quality_orders
jobs:
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - files: "orders*.csv"
        target: bronze_q_orders
        tests:
          - expression: {sql: "amount > 10", severity: quarantine, name: "big enough <script>x</script>"}
  - name: clean
    kind: silver
    tables:
      - target: silver_q_orders
        source: bronze_q_orders
        keys: [order_id]
        tests:
          - unique: order_id
          - row_count: {min: 1}
"""


@pytest.fixture(scope="module")
def run_id(api: Api) -> int:
    assert api.post("/workflows", "editor", json={"yaml": QUALITY}).status_code == 201
    started = api.post("/runs", "editor", json={"workflow": "quality_orders"})
    assert started.status_code == 202, started.text
    run = wait_for_run(api, started.json()["id"])
    assert run["status"] == "success", run
    return int(run["id"])


def test_a_run_s_tests_and_accounting(api: Api, run_id: int) -> None:
    body = api.get(f"/quality/runs/{run_id}", "viewer").json()
    by_test = {r["test_name"]: r for r in body["results"]}
    held = by_test["big enough <script>x</script>"]
    # the scaffold's orders.csv: amounts 19.99, 5.00, 120.50 -> one order of 5.00 held back
    assert (held["status"], held["failing_rows"], held["rows_checked"]) == ("warn", 1, 3)
    assert [r["customer"] for r in held["sample"]] == ["bob"]
    assert by_test["unique(order_id)"]["status"] == by_test["row_count(>= 1)"]["status"] == "pass"
    (bronze,) = [a for a in body["accounting"] if a["table_name"] == "bronze_q_orders"]
    assert (bronze["rows_in"], bronze["rows_committed"], bronze["rows_dropped"], bronze["rows_quarantined"]) == \
        (3, 2, 0, 1)
    facets = api.get(f"/quality/runs/{run_id}/openlineage", "viewer").json()
    assert {a["name"]: a["success"] for a in facets["silver_q_orders"]["assertions"]} == {
        "unique(order_id)": True, "row_count(>= 1)": True}
    assert api.get("/quality/runs/9999", "viewer").status_code == 404
    # what a search hit or a catalog page says about the version it shows
    assert api.ctx.quality.status_at("silver_q_orders", bronze["delta_version"] + 99) == "passed"
    assert api.ctx.quality.status_at("bronze_q_orders", bronze["delta_version"]) == \
        "1 row(s) held back by big enough <script>x</script>"
    assert api.ctx.quality.status_at("silver_q_orders", -1) == "no checks"


def test_quarantine_is_read_by_viewers_and_replayed_by_editors(api: Api, run_id: int) -> None:
    listed = api.get("/quality/quarantine", "viewer").json()
    assert [(q["table"], q["pending"]) for q in listed] == [("bronze_q_orders", 1)]
    rows = api.get("/quality/quarantine/bronze_q_orders", "viewer").json()["rows"]
    assert [(r["order_id"], r["_quarantine_run_id"]) for r in rows] == [(2, run_id)]
    assert api.post("/quality/quarantine/bronze_q_orders/replay", "viewer").status_code == 403
    replay = api.post("/quality/quarantine/bronze_q_orders/replay", "editor").json()
    assert (replay["checked"], replay["replayed"], replay["still_failing"]) == (1, 0, 1)
    audit = api.get("/audit?action=quarantine.replay", "editor").json()
    assert audit[0]["actor"] == "editor" and audit[0]["after"]["still_failing"] == 1


def test_tests_run_on_request_and_land_in_the_table_history(api: Api, run_id: int) -> None:
    assert api.post("/quality/test", "viewer", json={"workflow": "quality_orders"}).status_code == 403
    report = api.post("/quality/test", "editor", json={"workflow": "quality_orders",
                                                       "select": ["silver_q_orders"]}).json()
    assert report["ok"] and report["counts"] == {"pass": 2, "warn": 0, "error": 0, "skip": 0}
    history = api.get("/quality/tables/silver_q_orders", "viewer").json()
    assert [(r["origin"], r["run_id"]) for r in history["results"]][:2] == [("test", None), ("test", None)]
    assert {r["run_id"] for r in history["results"][2:]} == {run_id}
    assert history["accounting"][0]["rows_committed"] == 2


def test_dbt_import_needs_an_editor_and_reads_no_files(api: Api) -> None:
    schema = "version: 2\nmodels:\n  - name: silver_q_orders\n    columns:\n      - name: order_id\n" \
             "        tests: [not_null]\n"
    assert api.post("/quality/import/dbt", "viewer", json={"schema_yaml": schema}).status_code == 403
    body = api.post("/quality/import/dbt", "editor", json={"schema_yaml": schema}).json()
    assert body["tables"] == {"silver_q_orders": [{"not_null": "order_id"}]} and body["written"] is None
    sneaky = api.post("/quality/import/dbt", "editor", json={"schema_yaml": "/etc/passwd"})
    assert sneaky.status_code == 422 and "root:" not in sneaky.text


def test_no_secret_in_any_quality_response(api: Api, run_id: int) -> None:
    api.assert_no_secrets()
