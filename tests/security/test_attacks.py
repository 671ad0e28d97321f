"""Each attack on a served project, sent as the attacker would send it, against a live server.

Numbers follow the security issue: (1) the metadata store as a source, (2) server files as a
source, (3) server files through SQL, (5) sessions, (6) brute force, (7) body size, (8) the UI's
own authorization, (9) headers, origins, file modes, names, search, stored secrets, offline
docs, (10) malformed input. The stored-XSS attack (4) is in tests/e2e/browser/test_security_ui.py.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flowforge.core.context import Context
from tests.cli_helpers import invoke
from tests.security.conftest import PASSWORDS, Server, make_project, start, stop

pytestmark = pytest.mark.slow

SECRET_MARKERS = ("root:x:0:0", "scrypt$", "FLOWFORGE_ADMIN_PASSWORD", "gAAAAA")


def _no_secret(text: str) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in text, f"{marker!r} leaked"


# -- 1. the metadata store as a source ------------------------------------------------------------

def test_01_the_metadata_store_cannot_be_a_source(server: Server) -> None:
    state = server.project / ".flowforge"
    (server.project / "data" / "innocent.db").symlink_to(state / "metadata.db")
    with server.client("editor", headers=server.same_origin()) as editor:
        for path in (".flowforge/metadata.db", str(state / "metadata.db"), "data/../.flowforge/metadata.db",
                     "data/innocent.db"):
            answer = editor.post("/api/v1/connections", json={"name": "meta", "type": "sqlite",
                                                             "options": {"path": path}})
            assert answer.status_code == 400, (path, answer.text)
            assert "state or lakehouse" in answer.json()["detail"]
        assert editor.get("/api/v1/connections/meta/preview", params={"table": "users"}).status_code == 404
        for table in ("users", "api_tokens", "connections", "sessions"):
            answer = editor.get("/api/v1/connections/shop/preview", params={"table": table})
            assert answer.status_code in (400, 404, 502)  # the shop database has no such table
            _no_secret(answer.text)


# -- 2. server files as a source -------------------------------------------------------------------

def test_02_server_files_cannot_be_a_source(server: Server) -> None:
    data = server.project / "data"
    (data / "etc").symlink_to("/etc")
    (data / "landing").mkdir()
    (data / "landing" / "passwd.csv").symlink_to("/etc/passwd")
    with server.client("editor", headers=server.same_origin()) as editor:
        for path in (".flowforge", str(server.project / ".flowforge"), "/etc", "data/etc", "lakehouse", "."):
            answer = editor.post("/api/v1/connections", json={"name": "grab", "type": "files",
                                                             "options": {"path": path, "format": "csv"}})
            assert answer.status_code == 400, (path, answer.text)
            assert "data roots" in answer.json()["detail"] or "state or lakehouse" in answer.json()["detail"]
        ok = editor.post("/api/v1/connections", json={"name": "landing", "type": "files",
                                                     "options": {"path": "data/landing", "format": "csv"}})
        assert ok.status_code == 201
        for pattern in ("*.csv", "../../.flowforge/*.key", "/etc/passwd"):
            spec = {"name": f"grab_{abs(hash(pattern))}", "jobs": [{
                "name": "land", "kind": "ingest", "connection": "landing",
                "tables": [{"files": pattern, "target": "bronze_loot"}]}]}
            assert editor.post("/api/v1/workflows", json={"spec": spec}).status_code == 201
            run = editor.post("/api/v1/runs", json={"workflow": spec["name"]}).json()
            final = _wait(editor, run["id"])
            assert final["status"] == "failed", final
            assert "outside" in final["error"] or "leads out" in final["error"]
    with Context.open(server.project) as ctx:
        assert "bronze_loot" not in {t.name for t in ctx.tables()}


def test_02_a_connection_outside_the_data_roots_is_refused_at_run_too(tmp_path: Path) -> None:
    """An admin's flowforge.yml edit that points outside the roots fails at run and at test, naming the setting."""
    project = make_project(tmp_path / "p")
    text = (project / "flowforge.yml").read_text().replace(
        "local_files:", "etc_files: {type: files, path: /etc, format: csv}\n  local_files:")
    (project / "flowforge.yml").write_text(text)
    (project / "workflows" / "grab.yml").write_text(yaml.safe_dump({"name": "grab", "jobs": [{
        "name": "land", "kind": "ingest", "connection": "etc_files", "tables": [{"files": "passwd",
                                                                               "target": "bronze_etc"}]}]}))
    code, out = invoke(project, "run", "grab")
    assert code == 1 and "data_roots" in out and "root:x" not in out
    code, out = invoke(project, "connections", "test", "etc_files")
    assert code == 1 and "data_roots" in out


