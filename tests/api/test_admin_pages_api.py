"""The services and routes behind the Connections, Users, My account, SQL console and Catalog
pages, each with its attacks: a viewer or editor is refused by the service itself (not only by the
route), a stored secret never comes back and is not sent to a new address, the console's SQL stays
in the sandbox, and a user's history and tokens are their own."""

from __future__ import annotations

from typing import Any

import pytest

from flowforge.errors import AccessDenied, ConfigError, ConflictError, UserCodeError
from tests.api.conftest import PG_PASSWORD, Api, wait_for_run


@pytest.fixture(scope="module")
def lake(api: Api) -> Api:
    run = api.post("/runs", "editor", json={"workflow": "example"}).json()
    assert wait_for_run(api, run["id"])["status"] == "success"
    return api


def _as(api: Api, name: str) -> Any:
    user = api.ctx.users.verify_token(api.tokens[name])
    assert user is not None
    return api.ctx.as_user(user)


# -- connections --------------------------------------------------------------------------------
def test_an_edit_without_a_password_keeps_the_stored_one(api: Api) -> None:
    body = {"type": "postgres", "options": {"host": "127.0.0.1", "port": 5432, "database": "postgres",
                                            "user": "postgres", "schema": "public"}}
    answer = api.call("PUT", "/connections/warehouse", "editor", json=body)
    assert answer.status_code == 200, answer.text
    assert PG_PASSWORD not in answer.text and "password" not in answer.json()
    stored = api.ctx.connections.stored("warehouse")
    assert stored is not None and stored.password is not None  # type: ignore[attr-defined]
    assert stored.password.get_secret_value() == PG_PASSWORD  # type: ignore[attr-defined]
    assert api.post("/connections/warehouse/test", "editor").status_code == 200


def test_a_stored_password_is_never_sent_to_a_new_address(api: Api) -> None:
    body = {"type": "postgres", "options": {"host": "attacker.example", "port": 5432, "database": "postgres",
                                            "user": "postgres"}}
    answer = api.call("PUT", "/connections/warehouse", "editor", json=body)
    assert answer.status_code == 400 and "type its password again" in answer.text
    with pytest.raises(ConfigError, match="points elsewhere"):
        _as(api, "editor").connections.check_update("warehouse", {**body["options"], "type": "postgres"})
    stored = api.ctx.connections.stored("warehouse")
    assert stored is not None and stored.host == "127.0.0.1"  # type: ignore[attr-defined]


def test_a_viewer_cannot_edit_or_read_secrets_of_a_connection(api: Api) -> None:
    viewer = _as(api, "viewer")
    with pytest.raises(AccessDenied):
        viewer.connections.update("warehouse", {"type": "postgres", "host": "127.0.0.1"})
    with pytest.raises(AccessDenied):
        viewer.connections.editable("warehouse")
    kind, options, secrets = _as(api, "editor").connections.editable("warehouse")
    assert kind == "postgres" and secrets == ("password",) and PG_PASSWORD not in str(options)
    assert api.call("PUT", "/connections/warehouse", "viewer", json={"type": "postgres"}).status_code == 403


def test_creating_a_connection_never_replaces_one(api: Api) -> None:
    editor = _as(api, "editor")
    with pytest.raises(ConflictError, match="exists already"):
        editor.connections.create("warehouse", {"type": "sqlite", "path": "data/shop.db"})
    with pytest.raises(AccessDenied):
        _as(api, "viewer").connections.create("fresh", {"type": "sqlite", "path": "data/shop.db"})
    stored = api.ctx.connections.stored("warehouse")
    assert stored is not None and stored.type == "postgres"


def test_usage_names_the_jobs_of_a_connection(api: Api) -> None:
    answer = api.get("/connections/local_files/usage", "viewer")
    assert answer.status_code == 200
    assert {"workflow": "example", "job": "ingest_orders"} in answer.json()
    assert api.get("/connections/shop/usage", "viewer").json() == []
    assert api.get("/connections/nope/usage", "viewer").status_code == 404


# -- users and my account ------------------------------------------------------------------------
def test_my_tokens_are_mine(api: Api) -> None:
    made = api.post("/auth/tokens", "viewer", json={"name": "laptop"})
    assert made.status_code == 201
    mine = api.get("/auth/tokens", "viewer").json()
    laptop = next(t for t in mine if t["name"] == "laptop")
    assert "token" not in laptop and made.json()["token"] not in str(mine)
    admins = api.get("/auth/tokens", "admin").json()
    # a viewer cannot revoke the admin's token through their own route
    assert api.call("DELETE", f"/auth/tokens/{admins[0]['id']}", "viewer").status_code == 404
    assert api.get("/auth/me", "admin").status_code == 200
    assert api.call("DELETE", f"/auth/tokens/{laptop['id']}", "viewer").status_code == 204
    headers = {"Authorization": f"Bearer {made.json()['token']}"}
    assert api.get("/auth/me", None, headers=headers).status_code == 401


def test_only_admins_manage_users_and_the_service_refuses_itself(api: Api) -> None:
    editor, viewer = _as(api, "editor"), _as(api, "viewer")
    with pytest.raises(AccessDenied):
        editor.users.set_role("viewer", "admin")
    with pytest.raises(AccessDenied):
        editor.users.set_role("editor", "admin")  # not even their own
    with pytest.raises(AccessDenied):
        viewer.users.list_users()
    with pytest.raises(AccessDenied):
        viewer.users.list_tokens("admin")
    with pytest.raises(AccessDenied):
        viewer.users.set_password("editor", "taken-over-1")
    assert api.call("PATCH", "/users/viewer", "editor", json={"role": "admin"}).status_code == 403
    assert api.get("/auth/me", "viewer").json()["role"] == "viewer"


