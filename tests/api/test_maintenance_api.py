"""The CDC reset and table maintenance routes: roles, audit, and what they do to the lakehouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.api.conftest import Api, make_api
from tests.integration.test_cdc_debezium_edges import event


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("maintenance_api")
    for found in make_api(root / "project"):
        events = root / "project" / "data" / "events"  # under the project's data root
        events.mkdir()
        (events / "a.jsonl").write_text("\n".join(
            event("c", i + 1, None, {"id": i, "name": "x", "notes": None}) for i in range(3)) + "\n")
        found.ctx.connections.save("events", {"type": "debezium", "path": str(events)})
        wf = {"name": "cdc", "jobs": [
            {"name": "items_cdc", "kind": "cdc", "connection": "events", "files": "*.jsonl", "target": "bronze_items",
             "tables": [{"target": "items", "keys": ["id"]}]},
            {"name": "land", "kind": "ingest", "connection": "shop",
             "tables": [{"table": "products", "target": "bronze_products"}]}]}
        (root / "project" / "workflows" / "cdc.yml").write_text(yaml.safe_dump(wf))
        assert found.ctx.run("cdc").status == "success"
        yield found


def test_reset_needs_an_editor_names_what_it_did_and_is_audited(api: Api) -> None:
    url = "/workflows/cdc/jobs/items_cdc/cdc/reset"
    assert api.post(url, "viewer").status_code == 403
    assert api.post(url, None).status_code == 401
    done = api.post(url, "editor")
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["workflow"], body["job"], body["target"]) == ("cdc", "items_cdc", "bronze_items")
    assert body["previous"] == {"files": body["previous"]["files"]} and "a.jsonl" in body["previous"]["files"]
    assert "flowforge run cdc" in body["message"]
    audit = api.get("/audit?action=cdc.reset", "admin").json()
    assert [(a["actor"], a["object_id"]) for a in audit] == [("editor", "cdc.items_cdc")]
    # the next run reads every file again; events already in bronze are not stored twice
    assert api.ctx.run("cdc").status == "success"
    assert api.ctx.query("SELECT count(*) AS n FROM bronze_items WHERE _op = 'c'").to_pylist() == [{"n": 3}]
    assert api.ctx.query("SELECT count(*) AS n FROM items").to_pylist() == [{"n": 3}]


def test_reset_refuses_a_job_that_is_not_cdc_and_an_unknown_one(api: Api) -> None:
    wrong = api.post("/workflows/cdc/jobs/land/cdc/reset", "editor")
    assert wrong.status_code == 400 and "not a cdc job" in wrong.json()["detail"]
    assert api.post("/workflows/cdc/jobs/nope/cdc/reset", "editor").status_code == 404
    assert api.post("/workflows/nope/jobs/items_cdc/cdc/reset", "editor").status_code == 404


def test_optimize_for_editors_vacuum_for_admins(api: Api, tmp_path: Path) -> None:
    assert api.post("/maintenance/optimize", "viewer", json={"tables": ["items"]}).status_code == 403
    done = api.post("/maintenance/optimize", "editor", json={"tables": ["items", "bronze_items"]})
    assert done.status_code == 200, done.text
    assert {d["table"] for d in done.json()} == {"items", "bronze_items"}
    assert api.post("/maintenance/vacuum", "editor", json={}).status_code == 403
    bad = api.post("/maintenance/vacuum", "admin", json={"retention": "5m"})
    assert bad.status_code == 400 and "below the minimum" in bad.json()["detail"]
    vacuumed = api.post("/maintenance/vacuum", "admin", json={"tables": ["items"], "dry_run": True})
    assert vacuumed.status_code == 200 and vacuumed.json()[0]["action"] == "vacuum"
    assert api.post("/maintenance/optimize", "editor", json={"tables": ["nope"]}).status_code == 404


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()
