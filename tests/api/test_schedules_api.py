"""The API of schedules and run control: triggers with their next fire times, refusal of a bad
expression, cancel of a queued run, rerun and rerun-from-failure, backfills, alert channels without
their secrets, and /metrics (Prometheus text, for signed-in users or tokens only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowforge.api import create_app
from flowforge.runner.leases import LeaseKeeper, workflow_lease
from tests.api.conftest import Api, make_api, wait_for_run
from tests.waiting import eventually

HOOK_TOKEN = "XOXB-hook-token-never-returned"
FLAKY = """\
name: flaky
jobs:
  - name: base
    kind: gold
    tables: [{target: gold_base, sql: "SELECT 1 AS x"}]
  - name: broken
    kind: gold
    tables: [{target: gold_broken, sql: "SELECT x, SQL_BROKEN FROM gold_base"}]
  - name: after_broken
    kind: gold
    tables: [{target: gold_after, sql: "SELECT * FROM gold_broken"}]
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from make_api(tmp_path_factory.mktemp("sched_api"))


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/{HOOK_TOKEN}", received
    server.shutdown()


def test_triggers_show_their_next_fire_times_and_bad_ones_are_refused(api: Api) -> None:
    body = {"triggers": [{"cron": "0 6 * * 1-5", "timezone": "Europe/Berlin"}, {"every": "15m", "catchup": "all"}],
            "concurrency": "skip"}
    saved = api.call("PUT", "/workflows/example/triggers", "editor", json=body)
    assert saved.status_code == 200, saved.text
    cron = next(t for t in saved.json() if t["kind"] == "cron")
    assert cron["description"] == "cron 0 6 * * 1-5 (Europe/Berlin)" and len(cron["next_fires"]) == 5
    assert all(t.endswith(("T04:00:00Z", "T05:00:00Z")) for t in cron["next_fires"])  # 06:00 CEST or CET
    listed = api.get("/workflows", "viewer").json()["data"]
    assert next(w for w in listed if w["name"] == "example")["triggers"] == [
        "cron 0 6 * * 1-5 (Europe/Berlin)", "every 15m"]
    detail = api.get("/workflows/example", "viewer").json()
    assert detail["concurrency"] == "skip" and detail["triggers"] == ["cron 0 6 * * 1-5 (Europe/Berlin)", "every 15m"]
    bad = api.call("PUT", "/workflows/example/triggers", "editor", json={"triggers": [{"cron": "banana"}]})
    assert bad.status_code == 422 and "'banana' is not a cron expression" in bad.json()["detail"]
    preview = api.post("/schedules/preview", "viewer", json={"trigger": {"every": "90m"}, "count": 3}).json()
    assert preview["description"] == "every 90m" and len(preview["next_fires"]) == 3
    nothing = api.post("/schedules/preview", "viewer", json={"trigger": {"bogus": 1}})
    assert nothing.status_code == 422 and "exactly one of: cron, every" in nothing.json()["detail"]
    api.call("PUT", "/workflows/example/triggers", "editor", json={"triggers": [], "concurrency": "queue"})


def test_rerun_from_failure_runs_the_failed_job_and_what_depends_on_it(api: Api) -> None:
    assert api.post("/workflows", "editor", json={"yaml": FLAKY}).status_code == 201
    first = wait_for_run(api, api.post("/runs", "editor", json={"workflow": "flaky"}).json()["id"])
    assert first["status"] == "partial"
    api.call("PUT", "/workflows/flaky", "editor", json={"yaml": FLAKY.replace(", SQL_BROKEN", "")})
    again = api.post(f"/runs/{first['id']}/rerun", "editor", json={"from_failure": True})
    assert again.status_code == 202
    second = wait_for_run(api, again.json()["id"])
    assert second["status"] == "success" and second["parent_run_id"] == first["id"]
    assert second["trigger"] == "rerun" and second["jobs_selected"] == ["broken", "after_broken"]
    jobs = api.get(f"/runs/{second['id']}/jobs", "viewer").json()["jobs"]
    assert [j["job"] for j in jobs] == ["broken", "after_broken"]
    nothing_failed = api.post(f"/runs/{second['id']}/rerun", "editor", json={"from_failure": True})
    assert nothing_failed.status_code == 409 and "no failed job" in nothing_failed.json()["detail"]
    whole = wait_for_run(api, api.post(f"/runs/{first['id']}/rerun", "editor", json={}).json()["id"])
    assert whole["status"] == "success" and whole["jobs_selected"] is None


