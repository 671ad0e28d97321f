"""Every route with no credentials, viewer, editor and admin: 401 without credentials, 403 below
the route's role, allowed at or above it. Plus login, sessions, tokens and disabled users."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.conftest import PASSWORDS, ROLES, Api, wait_for_run

WF = "matrix_wf"
WF_YAML = f"""\
name: {WF}
team: data
jobs:
  - name: ingest
    kind: ingest
    connection: local_files
    tables:
      - {{files: "orders*.csv", target: bronze_matrix}}
"""
JOB = {"name": "ingest2", "kind": "ingest", "connection": "local_files",
       "tables": [{"files": "orders*.csv", "target": "bronze_matrix2"}]}

# (method, path, least role or None for public, JSON body)
ROUTES: list[tuple[str, str, str | None, Any]] = [
    ("GET", "/health", None, None),
    ("POST", "/auth/login", None, {"username": "viewer", "password": PASSWORDS["viewer"]}),
    ("POST", "/auth/logout", None, None),
    ("GET", "/auth/me", "viewer", None),
    ("POST", "/auth/tokens", "viewer", {"name": "mine"}),
    ("GET", "/auth/tokens", "viewer", None),
    ("DELETE", "/auth/tokens/{token_id}", "viewer", None),  # someone else's or no token: 404, after the role
    # a too-short new password: 422 for anyone signed in, so the role users keep theirs
    ("POST", "/auth/password", "viewer", {"current_password": "x", "new_password": "short"}),
    ("GET", "/users", "admin", None),
    ("POST", "/users", "admin", {"username": "newbie", "password": "newbie-Pass-1", "role": "viewer"}),
    ("PATCH", "/users/{user}", "admin", {"role": "viewer"}),
    ("GET", "/users/{user}/tokens", "admin", None),
    ("POST", "/users/{user}/tokens", "admin", {"name": "other"}),
    ("DELETE", "/users/{user}/tokens/{token_id}", "admin", None),
    ("GET", "/workflows", "viewer", None),
    ("POST", "/workflows", "editor", {"yaml": WF_YAML.replace(WF, "matrix_new")}),
    ("POST", "/workflows/validate", "viewer", {"yaml": WF_YAML}),
    ("GET", "/workflows/{wf}", "viewer", None),
    ("PUT", "/workflows/{wf}", "editor", {"yaml": WF_YAML}),
    ("PATCH", "/workflows/{wf}", "editor", {"description": "Orders from the shop", "tags": ["orders"]}),
    ("POST", "/workflows/{wf}/clone", "editor", {"new_name": "matrix_clone"}),
    ("POST", "/workflows/{wf}/pause", "editor", None),
    ("POST", "/workflows/{wf}/resume", "editor", None),
    ("GET", "/workflows/{wf}/lineage", "viewer", None),
    ("GET", "/workflows/{wf}/ingest-plan", "editor", None),
    ("GET", "/workflows/{wf}/lineage/columns", "viewer", None),
    ("GET", "/lineage/columns?table=silver_orders&column=amount", "viewer", None),
    ("GET", "/workflows/{wf}/jobs", "viewer", None),
    ("POST", "/workflows/{wf}/jobs", "editor", {"spec": JOB}),
    ("POST", "/workflows/{wf}/jobs/validate", "viewer", {"spec": JOB}),
    ("GET", "/workflows/{wf}/jobs/ingest", "viewer", None),
    ("GET", "/workflows/{wf}/jobs/ingest/source", "viewer", None),
    ("PUT", "/workflows/{wf}/jobs/ingest", "editor", {"yaml": "name: ingest\nkind: ingest\nconnection: local_files\n"
                                                      "tables:\n  - {files: 'orders*.csv', target: bronze_matrix}\n"}),
    ("POST", "/workflows/{wf}/jobs/ingest/clone", "editor", {"new_name": "ingest_copy"}),
    ("DELETE", "/workflows/{wf}/jobs/ingest_copy", "editor", None),
    ("GET", "/connections", "viewer", None),
    ("POST", "/connections", "editor", {"name": "scratch", "type": "sqlite", "options": {"path": "data/x.db"}}),
    ("GET", "/connections/shop", "viewer", None),
    ("POST", "/connections/shop/test", "editor", None),
    ("GET", "/connections/shop/tables", "editor", None),
    ("GET", "/connections/shop/schema?table=products", "editor", None),
    ("GET", "/connections/shop/preview?table=products", "editor", None),
    ("GET", "/connections/local_files/dialect?table=orders.csv", "editor", None),
    ("PUT", "/connections/shop", "editor", {"type": "sqlite", "options": {"path": "data/shop.db"}}),
    ("GET", "/connections/shop/usage", "viewer", None),
    ("DELETE", "/connections/scratch", "editor", None),
    ("POST", "/runs", "editor", {"workflow": "example", "job": "ingest_orders"}),
    ("GET", "/runs", "viewer", None),
    ("GET", "/runs/{run_id}", "viewer", None),
    ("GET", "/runs/{run_id}/jobs", "viewer", None),
    ("GET", "/runs/{run_id}/logs", "viewer", None),
    ("GET", "/runs/{run_id}/events", "viewer", None),
    ("GET", "/catalog/tables", "viewer", None),
    ("GET", "/catalog/tables/bronze_orders", "viewer", None),
    ("POST", "/catalog/query", "viewer", {"sql": "SELECT count(*) AS n FROM bronze_orders"}),
    ("GET", "/catalog/query/history", "viewer", None),
    ("GET", "/catalog/search?q=order", "viewer", None),
    ("GET", "/catalog/tables/bronze_orders/docs", "viewer", None),
    ("PUT", "/catalog/tables/bronze_orders/docs", "editor", {"description": "orders as they landed"}),
    ("GET", "/templates?industry=bfsi", "viewer", None),
    ("GET", "/templates/bfsi_customer_360", "viewer", None),
    ("POST", "/templates/bfsi_customer_360/plan", "viewer", {"params": {"workflow_name": "matrix_plan"}}),
    ("POST", "/templates/bfsi_customer_360/instantiate", "editor", {"params": {"workflow_name": "matrix_tpl"},
                                                                    "overwrite": True}),
    ("GET", "/audit", "editor", None),
    ("GET", "/search/tables", "viewer", None),
    ("GET", "/search?table=products&q=tea", "viewer", None),
    ("GET", "/dashboards", "viewer", None),
    ("GET", "/dashboards/ecommerce_analytics/sales", "viewer", None),
    ("POST", "/workflows/{wf}/jobs/ingest/cdc/reset", "editor", None),  # refused (not a cdc job), after the role
    ("POST", "/maintenance/optimize", "editor", {"tables": ["bronze_orders"]}),
    ("POST", "/maintenance/vacuum", "admin", {"dry_run": True}),
    ("DELETE", "/workflows/matrix_clone", "editor", None),
    ("GET", "/quality/runs/{run_id}", "viewer", None),
    ("GET", "/quality/runs/{run_id}/openlineage", "viewer", None),
    ("GET", "/quality/tables/bronze_orders", "viewer", None),
    ("POST", "/quality/test", "editor", {"workflow": "example"}),
    ("GET", "/quality/quarantine", "viewer", None),
    ("GET", "/quality/quarantine/bronze_orders", "viewer", None),
    ("POST", "/quality/quarantine/bronze_orders/replay", "editor", None),
    ("POST", "/quality/import/dbt", "editor", {"schema_yaml": "models:\n  - name: orders\n    columns:\n"
                                                             "      - name: id\n        tests: [unique]\n"}),
    ("POST", "/runs/{run_id}/cancel", "editor", None),
    ("POST", "/runs/{run_id}/rerun", "editor", {"from_failure": False}),
    ("GET", "/schedules", "viewer", None),
    ("POST", "/schedules/preview", "viewer", {"trigger": {"cron": "0 6 * * *", "timezone": "Europe/Berlin"}}),
    ("GET", "/fires", "viewer", None),
    ("PUT", "/workflows/{wf}/triggers", "editor", {"triggers": [{"every": "1h"}]}),
    ("POST", "/workflows/{wf}/backfill", "editor", {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T03:00:00Z"}),
    ("GET", "/alert-channels", "viewer", None),
    ("PUT", "/alert-channels/matrix_hook", "editor", {"type": "webhook", "url": "http://127.0.0.1:9/hook"}),
    ("POST", "/alert-channels/matrix_hook/test", "editor", None),
    ("DELETE", "/alert-channels/matrix_hook", "editor", None),
]


@pytest.fixture(scope="module")
def ids(api: Api) -> dict[str, Any]:
    assert api.post("/workflows", json={"yaml": WF_YAML}).status_code == 201
    run = api.post("/runs", json={"workflow": "example"}).json()
    wait_for_run(api, run["id"])
    tokens = api.get("/users/viewer/tokens").json()
    return {"wf": WF, "user": "viewer", "run_id": run["id"], "token_id": tokens[0]["id"] + 1000}


def _url(path: str, ids: dict[str, Any]) -> str:
    return path.format(**ids)


def test_every_api_route_is_in_the_matrix(api: Api) -> None:
    declared = {(method.upper(), path.removeprefix("/api/v1"))
                for path, ops in api.get("/openapi.json", None).json()["paths"].items() for method in ops}
    assert len(declared) >= 45
    concrete = [(m, p.split("?")[0].format(wf=WF, user="u", run_id=1, token_id=1)) for m, p, _, _ in ROUTES]
    missing = sorted((method, path) for method, path in declared
                     if not any(m == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", path), url)
                                for m, url in concrete))
    assert not missing, f"routes without an auth test: {missing}"


@pytest.mark.parametrize(("method", "path", "least", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_route_roles(api: Api, ids: dict[str, Any], method: str, path: str, least: str | None, body: Any) -> None:
    url = _url(path, ids)
    kwargs = {"json": body} if body is not None else {}
    if least is None:
        assert api.call(method, url, None, **kwargs).status_code < 400
        return
    assert api.call(method, url, None, **kwargs).status_code == 401
    bad = api.call(method, url, None, headers={"Authorization": "Bearer ff_not-a-token"}, **kwargs)
    assert bad.status_code == 401
    for role in ROLES:
        status = api.call(method, url, role, **kwargs).status_code
        if ROLES.index(role) < ROLES.index(least):
            assert status == 403, f"{role} got {status}"
        else:
            assert status not in (401, 403, 500), f"{role} got {status}"


def test_login_sets_a_session_cookie_that_authenticates(api: Api) -> None:
    assert api.post("/auth/login", None, json={"username": "editor", "password": "wrong-password"}).status_code == 401
    assert api.post("/auth/login", None, json={"username": "nobody", "password": "wrong-password"}).status_code == 401
    response = api.client.post("/api/v1/auth/login", json={"username": "editor", "password": PASSWORDS["editor"],
                                                           "issue_token": True})
    api.bodies.append(response.text)
    assert response.status_code == 200
    cookie = response.cookies.get("flowforge_session")
    assert cookie and response.json()["user"]["role"] == "editor"
    api.client.cookies.clear()
    api.client.cookies.set("flowforge_session", cookie)
    me = api.client.get("/api/v1/auth/me")
    assert me.json()["username"] == "editor"
    token = response.json()["token"]
    assert api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    api.client.cookies.clear()
    api.client.cookies.set("flowforge_session", tampered)
    assert api.client.get("/api/v1/auth/me").status_code == 401
    api.client.cookies.clear()


def test_disabled_user_and_revoked_token_are_refused(api: Api) -> None:
    created = api.post("/users", json={"username": "temp", "password": "temp-Pass-123", "role": "editor"})
    assert created.status_code == 201 and "password" not in created.text
    token = api.post("/users/temp/tokens", json={"name": "t"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/workflows", None, headers=headers).status_code == 200
    token_id = api.get("/users/temp/tokens").json()[-1]["id"]
    assert api.call("DELETE", f"/users/temp/tokens/{token_id}").status_code == 204
    assert api.get("/workflows", None, headers=headers).status_code == 401
    token = api.post("/users/temp/tokens", json={"name": "t2"}).json()["token"]
    assert api.call("PATCH", "/users/temp", json={"disabled": True}).json()["disabled"] is True
    assert api.get("/workflows", None, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.post("/auth/login", None, json={"username": "temp", "password": "temp-Pass-123"}).status_code == 401


def test_users_are_stored_hashed(api: Api) -> None:
    from sqlalchemy import select

    from flowforge.metadata.tables import api_tokens, users

    with api.ctx.metadata.engine.connect() as conn:
        hashes = [row[0] for row in conn.execute(select(users.c.password_hash))]
        token_hashes = [row[0] for row in conn.execute(select(api_tokens.c.token_hash))]
    assert all(h.startswith("scrypt$") for h in hashes)
    assert not any(p in h for h in hashes for p in PASSWORDS.values())
    assert all(len(h) == 64 and t not in h for h in token_hashes for t in api.tokens.values())
    assert api.post("/users", json={"username": "weak", "password": "short", "role": "viewer"}).status_code == 400


def test_user_changes_are_audited_with_the_admin_name(api: Api) -> None:
    api.post("/users", json={"username": "audited", "password": "audited-Pass-1", "role": "viewer"})
    api.call("PATCH", "/users/audited", json={"role": "editor", "password": "audited-Pass-2"})
    entries = api.get("/audit?object_type=user").json()
    mine = [e for e in entries if e["object_id"] == "audited"]
    assert {e["action"] for e in mine} == {"user.create", "user.update"}
    assert all(e["actor"] == "admin" for e in mine)
    assert "audited-Pass" not in str(entries)


def test_openapi_documents_the_api(api: Api) -> None:
    spec = api.get("/openapi.json", None).json()
    assert "/api/v1/workflows/{workflow}/lineage" in spec["paths"]
    assert api.get("/docs", None).status_code == 200


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()
