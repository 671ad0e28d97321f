"""``flowforge serve --workers N`` as an operator runs it: several API processes on one port, one
sign-in that every process honours, and one scheduler — scheduled slots are claimed by the serving
process alone, never by a worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import select
from tests.cli_helpers import init_project
from tests.waiting import eventually

from flowforge.core.context import Context
from flowforge.metadata.tables import fires

pytestmark = pytest.mark.slow
PASSWORD = "first-Admin-Pw1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": PASSWORD}
    return subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "serve", *args], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_workers_share_sign_in_and_run_exactly_one_scheduler(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    with (project / "workflows" / "example.yml").open("a") as fh:
        fh.write("triggers:\n  - {every: 1s}\n")
    port = _free_port()
    proc = _serve(project, "--no-ui", "--workers", "3", "--port", str(port), "--log-level", "warning")
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        assert eventually(lambda: _up(base), bool, attempts=600), "the server did not come up"
        workers = [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 3

        # a session cookie issued by one process is good in every one: new connections land on any worker
        with httpx.Client(base_url=base, timeout=30) as client:
            login = client.post("/auth/login", json={"username": "admin", "password": PASSWORD})
            assert login.status_code == 200
            cookies = dict(client.cookies)
        for _ in range(30):
            with httpx.Client(base_url=base, timeout=30, cookies=cookies) as fresh:
                assert fresh.get("/workflows").json()["data"][0]["name"] == "example"

        with Context.open(project) as ctx:
            def claimers() -> list[str]:
                with ctx.metadata.engine.connect() as conn:
                    return [str(c) for c in conn.execute(select(fires.c.claimed_by)).scalars()]

            claimed = eventually(claimers, lambda found: len(found) >= 4, attempts=900)
        assert len(claimed) >= 4
        # one scheduler: every slot was claimed by the same holder, in the serving process itself
        holders = {c.rsplit(":", 1)[0] for c in claimed}
        assert len(holders) == 1
        assert holders.pop().split(":")[1] == str(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0]
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in workers)


def test_workers_refuse_the_web_ui_with_a_reason(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    proc = _serve(project, "--workers", "2", "--port", str(_free_port()))
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2
    assert "--no-ui" in output