def test_a_queued_run_is_cancelled_through_the_api(api: Api) -> None:
    ctx = api.ctx
    keeper = LeaseKeeper(ctx.metadata, timeout=30)  # another run holds the workflow
    assert keeper.try_acquire([workflow_lease("flaky")]).acquired
    try:
        queued = api.post("/runs", "editor", json={"workflow": "flaky"}).json()
        assert queued["status"] == "queued"
        response = api.post(f"/runs/{queued['id']}/cancel", "editor")
        assert response.status_code == 202 and response.json()["cancel_requested"] is True
        ended = eventually(lambda: api.get(f"/runs/{queued['id']}", "viewer").json(),
                           lambda r: r["status"] == "cancelled")
        assert ended["status"] == "cancelled"
    finally:
        keeper.close()
    again = api.post(f"/runs/{queued['id']}/cancel", "editor")
    assert again.status_code == 409 and "not running" in again.json()["detail"]
    filtered = api.get("/runs?status=cancelled&trigger=api", "viewer").json()
    assert [r["id"] for r in filtered] == [queued["id"]]


def test_backfill_queues_one_fire_per_slot(api: Api) -> None:
    api.call("PUT", "/workflows/flaky/triggers", "editor", json={"triggers": [{"every": "6h"}]})
    response = api.post("/workflows/flaky/backfill", "editor",
                        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"})
    assert response.status_code == 202, response.text
    assert [f["slot"] for f in response.json()["queued"]] == [
        "2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T18:00:00Z",
        "2026-01-02T00:00:00Z"]
    fires = api.get("/fires?workflow=flaky", "viewer").json()
    assert len(fires) == 5 and {f["status"] for f in fires} == {"pending"} and {f["kind"] for f in fires} == {
        "backfill"}
    repeat = api.post("/workflows/flaky/backfill", "editor",
                      json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T12:00:00Z"}).json()
    assert repeat["queued"] == [] and len(repeat["already"]) == 3


def test_alert_channels_never_return_their_secret(api: Api, hook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = hook
    saved = api.call("PUT", "/alert-channels/ops", "editor", json={"type": "webhook", "url": url, "format": "json",
                                                                    "events": ["failure"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["where"].startswith("json webhook to http://127.0.0.1") and HOOK_TOKEN not in saved.text
    tested = api.post("/alert-channels/ops/test", "editor")
    assert tested.status_code == 200 and tested.json()["result"] == "HTTP 204"
    assert received[-1]["event"] == "test"
    bad = api.call("PUT", "/alert-channels/evil", "editor", json={"type": "webhook", "url": "file:///etc/passwd"})
    assert bad.status_code == 400 and "https:// or http://" in bad.json()["detail"]
    failed = wait_for_run(api, api.post("/runs", "editor", json={"workflow": "flaky"}).json()["id"])
    api.call("PUT", "/workflows/flaky", "editor", json={"yaml": FLAKY})
    failed = wait_for_run(api, api.post("/runs", "editor", json={"workflow": "flaky"}).json()["id"])
    assert failed["status"] == "partial"
    alerts = eventually(lambda: api.get(f"/runs/{failed['id']}/jobs", "viewer").json()["alerts"],
                        lambda found: found and all(a["status"] != "sending" for a in found))
    assert [(a["channel"], a["event"], a["status"]) for a in alerts] == [("ops", "failure", "sent")]
    assert received[-1]["event"] == "failure" and received[-1]["run_id"] == failed["id"]
    assert all(HOOK_TOKEN not in b for b in api.bodies)


def test_metrics_need_a_token_and_count_runs(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    token = api.tokens["viewer"]
    response = api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    api.bodies.append(text)
    assert 'flowforge_runs_total{workflow="flaky",status="partial"}' in text
    assert "# TYPE flowforge_job_duration_seconds summary" in text
    assert 'flowforge_job_duration_seconds_count{workflow="flaky",job="base"}' in text
    assert "flowforge_lease_takeovers_total 0" in text and "flowforge_scheduler_lag_seconds_count" in text
    assert 'flowforge_alerts_total{status="sent"}' in text and HOOK_TOKEN not in text
    public = create_app(api.ctx.settings.model_copy(update={"metrics_public": True}), api.ctx)
    with TestClient(public) as client:
        assert client.get("/metrics").status_code == 200


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()

