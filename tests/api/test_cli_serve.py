"""``flowforge users`` and ``flowforge serve`` as an operator meets them: no default password,
the first admin from FLOWFORGE_ADMIN_PASSWORD, then a real server on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from flowforge.cli.main import app
from flowforge.core.context import Context
from flowforge.core.project import init_project

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    init_project(tmp_path / "p")
    return tmp_path / "p"


def test_users_create_and_token(project: Path) -> None:
    made = runner.invoke(app, ["-p", str(project), "users", "create", "alice", "--role", "editor",
                               "--password-stdin"], input="alice-Pass-123\n")
    assert made.exit_code == 0, made.output
    token = runner.invoke(app, ["-p", str(project), "users", "token", "alice"])
    assert token.exit_code == 0
    value = token.output.strip().splitlines()[-1]
    with Context.open(project) as ctx:
        user = ctx.users.verify_token(value)
        assert user is not None and (user.username, user.role) == ("alice", "editor")
        assert ctx.users.authenticate("alice", "alice-Pass-123") is not None
    listed = runner.invoke(app, ["-p", str(project), "users", "list"])
    assert "alice" in listed.output and "alice-Pass" not in listed.output
    short = runner.invoke(app, ["-p", str(project), "users", "create", "bob", "--password-stdin"], input="x\n")
    assert short.exit_code == 1 and "too short" in short.output


def test_serve_refuses_to_start_without_an_admin_password(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWFORGE_ADMIN_PASSWORD"}
    result = subprocess.run([sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--no-ui",
                             "--port", str(_free_port())], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "FLOWFORGE_ADMIN_PASSWORD" in result.stdout + result.stderr
    with Context.open(project) as ctx:
        assert not ctx.users.has_users()


def test_serve_creates_the_first_admin_and_serves_the_api(project: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": "first-Admin-Pw1"}
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--no-ui",
                             "--port", str(port), "--log-level", "warning"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        _wait_until_up(f"{base}/health", proc)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/workflows").status_code == 401
            login = client.post("/auth/login", json={"username": "admin", "password": "first-Admin-Pw1",
                                                     "issue_token": True})
            assert login.status_code == 200 and login.json()["user"]["role"] == "admin"
            assert client.get("/workflows").json()["data"][0]["name"] == "example"  # via the session cookie
            token = login.json()["token"]
        with httpx.Client(base_url=base, timeout=10) as client:
            me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["username"] == "admin"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "first-Admin-Pw1" not in output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.communicate()[0]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"server did not answer {url} in {timeout}s")


def test_a_paused_workflow_runs_only_when_forced(project: Path) -> None:
    with Context.open(project) as ctx:
        ctx.workflows.pause("example")
    refused = runner.invoke(app, ["-p", str(project), "run", "example"])
    assert refused.exit_code == 1 and "paused" in refused.output
    forced = runner.invoke(app, ["-p", str(project), "run", "example", "--force"])
    assert forced.exit_code == 0, forced.output
