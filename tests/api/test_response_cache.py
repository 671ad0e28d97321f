"""The hot read routes answer from kept bytes while nothing changed, and never after a change: a list or
a detail read right after a write (create, edit, pause, delete, a file edited on disk, a revoked
token, a changed role) shows the write, in one process or across ``--workers`` processes, on SQLite
and on PostgreSQL metadata."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api, make_api, wait_for_run
from tests.api.test_workflows_api import DAILY
from tests.waiting import eventually


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    yield from make_api(tmp_path / "project", metadata_url=url)


def _listed(api: Api, role: str = "viewer", query: str = "") -> dict[str, dict[str, object]]:
    response = api.get(f"/workflows{query}", role)
    assert response.status_code == 200
    return {w["name"]: w for w in response.json()["data"]}


def test_every_write_shows_in_the_next_read(fresh_api: Api) -> None:
    api = fresh_api
    for _ in range(3):  # asked again and again: the same answer, the same headers
        assert "daily_orders" not in _listed(api)
    again = api.get("/workflows", "viewer")
    assert again.headers["content-security-policy"].startswith("default-src 'none'")
    assert again.headers["content-type"] == "application/json"

    assert api.post("/workflows", "editor", json={"yaml": DAILY}).status_code == 201
    assert _listed(api)["daily_orders"]["description"] == "Orders, cleaned daily"
    assert api.get("/workflows/daily_orders", "viewer").json()["team"] == "sales"
    assert api.get("/workflows/daily_orders/lineage", "viewer").status_code == 200

    edited = api.call("PUT", "/workflows/daily_orders", "editor",
                      json={"yaml": DAILY.replace("Orders, cleaned daily", "Orders, twice a day")})
    assert edited.status_code == 200
    assert _listed(api)["daily_orders"]["description"] == "Orders, twice a day"
    assert api.get("/workflows/daily_orders", "viewer").json()["description"] == "Orders, twice a day"

    assert api.post("/workflows/daily_orders/pause", "editor").status_code == 200
    assert _listed(api)["daily_orders"]["status"] == "paused"
    assert _listed(api, query="?status=paused").keys() == {"daily_orders"}

    # the file edited on disk, not through FlowForge: the detail shows the new text at once
    path = api.ctx.settings.workflows_path / "daily_orders.yml"
    before = api.get("/workflows/daily_orders", "viewer").json()["yaml"]
    path.write_text(path.read_text() + "# edited by hand\n")
    assert api.get("/workflows/daily_orders", "viewer").json()["yaml"] == before + "# edited by hand\n"

    assert api.call("DELETE", "/workflows/daily_orders", "editor").status_code == 204
    assert "daily_orders" not in _listed(api)
    assert api.get("/workflows/daily_orders", "viewer").status_code == 404


def test_runs_read_right_after_a_run_and_a_setup_write(fresh_api: Api) -> None:
    api = fresh_api
    assert api.get("/runs", "viewer").json() == []
    assert api.get("/runs", "viewer").json() == []
    run = api.post("/runs", "editor", json={"workflow": "example"})
    assert run.status_code == 202
    run_id = run.json()["id"]
    assert [r["id"] for r in api.get("/runs", "viewer").json()] == [run_id]
    assert api.get(f"/runs/{run_id}/jobs", "viewer").json()["run"]["id"] == run_id
    finished = wait_for_run(api, run_id)
    assert api.get(f"/runs/{run_id}", "viewer").json()["status"] == finished["status"]
    assert [r["status"] for r in api.get("/runs", "viewer").json()] == [finished["status"]]


def test_a_revoked_token_or_a_lower_role_takes_effect_at_once(fresh_api: Api) -> None:
    api = fresh_api
    made = api.post("/users", json={"username": "temp", "password": "temp-Pass-123", "role": "editor"})
    assert made.status_code == 201
    token = api.post("/users/temp/tokens", json={"name": "t"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert api.get("/workflows", None, headers=headers).status_code == 200
    # the role changes: the next change the user tries is refused, and reads still answer
    assert api.call("PATCH", "/users/temp", json={"role": "viewer"}).status_code == 200
    assert api.get("/workflows", None, headers=headers).status_code == 200
    assert api.post("/workflows/example/pause", None, headers=headers).status_code == 403
    token_id = api.get("/users/temp/tokens").json()[-1]["id"]
    assert api.call("DELETE", f"/users/temp/tokens/{token_id}").status_code == 204
    assert api.get("/workflows", None, headers=headers).status_code == 401
    assert api.get("/runs", None, headers=headers).status_code == 401
    # a token revoked outside the API (the command line's own Context)
    other = api.post("/users/temp/tokens", json={"name": "t2"}).json()["token"]
    headers = {"Authorization": f"Bearer {other}"}
    assert api.get("/workflows", None, headers=headers).status_code == 200
    api.ctx.users.disable("temp")
    assert api.get("/workflows", None, headers=headers).status_code == 401
    assert api.get("/workflows", None).status_code == 401


def test_a_live_runs_page_shows_each_heartbeat_and_its_process_dying(fresh_api: Api) -> None:
    """A queued or running run's own pages change with no write a page could show (heartbeats are
    bookkeeping; a dead process is noticed by the clock): they are made afresh for every request."""
    from flowforge.runner.owner import host

    api = fresh_api
    api.ctx.workflows.get("example")  # registered
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    holder = f"{host()}:{child.pid}:0:test"
    try:
        run = api.ctx.metadata.start_run("example", "manual", "tester", owner=holder,
                                         expires_at=datetime.now(UTC) + timedelta(hours=1))
        first = api.get(f"/runs/{run.id}", "viewer")
        assert first.json()["status"] == "running"
        assert first.headers["cache-control"] == "no-store"
        assert api.get(f"/runs/{run.id}/jobs", "viewer").json()["run"]["status"] == "running"
        seen = first.json()["last_seen"]
        beat = datetime.now(UTC) + timedelta(minutes=5)
        api.ctx.metadata.leases.renew(holder, [], [run.id], timeout=60, now=beat)
        assert api.get(f"/runs/{run.id}", "viewer").json()["last_seen"] != seen
        assert api.get(f"/runs/{run.id}/jobs", "viewer").json()["run"]["last_seen"] != seen
    finally:
        child.kill()
        child.wait()
    assert api.get(f"/runs/{run.id}/jobs", "viewer").json()["run"]["status_label"] == "failed (abandoned)"
    ended = api.get(f"/runs/{run.id}", "viewer")
    assert ended.json()["status_label"] == "failed (abandoned)"
    assert "cache-control" not in ended.headers  # an ended run no longer changes: its pages are kept


def test_bookkeeping_writes_leave_kept_answers_and_every_other_write_replaces_them(fresh_api: Api) -> None:
    """A token's last use and a run's heartbeat change nothing a kept answer shows, so they leave the
    generation as it is; any other committed write, even SQL the store does not build, changes it."""
    from flowforge.metadata.generation import Generation

    api = fresh_api
    generation = Generation(api.ctx.metadata.engine)
    try:
        api.ctx.workflows.get("example")
        token = api.ctx.users.create_token("viewer", "fresh")
        run = api.ctx.metadata.start_run("example", "manual", "tester", owner="elsewhere:1:1:x",
                                         expires_at=datetime.now(UTC) + timedelta(hours=1))
        before = generation.current()
        assert before is not None
        assert api.ctx.users.verify_token(token) is not None  # its first use is stamped on the token
        assert api.ctx.metadata.users.tokens("viewer")[-1].last_used_at is not None
        api.ctx.metadata.leases.renew("elsewhere:1:1:x", [], [run.id], timeout=60)
        assert generation.current() == before

        assert api.get("/workflows/example", "viewer").json()["description"] != "changed by hand"
        with api.ctx.metadata.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE workflows SET description = 'changed by hand' WHERE name = 'example'")
        assert generation.current() != before
        assert api.get("/workflows/example", "viewer").json()["description"] == "changed by hand"
    finally:
        generation.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_worker_processes_never_answer_from_before_a_write(backend: str, tmp_path: Path,
                                                               request: pytest.FixtureRequest) -> None:
    from flowforge.core.context import Context
    from flowforge.core.project import init_project
    from flowforge.settings import Settings

    project = tmp_path / "p"
    init_project(project)
    if backend == "postgresql":
        url = request.getfixturevalue("pg_database")
        (project / "flowforge.yml").write_text((project / "flowforge.yml").read_text() + f"\nmetadata_url: {url}\n")
    ctx = Context(Settings.load(project))
    ctx.users.create_user("admin", "first-Admin-Pw1", "admin")
    token = ctx.users.create_token("admin", "t")
    ctx.close()
    port = _free_port()
    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": "first-Admin-Pw1"}
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--no-ui",
                             "--no-scheduler", "--workers", "2", "--port", str(port), "--log-level", "warning"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/v1"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    headers = {"Authorization": f"Bearer {token}"}

    def names() -> set[str]:  # a new connection each time: the answers come from both workers
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            return {w["name"] for w in client.get("/workflows").json()["data"]}

    try:
        assert eventually(up, bool, attempts=600), "the server did not come up"
        for _ in range(20):
            assert "daily_orders" not in names()
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            assert client.post("/workflows", json={"yaml": DAILY}).status_code == 201
        for _ in range(20):
            assert "daily_orders" in names()
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            assert client.delete("/workflows/daily_orders").status_code == 204
        for _ in range(20):
            assert "daily_orders" not in names()
        # a write by another process (the command line) that changes no file: both workers see it next
        for _ in range(20):
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                assert client.get("/workflows/example").json()["status"] == "active"
        cli = Context(Settings.load(project))
        cli.workflows.pause("example")
        cli.close()
        statuses = set()
        for _ in range(20):
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                statuses.add(client.get("/workflows/example").json()["status"])
        assert statuses == {"paused"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_pages_nobody_has_seen_are_made_a_few_at_a_time(fresh_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty different pages asked at once: at most ``BUILDS`` are being made at any moment (twenty
    threads at once shared the interpreter's lock twenty ways, and each took as long as the slowest),
    and every one is answered."""
    import asyncio
    import threading
    import time

    from flowforge.api.response_cache import BUILDS
    from flowforge.core.workflows import WorkflowService

    real = WorkflowService.get
    lock = threading.Lock()
    now = most = 0

    def slow_get(self: WorkflowService, name: str) -> object:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        try:
            time.sleep(0.05)
            return real(self, name)
        finally:
            with lock:
                now -= 1

    monkeypatch.setattr(WorkflowService, "get", slow_get)
    headers = {"Authorization": f"Bearer {fresh_api.tokens['viewer']}"}

    async def ask() -> list[int]:
        transport = httpx.ASGITransport(app=fresh_api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as client:
            answers = await asyncio.gather(*(client.get(f"/api/v1/workflows/example?page={i}") for i in range(20)))
        return [a.status_code for a in answers]

    assert asyncio.run(ask()) == [200] * 20
    assert 1 <= most <= BUILDS


def test_a_new_workflow_file_opened_by_many_at_once_is_registered_once(fresh_api: Api) -> None:
    """A file nobody has opened yet, asked by ten requests at the same moment: each gets the page (on
    PostgreSQL two of them inserting it at once made the second fail on the name's unique key)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from flowforge.metadata.tables import workflows

    api = fresh_api
    path = api.ctx.settings.workflows_path / "example.yml"
    fresh = path.with_name("fresh_arrival.yml")
    fresh.write_text(path.read_text().replace("name: example", "name: fresh_arrival", 1))
    viewer = api.ctx.as_user(api.ctx.users.verify_token(api.tokens["viewer"]))
    with ThreadPoolExecutor(10) as pool:
        pages = list(pool.map(lambda _: viewer.workflows.get("fresh_arrival"), range(10)))
    assert {page.name for page in pages} == {"fresh_arrival"}
    with api.ctx.metadata.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(workflows.c.name == "fresh_arrival")).scalar() == 1


def _aged(api: Api, layer: str, table: str) -> None:
    """The table's log folder as a minute after its last commit (a kept catalog answer may hold)."""
    import time

    log = os.path.join(api.ctx.store.location(layer, table), "_delta_log")
    past = time.time() - 60
    os.utime(log, (past, past))


@pytest.fixture
def catalog_lists(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry each time the catalog's table list is made (not served as kept)."""
    from flowforge.core.catalog_docs import CatalogService

    made: list[str] = []
    listing = CatalogService.tables

    def counted(self: CatalogService, layer: str | None = None) -> object:
        made.append("list")
        return listing(self, layer)

    monkeypatch.setattr(CatalogService, "tables", counted)
    return made


def test_catalog_answers_are_kept_until_a_table_commits_or_its_docs_change(
        fresh_api: Api, catalog_lists: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from flowforge.storage import summaries

    monkeypatch.setattr(summaries, "LAKE_CHECK", 0.0)  # a writer other than FlowForge: seen at the next look
    api = fresh_api

    def catalog() -> dict[str, tuple[int, int]]:
        response = api.get("/catalog/tables", "viewer")
        assert response.status_code == 200
        return {t["name"]: (t["rows"], t["version"]) for t in response.json()}

    store = api.ctx.store
    store.append("silver", "accounts", pa.table({"id": [1, 2], "balance": [10.0, 20.0]}), {})
    store.append("gold", "c360", pa.table({"id": [1]}), {})
    # just committed: the answer cannot be kept (a second commit could leave the folder's time as it is)
    assert catalog() == {"accounts": (2, 0), "c360": (1, 0)}
    store.append("silver", "accounts", pa.table({"id": [3], "balance": [5.0]}), {})
    assert catalog() == {"accounts": (3, 1), "c360": (1, 0)}
    assert len(catalog_lists) == 2
    for layer, name in (("silver", "accounts"), ("gold", "c360")):
        _aged(api, layer, name)
    for _ in range(3):
        assert catalog() == {"accounts": (3, 1), "c360": (1, 0)}
    assert len(catalog_lists) == 3  # made once, then served as kept
    # a commit shows in the next read
    store.append("gold", "c360", pa.table({"id": [2, 3]}), {})
    assert catalog()["c360"] == (3, 1)
    # a description written through the API shows in the table's docs and in search
    assert api.get("/catalog/search?q=ledger", "viewer").json() == []
    _aged(api, "gold", "c360")
    assert api.get("/catalog/tables/accounts/docs", "viewer").json()["description"] == ""
    put = api.call("PUT", "/catalog/tables/accounts/docs", "editor", json={"description": "Ledger accounts"})
    assert put.status_code == 200
    assert api.get("/catalog/tables/accounts/docs", "viewer").json()["description"] == "Ledger accounts"
    assert [h["table"] for h in api.get("/catalog/search?q=ledger", "viewer").json()] == ["accounts"]
    # a table removed by hand is gone from the next list
    import shutil

    shutil.rmtree(store.location("gold", "c360"))
    assert catalog() == {"accounts": (3, 1)}
    assert api.get("/catalog/tables/c360/docs", "viewer").status_code == 404


def test_a_flowforge_run_shows_in_the_catalog_at_once(fresh_api: Api, catalog_lists: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # the lake is looked at once here: what shows the run's commit is the run's own records
    import sqlite3

    from flowforge.storage import summaries

    monkeypatch.setattr(summaries, "LAKE_CHECK", 3600.0)
    api = fresh_api

    def products() -> tuple[int, int]:
        found = {t["name"]: (t["rows"], t["version"]) for t in api.get("/catalog/tables", "viewer").json()}
        return found["bronze_products"]

    assert api.ctx.ingest("shop", table="products").status == "success"
    _aged(api, "bronze", "bronze_products")
    assert products() == products() == (2, 0)
    assert len(catalog_lists) == 1  # kept
    with sqlite3.connect(api.ctx.settings.project_dir / "data" / "shop.db") as db:
        db.execute("INSERT INTO products VALUES (3, 'pie', 3.0)")
    assert api.ctx.ingest("shop", table="products").status == "success"
    rows, version = products()
    assert version == 1 and rows >= 3
