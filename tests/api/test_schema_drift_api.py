"""A column the source stops sending is shown dropped in the catalog API (and its values stay in
silver); the list of schema changes comes with the table."""

from __future__ import annotations

from tests.api.conftest import Api, wait_for_run


def test_catalog_marks_a_dropped_column(api: Api) -> None:
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    assert wait_for_run(api, run["id"])["status"] == "success"
    # a new file without the customer column: order 1 changes, order 9 is new
    (api.ctx.settings.project_dir / "data" / "orders_2.csv").write_text(
        "order_id,amount,updated_at\n1,25.00,2026-02-01 09:00:00\n9,7.50,2026-02-01 09:05:00\n", encoding="utf-8")
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    assert wait_for_run(api, run["id"])["status"] == "success"
    for table in ("bronze_orders", "silver_orders"):
        detail = api.get(f"/catalog/tables/{table}?sample=20", "viewer").json()
        customer = next(c for c in detail["columns"] if c["name"] == "customer")
        assert customer["dropped"] is True and customer["dropped_at"]
        assert not any(c.get("dropped") for c in detail["columns"] if c["name"] != "customer")
        assert [(e["column"], e["change"]) for e in detail["schema_changes"]] == [("customer", "dropped")]
    rows = {r["order_id"]: r for r in api.get("/catalog/tables/silver_orders?sample=20", "viewer").json()["sample"]}
    assert (rows[1]["customer"], rows[1]["amount"]) == ("alice", "25.00")  # kept, not NULLed by the update
    assert rows[9]["customer"] is None


def test_ingest_plan_of_a_workflow_that_lands_every_table(api: Api) -> None:
    import sqlite3

    with sqlite3.connect(api.ctx.settings.project_dir / "data" / "shop.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, modified_at TIMESTAMP)")
    db.close()
    yaml = "name: onboard\njobs:\n  - {name: land, kind: ingest, connection: shop, tables: \"*\"}\n"
    assert api.post("/workflows", "editor", json={"yaml": yaml}).status_code in (200, 201)
    rows = {r["source"]: r for r in api.get("/workflows/onboard/ingest-plan", "editor").json()}
    assert rows["items"] == {"job": "land", "source": "items", "target": "bronze_items", "keys": ["id"],
                             "delta_column": "modified_at", "load": "incremental on modified_at", "listed": False}
    assert api.get("/workflows/onboard/ingest-plan", "viewer").status_code == 403
    assert api.get("/workflows/nope/ingest-plan", "editor").status_code == 404