# -- 3. server files through SQL ---------------------------------------------------------------------

EVIL_SQL = ("SELECT content FROM read_text('/proc/self/environ')", "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM '/etc/passwd'", "SELECT * FROM glob('/etc/*')",
            "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
            "SELECT 1; ATTACH '/tmp/x.db'", "SELECT (SELECT content FROM read_text('/etc/passwd'))")


@pytest.mark.parametrize("sql", EVIL_SQL)
def test_03_gold_sql_cannot_read_server_files(server: Server, sql: str) -> None:
    spec = {"name": "evil_gold", "jobs": [{"name": "g", "kind": "gold",
                                           "tables": [{"target": "gold_loot", "sql": sql}]}]}
    with server.client("editor", headers=server.same_origin()) as editor:
        answer = editor.post("/api/v1/workflows", json={"spec": spec})
    assert answer.status_code == 422, answer.text
    _no_secret(answer.text)


def test_03_silver_expressions_and_casts_cannot_read_server_files(server: Server) -> None:
    base = {"target": "silver_x", "source": "bronze_x", "keys": ["id"]}
    for extra in ({"derived": {"loot": "(SELECT content FROM read_text('/etc/passwd'))"}},
                  {"derived": {"loot": "1) AS a FROM read_text('/etc/passwd') --"}},
                  {"casts": {"id": "INT) AS id FROM read_text('/etc/passwd') --"}},
                  {"derived": {"loot": "getenv('FLOWFORGE_ADMIN_PASSWORD')"}}):
        spec = {"name": "evil_silver", "jobs": [{"name": "s", "kind": "silver", "tables": [{**base, **extra}]}]}
        with server.client("editor", headers=server.same_origin()) as editor:
            answer = editor.post("/api/v1/workflows", json={"spec": spec})
        assert answer.status_code == 422, (extra, answer.text)


@pytest.mark.parametrize("sql", EVIL_SQL)
def test_03_queries_cannot_read_server_files(server: Server, sql: str) -> None:
    with server.client("viewer", headers=server.same_origin()) as viewer:
        answer = viewer.post("/api/v1/catalog/query", json={"sql": sql})
    assert answer.status_code == 400, answer.text
    _no_secret(answer.text)
    code, out = invoke(server.project, "query", sql)
    assert code == 1
    _no_secret(out)


def test_03_a_plain_query_still_works(server: Server) -> None:
    with server.client("viewer", headers=server.same_origin()) as viewer:
        answer = viewer.post("/api/v1/catalog/query", json={"sql": "SELECT 40 + 2 AS answer -- a comment",
                                                           "limit": 5})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [{"answer": 42}] and answer.json()["columns"] == [{"name": "answer",
                                                                                        "type": "INTEGER"}]


# -- 5. sessions ---------------------------------------------------------------------------------------

def test_05_logout_ends_the_session_on_the_server(server: Server) -> None:
    client = server.client("viewer")
    cookie = client.cookies.get("flowforge_session")
    assert client.get("/api/v1/auth/me").status_code == 200
    assert client.get("/api/v1/auth/logout").status_code == 405  # logout is a POST
    assert client.post("/api/v1/auth/logout", headers=server.same_origin()).status_code == 204
    replay = httpx.get(f"{server.base}/api/v1/auth/me", cookies={"flowforge_session": cookie})
    assert replay.status_code == 401
    client.close()


