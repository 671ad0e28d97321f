"""``POST /api/v1/runs`` with ``full_refresh`` and ``select``: the tables are rebuilt in overwrite
commits (history kept), bad selections are refused before anything runs (issue 11)."""

from __future__ import annotations

from deltalake import DeltaTable

from tests.api.conftest import Api, wait_for_run


def test_full_refresh_through_the_api(api: Api) -> None:
    first = api.post("/runs", "editor", json={"workflow": "example"})
    assert first.status_code == 202, first.text
    assert wait_for_run(api, first.json()["id"])["status"] == "success"
    bronze = api.ctx.store.location("bronze", "bronze_orders")
    silver = api.ctx.store.location("silver", "silver_orders")
    rows = DeltaTable(silver).to_pyarrow_table().num_rows

    refreshed = api.post("/runs", "editor", json={"workflow": "example", "full_refresh": True,
                                                  "select": ["bronze_orders"]})
    assert refreshed.status_code == 202, refreshed.text
    assert wait_for_run(api, refreshed.json()["id"])["status"] == "success"
    for location in (bronze, silver):
        dt = DeltaTable(location)
        assert dt.history(1)[0]["operationParameters"]["mode"] == "Overwrite"
        assert dt.to_pyarrow_table().num_rows == rows
        assert DeltaTable(location, version=0).to_pyarrow_table().num_rows == rows, "time travel still works"

    unknown = api.post("/runs", "editor", json={"workflow": "example", "full_refresh": True, "select": ["nope"]})
    assert unknown.status_code == 422 and "writes no table(s) nope" in unknown.text
    alone = api.post("/runs", "editor", json={"workflow": "example", "select": ["bronze_orders"]})
    assert alone.status_code == 422 and "--full-refresh" in alone.text
    assert api.post("/runs", "viewer", json={"workflow": "example", "full_refresh": True}).status_code == 403
    api.assert_no_secrets()
