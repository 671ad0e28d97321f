"""The API on PostgreSQL metadata (the team setup): users, workflows, a run and its stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_api, wait_for_run

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_api(tmp_path: Path, pg_database: str) -> Iterator[Api]:
    yield from make_api(tmp_path / "project", metadata_url=pg_database)


def test_round_trip_on_postgres_metadata(pg_api: Api) -> None:
    api = pg_api
    assert api.ctx.metadata.engine.dialect.name == "postgresql"
    assert api.get("/workflows", None).status_code == 401
    assert api.post("/workflows/example/pause", "viewer").status_code == 403
    assert [w["name"] for w in api.get("/workflows", "viewer").json()["data"]] == ["example"]
    tagged = (api.ctx.settings.workflows_path / "example.yml").read_text().replace("name: example",
                                                                                  "name: tagged\ntags: [eu, daily]")
    assert api.post("/workflows", "editor", json={"yaml": tagged}).status_code == 201
    assert [w["name"] for w in api.get("/workflows?tag=daily&search=TAG", "viewer").json()["data"]] == ["tagged"]
    assert api.get("/workflows?tag=dai", "viewer").json()["count"] == 0
    api.call("DELETE", "/workflows/tagged", "editor")
    assert api.post("/workflows/example/pause", "editor").json()["status"] == "paused"
    assert api.post("/runs", "editor", json={"workflow": "example"}).status_code == 400
    api.post("/workflows/example/resume", "editor")
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    events = [json.loads(data) for _, data in api.stream_events(run["id"])]
    assert events[-1]["status"] == "success"
    assert wait_for_run(api, run["id"])["status"] == "success"
    assert api.get("/runs?status=success", "viewer").json()[0]["id"] == run["id"]
    graph = api.get("/workflows/example/lineage", "viewer").json()
    assert {n["layer"] for n in graph["nodes"]} == {None, "bronze", "silver", "gold"}
    actions = {(e["actor"], e["action"]) for e in api.get("/audit", "admin").json()}
    assert ("editor", "workflow.status") in actions and ("test-setup", "user.create") in actions
    api.assert_no_secrets()


def test_console_history_and_catalog_docs_on_postgres_metadata(pg_api: Api) -> None:
    from flowforge.metadata.console import HISTORY_KEPT, ConsoleStore

    api = pg_api
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    assert wait_for_run(api, run["id"])["status"] == "success"
    store = ConsoleStore(api.ctx.metadata)
    for i in range(HISTORY_KEPT + 5):
        store.add_history("viewer", f"SELECT {i}", 1, None)
    kept = store.history("viewer", HISTORY_KEPT + 10)
    assert len(kept) == HISTORY_KEPT and kept[0].sql == f"SELECT {HISTORY_KEPT + 4}"
    answer = api.call("PUT", "/catalog/tables/silver_orders/docs", "editor",
                      json={"description": "orders, cleaned", "columns": {"amount": "EUR"}})
    assert answer.status_code == 200, answer.text
    assert api.get("/catalog/search?q=eur", "viewer").json()[0]["column"] == "amount"