def test_the_last_admin_cannot_be_demoted_or_disabled(api: Api) -> None:
    admin = _as(api, "admin")
    with pytest.raises(ConflictError, match="only enabled admin"):
        admin.users.set_role("admin", "editor")
    with pytest.raises(ConflictError, match="only enabled admin"):
        admin.users.disable("admin")
    assert api.call("PATCH", "/users/admin", "admin", json={"disabled": True}).status_code == 409


# -- catalog -------------------------------------------------------------------------------------
def test_the_catalog_list_shows_sql_types_and_relative_locations(lake: Api) -> None:
    tables = lake.get("/catalog/tables", "viewer").json()
    silver = next(t for t in tables if t["name"] == "silver_orders")
    assert silver["location"] == "silver/silver_orders"
    assert str(lake.ctx.settings.project_dir) not in str(tables)
    types = {c["name"]: c["type"] for c in silver["columns"]}
    assert types["amount"] == "DECIMAL(38,2)" and "arro3" not in str(tables)
    assert set(types.values()) <= {"BIGINT", "DECIMAL(38,2)", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP",
                                   "DATE", "INTEGER", "DOUBLE", "BOOLEAN"}, types


def test_editors_describe_tables_and_viewers_read_and_search(lake: Api) -> None:
    body = {"description": "One row per order line <script>x</script>",
            "columns": {"amount": "gross amount in EUR"}}
    assert lake.call("PUT", "/catalog/tables/silver_orders/docs", "viewer", json=body).status_code == 403
    with pytest.raises(AccessDenied):
        _as(lake, "viewer").catalog.describe("silver_orders", "defaced")
    answer = lake.call("PUT", "/catalog/tables/silver_orders/docs", "editor", json=body)
    assert answer.status_code == 200, answer.text
    docs = lake.get("/catalog/tables/silver_orders/docs", "viewer").json()
    assert docs == {"description": body["description"], "columns": {"amount": "gross amount in EUR"}}
    hits = lake.get("/catalog/search?q=EUR", "viewer").json()
    assert hits == [{"table": "silver_orders", "layer": "silver", "column": "amount", "type": "DECIMAL(38,2)",
                     "matched": "comment", "text": "gross amount in EUR"}]
    names = lake.get("/catalog/search?q=revenue", "viewer").json()
    assert {"gold_daily_revenue"} <= {h["table"] for h in names}
    assert lake.call("PUT", "/catalog/tables/silver_orders/docs", "editor",
                     json={"columns": {"no_such_column": "x"}}).status_code == 404
    assert lake.call("PUT", "/catalog/tables/nope/docs", "editor", json={"description": "x"}).status_code == 404
    cleared = lake.call("PUT", "/catalog/tables/silver_orders/docs", "editor", json={"columns": {"amount": ""}})
    assert cleared.json()["columns"] == {}
    audit = lake.get("/audit?object_type=table").json()
    assert {"catalog.describe", "catalog.comment"} <= {e["action"] for e in audit}
    assert all(e["actor"] == "editor" for e in audit if e["action"].startswith("catalog."))


# -- SQL console ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT content FROM read_text('/etc/passwd')",
    "ATTACH '/tmp/x.db' AS x",
    "COPY (SELECT 1) TO '/tmp/flowforge-console-leak.csv'",
    "SELECT * FROM '/etc/passwd'",
    "SELECT 1; SELECT 2",
    "INSTALL httpfs",
])
def test_the_console_refuses_to_leave_the_sandbox(lake: Api, sql: str) -> None:
    from pathlib import Path

    with pytest.raises(UserCodeError):
        _as(lake, "viewer").console.run(sql, 10)
    assert not Path("/tmp/flowforge-console-leak.csv").exists()


def test_the_console_limits_rows_keeps_history_per_user_and_writes_csv(lake: Api) -> None:
    viewer, editor = _as(lake, "viewer"), _as(lake, "editor")
    viewer.console.clear_history()
    result = viewer.console.run("SELECT * FROM silver_orders ORDER BY 1", 2)
    assert len(result.rows) == 2 and result.truncated
    assert ("amount", "DECIMAL(38,2)") in result.columns
    whole = viewer.console.run("SELECT '=HYPERLINK(1)' AS f, -1.5 AS n", 10)
    assert not whole.truncated
    assert whole.csv().splitlines() == ["f,n", "'=HYPERLINK(1),-1.5"]
    with pytest.raises(UserCodeError):
        viewer.console.run("SELECT * FROM read_text('/etc/passwd')", 10)
    with pytest.raises(ConfigError):
        viewer.console.run("SELECT 1", 0)
    editor.console.run("SELECT 42 AS editors_only", 10)
    mine = viewer.console.history()
    assert [h.sql for h in mine][:3] == ["SELECT * FROM read_text('/etc/passwd')",
                                         "SELECT '=HYPERLINK(1)' AS f, -1.5 AS n",
                                         "SELECT * FROM silver_orders ORDER BY 1"]
    assert mine[0].error and mine[1].rows == 1
    assert "editors_only" not in str(mine)
    answer = lake.get("/catalog/query/history", "viewer").json()
    assert answer[0]["sql"] == mine[0].sql and "editors_only" not in str(answer)
    schema = {t.name: dict(t.columns) for t in viewer.console.schema()}
    assert schema["silver_orders"]["amount"] == "DECIMAL(38,2)"


def test_no_secret_in_any_response(api: Api) -> None:
    api.assert_no_secrets()