def test_05_a_password_change_ends_the_other_sessions(server: Server) -> None:
    with server.client("admin", headers=server.same_origin()) as admin:
        assert admin.post("/api/v1/users", json={"username": "pat", "password": "pat-Secret-1",
                                                "role": "editor"}).status_code == 201
    first = httpx.Client(base_url=server.base)
    first.post("/api/v1/auth/login", json={"username": "pat", "password": "pat-Secret-1"})
    second = httpx.Client(base_url=server.base, headers=server.same_origin())
    second.post("/api/v1/auth/login", json={"username": "pat", "password": "pat-Secret-1"})
    wrong = second.post("/api/v1/auth/password", json={"current_password": "not-it-at-all",
                                                       "new_password": "pat-Secret-2"})
    assert wrong.status_code == 403
    changed = second.post("/api/v1/auth/password", json={"current_password": "pat-Secret-1",
                                                         "new_password": "pat-Secret-2"})
    assert changed.status_code == 200
    assert first.get("/api/v1/auth/me").status_code == 401
    assert second.get("/api/v1/auth/me").status_code == 200  # the session that changed it stays
    with server.client("admin", headers=server.same_origin()) as admin:  # an admin reset ends every session
        assert admin.patch("/api/v1/users/pat", json={"password": "pat-Secret-3"}).status_code == 200
    assert second.get("/api/v1/auth/me").status_code == 401
    first.close()
    second.close()


def test_05_disabling_a_user_ends_their_sessions(server: Server) -> None:
    with server.client("admin", headers=server.same_origin()) as admin:
        admin.post("/api/v1/users", json={"username": "dee", "password": "dee-Secret-1", "role": "editor"})
    dee = httpx.Client(base_url=server.base, headers=server.same_origin())
    dee.post("/api/v1/auth/login", json={"username": "dee", "password": "dee-Secret-1"})
    assert dee.get("/api/v1/workflows").status_code == 200
    with server.client("admin", headers=server.same_origin()) as admin:
        assert admin.patch("/api/v1/users/dee", json={"disabled": True}).status_code == 200
    assert dee.get("/api/v1/workflows").status_code == 401
    assert dee.post("/api/v1/runs", json={"workflow": "example"}).status_code == 401
    dee.close()


