"""Connections (write-only secrets, viewer sees host and database only) and templates through the API."""

from __future__ import annotations

import pytest

from tests.api.conftest import PG_PASSWORD, Api

VIEWER_FIELDS = {"name", "kind", "host", "database", "path"}


def test_viewer_sees_only_kind_host_and_database(api: Api) -> None:
    for item in api.get("/connections", "viewer").json():
        assert set(item) == VIEWER_FIELDS
    warehouse = api.get("/connections/warehouse", "viewer").json()
    assert warehouse == {"name": "warehouse", "kind": "postgres", "host": "127.0.0.1", "database": "postgres",
                         "path": None}
    editor_view = api.get("/connections/warehouse", "editor").json()
    assert editor_view["options"]["user"] == "postgres" and editor_view["port"] == 5432
    assert "password" not in editor_view["options"]


def test_secrets_are_write_only(api: Api) -> None:
    created = api.post("/connections", "editor", json={
        "name": "crm_db", "type": "postgres", "url": f"postgresql://crm:{PG_PASSWORD}@db.example:5433/crm"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["host"], body["port"], body["database"]) == ("db.example", 5433, "crm")
    assert PG_PASSWORD not in created.text and "crm:" not in created.text
    record = api.ctx.metadata.get_connection("crm_db")
    assert record is not None and record.secret and PG_PASSWORD not in record.secret  # encrypted at rest
    audit = api.get("/audit?object_type=connection", "editor").json()
    assert any(e["object_id"] == "crm_db" and e["actor"] == "editor" for e in audit)
    assert api.call("DELETE", "/connections/crm_db", "editor").status_code == 204
    assert api.get("/connections/crm_db", "viewer").status_code == 404


def test_explore_a_source(api: Api) -> None:
    assert api.post("/connections/shop/test", "editor").json()["ok"] is True
    tables = api.get("/connections/shop/tables", "editor").json()
    assert [t["name"] for t in tables] == ["products"]
    schema = api.get("/connections/shop/schema?table=products", "editor").json()
    assert (schema[0]["name"], schema[0]["primary_key"]) == ("id", True)
    preview = api.get("/connections/shop/preview?table=products&limit=1", "editor").json()
    assert preview["count"] == 1 and preview["rows"][0]["name"] == "tea"


def test_explore_files_of_a_files_connection(api: Api) -> None:
    data = api.ctx.settings.resolve_path("data")
    with open(f"{data}/ledger.asc", "w", encoding="utf-8") as fh:
        fh.write("entry;amount\n1;2.50\n2;?\n")
    names = [t["name"] for t in api.get("/connections/local_files/tables", "editor").json()]
    assert "ledger.asc" in names and "orders.csv" in names
    dialect = api.get("/connections/local_files/dialect?table=ledger.asc", "editor").json()
    assert dialect["sniffed"]["delimiter"] == ";" and dialect["configured"]["delimiter"] == ","
    assert dialect["sniffed"]["null_values"] == ["?"]
    refused = api.get("/connections/local_files/schema?table=ledger.asc", "editor")
    assert refused.status_code >= 400 and "with ';' it has 2 columns" in refused.text
    schema = api.get("/connections/local_files/schema?table=orders.csv", "editor").json()
    assert [c["name"] for c in schema] == ["order_id", "customer", "amount", "updated_at"]
    preview = api.get("/connections/local_files/preview?table=orders.csv&limit=2", "editor").json()
    assert [r["customer"] for r in preview["rows"]] == ["alice", "bob"]
    assert api.get("/connections/shop/dialect?table=products", "editor").json() is None


def test_a_failing_connection_test_says_why_without_the_password(api: Api) -> None:
    api.post("/connections", "editor", json={"name": "unreachable", "type": "postgres",
                                             "options": {"host": "127.0.0.1", "port": 1, "database": "x",
                                                         "user": "u"}, "password": PG_PASSWORD})
    failed = api.post("/connections/unreachable/test", "editor")
    assert failed.status_code == 502 and failed.json()["detail"]
    refused = api.post("/connections", "editor", json={"name": "never_saved", "type": "postgres", "test": True,
                                                       "options": {"host": "127.0.0.1", "port": 1, "database": "x",
                                                                   "user": "u"}, "password": PG_PASSWORD})
    assert refused.status_code == 502
    assert api.get("/connections/never_saved", "editor").status_code == 404


@pytest.mark.postgres
def test_connection_test_against_the_real_server(api: Api, pg_server: str) -> None:
    result = api.post("/connections/warehouse/test", "editor")
    assert result.status_code == 200 and result.json()["ok"] is True and result.json()["server_version"]


def test_templates_filter_and_detail(api: Api) -> None:
    assert [t["name"] for t in api.get("/templates?industry=bfsi", "viewer").json()] == ["bfsi_customer_360"]
    assert api.get("/templates?industry=healthcare", "viewer").json() == []
    assert api.get("/templates?category=customer-analytics", "viewer").json()[0]["industry"] == "bfsi"
    detail = api.get("/templates/bfsi_customer_360", "viewer").json()
    assert "workflow_name" in detail["parameters"] and "gold_customer_360" in detail["workflow_yaml"]
    assert api.get("/templates/nope", "viewer").status_code == 404


def test_instantiate_bfsi_with_parameters(api: Api) -> None:
    made = api.post("/templates/bfsi_customer_360/instantiate", "editor", json={
        "params": {"workflow_name": "c360_pilot", "core_connection": "warehouse", "crm_connection": "local_files",
                   "crm_file": "crm/*.csv", "team": "risk", "environment": "staging"},
        "tags": ["bfsi", "pilot"],
        "tables": {"gold_customer_360": "gold_c360_pilot", "silver_accounts": "silver_pilot_accounts"}})
    assert made.status_code == 201, made.text
    wf = made.json()
    assert (wf["name"], wf["team"], wf["environment"], wf["tags"]) == ("c360_pilot", "risk", "staging",
                                                                        ["bfsi", "pilot"])
    assert [j["name"] for j in wf["jobs"]] == ["ingest_core_banking", "ingest_crm", "build_silver_customer_master",
                                               "build_gold_customer_360"]
    jobs = {j["name"]: j for j in wf["jobs"]}
    assert jobs["ingest_core_banking"]["spec"]["connection"] == "warehouse"
    assert jobs["build_gold_customer_360"]["outputs"] == ["gold_c360_pilot"]
    assert "silver_pilot_accounts" in jobs["build_gold_customer_360"]["inputs"]
    assert "silver_accounts" not in jobs["build_gold_customer_360"]["inputs"]
    assert jobs["ingest_crm"]["spec"]["tables"][0]["files"] == "crm/*.csv"
    again = api.post("/templates/bfsi_customer_360/instantiate", "editor",
                     json={"params": {"workflow_name": "c360_pilot"}})
    assert again.status_code == 400
    bad = api.post("/templates/bfsi_customer_360/instantiate", "editor",
                   json={"params": {"workflow_name": "c360_x"}, "tables": {"nope": "x"}})
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    entry = api.get("/audit?action=template.", "editor").json()[0]
    assert entry["actor"] == "editor" and entry["after"]["template"] == "bfsi_customer_360"


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()
