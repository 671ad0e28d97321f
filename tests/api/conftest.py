"""An API harness on a real project (SQLite metadata, local Delta lakehouse) with one user per role.

Every response body is recorded, so each module ends with a sweep asserting that no stored
secret (connection password, its ciphertext, password hashes, token hashes, the tokens
created outside the API) ever appeared in any response.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowforge.api import create_app
from flowforge.core.context import Context
from flowforge.core.project import init_project
from flowforge.settings import Settings

ROLES = ("viewer", "editor", "admin")
PASSWORDS = {"admin": "admin-Pass-0001", "editor": "editor-Pass-0002", "viewer": "viewer-Pass-0003"}
PG_PASSWORD = "S3cret-pg-Pw!-never-shown"


@dataclass
class Api:
    client: TestClient
    ctx: Context
    tokens: dict[str, str]
    bodies: list[str] = field(default_factory=list)

    def call(self, method: str, url: str, role: str | None = "admin", **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        self.client.cookies.clear()
        response = self.client.request(method, f"/api/v1{url}", headers=headers, **kwargs)
        self.bodies.append(response.text)
        self.bodies.append(str(response.headers))
        return response

    def get(self, url: str, role: str | None = "admin", **kwargs: Any) -> Any:
        return self.call("GET", url, role, **kwargs)

    def post(self, url: str, role: str | None = "admin", **kwargs: Any) -> Any:
        return self.call("POST", url, role, **kwargs)

    def stream_events(self, run_id: int, role: str = "viewer") -> list[tuple[str, str]]:
        """(event, data) pairs of a run's SSE stream, read to its end."""
        events: list[tuple[str, str]] = []
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        with self.client.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in response.iter_lines():
                self.bodies.append(line)
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, line.removeprefix("data: ")))
        return events

    def stored_secrets(self) -> set[str]:
        """Everything that must never leave the server."""
        from flowforge.metadata.tables import api_tokens, connections, sessions, users

        found = {PG_PASSWORD, *PASSWORDS.values(), *self.tokens.values()}
        with self.ctx.metadata.engine.connect() as conn:
            found |= {row[0] for row in conn.execute(select(users.c.password_hash))}
            found |= {row[0] for row in conn.execute(select(api_tokens.c.token_hash))}
            found |= {row[0] for row in conn.execute(select(sessions.c.token_hash))}
            found |= {row[0] for row in conn.execute(select(connections.c.secret)) if row[0]}
        return found

    def assert_no_secrets(self) -> None:
        secrets = self.stored_secrets()
        assert len(self.bodies) > 10
        for body in self.bodies:
            for secret in secrets:
                assert secret not in body, "a stored secret appeared in an API response"


def make_api(project: Path, metadata_url: str | None = None) -> Iterator[Api]:
    init_project(project)
    (project / "data" / "shop.db").unlink(missing_ok=True)
    with sqlite3.connect(project / "data" / "shop.db") as db:
        db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC)")
        db.executemany("INSERT INTO products VALUES (?, ?, ?)", [(1, "tea", 2.5), (2, "cake", 4.0)])
    settings = Settings.load(project)
    if metadata_url:
        settings = settings.model_copy(update={"metadata_url": metadata_url})
    ctx = Context(settings.model_copy(update={"actor": "test-setup"}))  # the project's owner, acting as admin
    tokens = {}
    for role in ROLES:
        ctx.users.create_user(role, PASSWORDS[role], role)  # type: ignore[arg-type]
        tokens[role] = ctx.users.create_token(role, "test")
    ctx.connections.save("shop", {"type": "sqlite", "path": str(project / "data" / "shop.db")})
    ctx.connections.save("warehouse", {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "postgres",
                                       "user": "postgres", "password": PG_PASSWORD})
    app = create_app(ctx.settings, ctx)
    with TestClient(app) as client:
        yield Api(client, ctx, tokens)
    ctx.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from make_api(tmp_path_factory.mktemp("api_project"))


def wait_for_run(api: Api, run_id: int, timeout: float = 60) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = api.get(f"/runs/{run_id}", "viewer").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s")