def test_05_cookies_are_httponly_samesite_and_secure_behind_tls(server: Server) -> None:
    plain = httpx.post(f"{server.base}/api/v1/auth/login", json={"username": "viewer",
                                                                 "password": PASSWORDS["viewer"]})
    header = plain.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" not in header
    tls = httpx.post(f"{server.base}/api/v1/auth/login", headers={"X-Forwarded-Proto": "https"},
                     json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert "secure" in tls.headers["set-cookie"].lower()


def test_05_idle_and_absolute_session_limits(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    live = start(project, {"FLOWFORGE_SESSION_IDLE_MINUTES": "0.05", "FLOWFORGE_SESSION_MAX_HOURS": "0.002"})
    try:
        idle = live.client("viewer")
        time.sleep(4)  # more than the 3 s idle limit without a request
        assert idle.get("/api/v1/auth/me").status_code == 401
        busy = live.client("viewer")
        answers = []
        for _ in range(9):  # a request every second: never idle, but past the 7.2 s absolute limit
            answers.append(busy.get("/api/v1/auth/me").status_code)
            time.sleep(1)
        assert answers[0] == 200 and answers[-1] == 401
    finally:
        stop(live)


# -- 6. brute force --------------------------------------------------------------------------------------

def test_06_fifty_wrong_passwords_lock_the_account_out(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    live = start(project)
    try:
        with httpx.Client(base_url=live.base) as client:
            codes = [client.post("/api/v1/auth/login", json={"username": "admin", "password": f"guess-{i}"}
                                 ).status_code for i in range(50)]
            assert codes[0] == 401 and codes[-1] == 429
            right = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORDS["admin"]})
            assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
            # the lock-out is per user name (and per client after many names): another user still signs in
            assert client.post("/api/v1/auth/login", json={"username": "editor",
                                                           "password": PASSWORDS["editor"]}).status_code == 200
        with Context.open(project) as ctx:
            failures = ctx.audit_log(500, action="auth.login_failed")
            ctx.users.set_password("admin", "admin-Reset-999")  # what 'flowforge users passwd' does
        assert len(failures) >= 50 and {f.object_id for f in failures} == {"admin"}
        with httpx.Client(base_url=live.base) as client:  # a reset lifts the lock-out
            assert client.post("/api/v1/auth/login", json={"username": "admin", "password": "admin-Reset-999"}
                               ).status_code == 200
    finally:
        stop(live)


def test_06_many_user_names_from_one_client_lock_the_client_out(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    live = start(project)
    try:
        with httpx.Client(base_url=live.base) as client:
            codes = [client.post("/api/v1/auth/login", json={"username": f"user{i}", "password": "nope-nope"}
                                 ).status_code for i in range(25)]
            assert codes[0] == 401 and codes[-1] == 429
            assert client.post("/api/v1/auth/login", json={"username": "editor",
                                                           "password": PASSWORDS["editor"]}).status_code == 429
    finally:
        stop(live)


# -- 7. body size -------------------------------------------------------------------------------------------

def test_07_a_huge_body_is_refused_before_it_is_parsed(server: Server) -> None:
    headers = {**server.token("viewer"), "content-type": "application/json"}
    body = b'{"yaml": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    answer = httpx.post(f"{server.base}/api/v1/workflows/validate", content=body, headers=headers, timeout=60)
    assert answer.status_code == 413

    def chunks() -> object:
        yield b'{"yaml": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    streamed = httpx.post(f"{server.base}/api/v1/workflows/validate", content=chunks(), headers=headers, timeout=60)
    assert streamed.status_code == 413


# -- 8. the UI's own authorization ----------------------------------------------------------------------------

@pytest.mark.parametrize(("page", "least"), [("/ui/workflows", "viewer"), ("/ui/runs", "viewer"),
                                             ("/ui/catalog", "viewer"), ("/ui/templates", "viewer"),
                                             ("/ui/audit", "editor"), ("/ui/connections", "viewer"),
                                             ("/ui/sql", "viewer"), ("/ui/account", "viewer"), ("/ui/users", "admin")])
def test_08_ui_pages_follow_the_same_roles_as_the_api(server: Server, page: str, least: str) -> None:
    roles = ("viewer", "editor", "admin")
    anonymous = httpx.get(server.base + page, follow_redirects=False)
    assert anonymous.status_code in (302, 303, 307) and "/ui/login" in anonymous.headers["location"]
    for role in roles:
        with server.client(role) as client:
            html = client.get(page).text
            api = client.get("/api/v1/audit").status_code
        allowed = roles.index(role) >= roles.index(least)
        assert ("access-denied" not in html) == allowed, (role, page)
        if page == "/ui/users":
            with server.client(role) as client:
                assert (client.get(page).status_code == 200) == allowed  # 403 below admin
        if page == "/ui/audit":
            assert (api == 200) == allowed  # the page and the API agree
            assert ("auth.login" in html or "user.create" in html) == allowed


@pytest.mark.parametrize(("page", "control"), [("/ui/workflows", "run-example"),
                                                ("/ui/workflows/example", "run-workflow"),
                                                ("/ui/workflows", "new-workflow"),
                                                ("/ui/connections", "new-connection")])
def test_08_controls_that_change_things_are_for_editors(server: Server, page: str, control: str) -> None:
    for role, shown in (("viewer", False), ("editor", True), ("admin", True)):
        with server.client(role) as client:
            html = client.get(page).text
        assert (control in html) == shown, (role, page, control)


# -- 9. smaller items ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/health", "/ui/login", "/api/v1/docs"])
def test_09_security_headers(server: Server, path: str) -> None:
    headers = httpx.get(server.base + path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_09_cookie_changes_from_a_foreign_origin_are_refused(server: Server) -> None:
    with server.client("editor") as editor:
        foreign = editor.post("/api/v1/workflows/example/pause", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        missing = editor.post("/api/v1/workflows/example/pause")
        assert missing.status_code == 403
        same = editor.post("/api/v1/workflows/example/pause", headers=server.same_origin())
        assert same.status_code == 200
        editor.post("/api/v1/workflows/example/resume", headers=server.same_origin())
    # a token is never sent by a browser on its own: no origin needed
    assert httpx.post(f"{server.base}/api/v1/workflows/example/pause", headers=server.token("editor")
                      ).status_code == 200
    httpx.post(f"{server.base}/api/v1/workflows/example/resume", headers=server.token("editor"))
    login_csrf = httpx.post(f"{server.base}/api/v1/auth/login", headers={"Origin": "https://evil.example"},
                            json={"username": "viewer", "password": PASSWORDS["viewer"]})
    assert login_csrf.status_code == 403


def test_09_state_files_are_private(server: Server) -> None:
    state = server.project / ".flowforge"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for child in state.iterdir():
        if child.name.startswith("metadata.db") or child.suffix == ".key":
            assert stat.S_IMODE(child.stat().st_mode) == 0o600, child.name


def test_09_connection_names_are_checked(server: Server) -> None:
    with server.client("editor", headers=server.same_origin()) as editor:
        answer = editor.post("/api/v1/connections", json={"name": "../../x y<script>", "type": "sqlite",
                                                         "options": {"path": "data/shop.db"}})
    assert answer.status_code == 400 and "not a valid connection name" in answer.json()["detail"]


def test_09_search_takes_percent_literally(server: Server) -> None:
    with server.client("viewer") as viewer:
        everything = viewer.get("/api/v1/workflows").json()["count"]
        assert everything >= 1
        assert viewer.get("/api/v1/workflows", params={"search": "%"}).json()["count"] == 0
        assert viewer.get("/api/v1/workflows", params={"search": "_"}).json()["count"] == sum(
            "_" in w["name"] or "_" in w["description"] for w in viewer.get("/api/v1/workflows").json()["data"])


def test_09_a_secret_inside_storage_keeps_its_value(server: Server) -> None:
    secret = "s3-Secret-Value-That-Must-Survive"
    with server.client("editor", headers=server.same_origin()) as editor:
        answer = editor.post("/api/v1/connections", json={
            "name": "lake_files", "type": "files",
            "options": {"path": "data", "format": "csv",
                        "storage": {"aws_secret_access_key": secret, "aws_region": "eu-west-1"}}})
        assert answer.status_code == 201, answer.text
        assert secret not in answer.text and secret not in editor.get("/api/v1/connections/lake_files").text
    with Context.open(server.project) as ctx:
        stored = ctx.connections.stored("lake_files")
    assert stored is not None
    assert stored.storage["aws_secret_access_key"].get_secret_value() == secret  # type: ignore[attr-defined]
    assert stored.storage["aws_region"] == "eu-west-1"  # type: ignore[attr-defined]


def test_09_api_docs_work_offline(server: Server) -> None:
    html = httpx.get(f"{server.base}/api/v1/docs").text
    assert "cdn." not in html and "https://" not in html
    assert httpx.get(f"{server.base}/api/v1/docs/static/swagger-ui-bundle.js").status_code == 200


# -- 10. malformed input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("table", ['customers"', "customers'--", "../../etc/passwd", "a\x00b", "x" * 2000])
def test_10_malformed_table_names_are_4xx(server: Server, table: str) -> None:
    with server.client("editor") as editor:
        for route in ("preview", "schema"):
            answer = editor.get(f"/api/v1/connections/shop/{route}", params={"table": table})
            assert 400 <= answer.status_code < 500, (route, answer.status_code, answer.text)


def test_10_ids_beyond_64_bits_are_4xx(server: Server) -> None:
    with server.client("viewer") as viewer:
        assert viewer.get("/api/v1/runs/99999999999999999999999").status_code == 422
        assert viewer.get("/api/v1/workflows/99999999999999999999999").status_code == 404
        assert viewer.get("/api/v1/runs/0").status_code == 422


def _wait(client: httpx.Client, run_id: int) -> dict[str, object]:
    from tests.waiting import eventually

    run: dict[str, object] = eventually(lambda: client.get(f"/api/v1/runs/{run_id}").json(),
                                        lambda r: r["status"] != "running", attempts=600)
    return run


def test_key_files_are_never_readable_by_others() -> None:
    """The default umask must not matter: keys are created 0600 whatever it is."""
    old = os.umask(0)
    try:
        from flowforge.secrets import Keyring

        folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"ffkeys-{os.getpid()}"
        folder.mkdir(exist_ok=True)
        Keyring.load(folder, create=True)
        assert stat.S_IMODE((folder / "secret.key").stat().st_mode) == 0o600
    finally:
        os.umask(old)
