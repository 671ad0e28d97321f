"""A live ``flowforge serve`` (API and UI) on a loopback port, with an admin, an editor and a
viewer, attacked over HTTP as a stranger or an insider would."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowforge.core.context import Context
from flowforge.core.project import init_project

PASSWORDS = {"admin": "admin-Secret-111", "editor": "editor-Secret-222", "viewer": "viewer-Secret-333"}


class Client(httpx.Client):
    """An httpx client usable in ``with`` after it has already signed in."""

    def __enter__(self) -> Client:
        return self


@dataclass
class Server:
    base: str
    project: Path
    proc: subprocess.Popen[str]

    def client(self, role: str | None = None, **kwargs: Any) -> Client:
        """A client signed in as ``role`` with its session cookie (as a browser would be), or anonymous."""
        client = Client(base_url=self.base, timeout=30, **kwargs)
        if role is not None:
            answer = client.post("/api/v1/auth/login", json={"username": role, "password": PASSWORDS[role]})
            assert answer.status_code == 200, answer.text
        return client

    def token(self, role: str) -> dict[str, str]:
        with self.client() as client:
            answer = client.post("/api/v1/auth/login", json={"username": role, "password": PASSWORDS[role],
                                                            "issue_token": True})
            return {"Authorization": f"Bearer {answer.json()['token']}"}

    def same_origin(self) -> dict[str, str]:
        return {"Origin": self.base}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_project(root: Path) -> Path:
    init_project(root)
    with sqlite3.connect(root / "data" / "shop.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "ann"), (2, "bob")])
    with Context.open(root) as ctx:
        for role, password in PASSWORDS.items():
            ctx.users.create_user(role, password, role)  # type: ignore[arg-type]
        ctx.connections.save("shop", {"type": "sqlite", "path": "data/shop.db"})
    return root


def start(project: Path, env: dict[str, str] | None = None) -> Server:
    from tests.api.test_cli_serve import _wait_until_up

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--port", str(port),
                             "--log-level", "warning"], env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project)
    base = f"http://127.0.0.1:{port}"
    _wait_until_up(f"{base}/api/v1/health", proc)
    return Server(base, project, proc)


def stop(server: Server) -> str:
    server.proc.terminate()
    try:
        return server.proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        server.proc.kill()
        return server.proc.communicate()[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("sec") / "project")
    live = start(project)
    yield live
    output = stop(live)
    for password in PASSWORDS.values():
        assert password not in output, "a password reached the server's log"
