"""Pooled discovery connections of the PostgreSQL connector, seen from the server: how many
sessions a connector holds (``pg_stat_activity``), what state they are in, and what survives
from one call to the next. Each test gets a fresh database; the connector's sessions are the
ones named ``flowforge`` in it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.api.conftest import make_api
from tests.waiting import eventually

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest
from flowforge.connectors.sql.pool import Pool
from flowforge.connectors.sql.postgres import connector as pg_connector
from flowforge.connectors.sql.postgres.config import PostgresConfig
from flowforge.core.context import Context
from flowforge.errors import SourceSchemaError

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.postgres


class Server:
    """The test database, written and watched through connections of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = url.rsplit("/", 1)[1]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def sessions(self) -> list[tuple[int, str]]:
        """(pid, state) of the connector's sessions: 'idle', 'idle in transaction', ..."""
        return [(int(pid), str(state)) for pid, state in self.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = %s AND application_name = 'flowforge' "
            "ORDER BY pid", (self.database,))]

    def eventually_sessions(self, wanted: Callable[[list[tuple[int, str]]], bool]) -> list[tuple[int, str]]:
        return eventually(self.sessions, wanted)


@pytest.fixture
def server(pg_database: str) -> Server:
    found = Server(pg_database)
    found.execute("CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2), note text)")
    found.execute("INSERT INTO orders SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 20) g")
    return found


def _connector(server: Server, **options: Any) -> Connector:
    return open_connector("shop", PostgresConfig(type="postgres", url=server.url, **options))


def test_ten_discovery_calls_use_one_session(server: Server) -> None:
    connector = _connector(server)
    assert connector.test().ok
    [(pid, _)] = server.sessions()
    calls = [connector.list_tables, lambda: connector.columns(ReadRequest(table="orders")),
             lambda: connector.plan(ReadRequest(table="orders", incremental_column="id"), None)] * 3
    for call in calls:
        call()
        assert server.sessions() == [(pid, "idle")]
    connector.close()
    assert server.eventually_sessions(lambda s: not s) == []


def test_a_session_killed_on_the_server_is_replaced_transparently(server: Server) -> None:
    connector = _connector(server)
    connector.list_tables()
    [(pid, _)] = server.sessions()
    server.execute("SELECT pg_terminate_backend(%s)", (pid,))  # a DBA, or a failover
    assert server.eventually_sessions(lambda s: not s) == []
    assert "orders" in {t.name for t in connector.list_tables()}
    [(new_pid, state)] = server.sessions()
    assert new_pid != pid and state == "idle"
    connector.close()


def test_no_session_is_left_in_a_transaction(server: Server) -> None:
    connector = _connector(server, pool_size=2)
    connector.columns(ReadRequest(query="SELECT id, amount FROM orders"))
    with pytest.raises(SourceSchemaError):  # the server refuses: that session is closed
        connector.columns(ReadRequest(query="SELECT no_such_column FROM orders"))
    connector.plan(ReadRequest(table="orders", incremental_column="id"), None)
    assert {state for _, state in server.sessions()} == {"idle"}
    connector.close()
    # Whatever a caller leaves open on a connection is rolled back before the next one gets it.
    pool = Pool(lambda: psycopg.connect(server.url, autocommit=True, application_name="flowforge"),
                size=1, ping=pg_connector._ping, reset=pg_connector._reset)
    with pool.connection() as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM orders")
        assert server.sessions() == [(conn.info.backend_pid, "idle in transaction")]
    assert server.sessions() == [(conn.info.backend_pid, "idle")]
    pool.close()


def test_a_setting_changed_by_one_query_does_not_reach_the_next(server: Server) -> None:
    """The session is read-only so that a function that writes fails; a query that turns that
    off must not leave it off for the next caller of the same pooled session."""
    server.execute("CREATE SEQUENCE ids")
    connector = _connector(server, pool_size=1)
    connector.plan(ReadRequest(query="SELECT id, set_config('default_transaction_read_only', 'off', false) AS s "
                                     "FROM orders", incremental_column="id"), None)
    with pytest.raises(SourceSchemaError, match="read-only"):
        connector.plan(ReadRequest(query="SELECT nextval('ids') AS n", incremental_column="n"), None)
    assert server.execute("SELECT last_value, is_called FROM ids") == [(1, False)]
    connector.close()


def test_a_changed_table_is_described_afresh_on_a_reused_session(server: Server) -> None:
    connector = _connector(server, pool_size=1)
    request = ReadRequest(query="SELECT id, note FROM orders")
    for _ in range(8):  # more than psycopg's default threshold for preparing a statement
        assert [c.arrow_type for c in connector.columns(request)] == [pa.int32(), pa.string()]
    server.execute("ALTER TABLE orders ALTER COLUMN note TYPE bigint USING id")
    assert [c.arrow_type for c in connector.columns(request)] == [pa.int32(), pa.int64()]
    assert len(server.sessions()) == 1
    connector.close()


def test_pool_size_zero_keeps_no_session(server: Server) -> None:
    connector = _connector(server, pool_size=0)
    for _ in range(3):
        connector.list_tables()
    assert server.eventually_sessions(lambda s: not s) == []


def test_threads_get_sessions_of_their_own(server: Server) -> None:
    connector = _connector(server, pool_size=2)
    results: list[Any] = []
    start = threading.Barrier(6)

    def work(n: int) -> None:
        start.wait()
        for _ in range(5):
            query = f"SELECT id, pg_sleep(0.01)::text AS s FROM orders WHERE id <= {n + 10}"
            plan = connector.plan(ReadRequest(query=query, incremental_column="id"), None)
            results.append((n, plan.new_state))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 30
    assert all(state["high"]["value"] == n + 10 for n, state in results)
    # as many sessions as ran at once, then back to the two the pool keeps
    assert [state for _, state in server.eventually_sessions(lambda s: len(s) <= 2)] == ["idle", "idle"]
    connector.close()
    assert server.eventually_sessions(lambda s: not s) == []


# -- one connector per connection name in a Context -------------------------------------------

@pytest.fixture
def ctx(tmp_path: Path, server: Server) -> Iterator[Context]:
    from flowforge.core.project import init_project

    init_project(tmp_path / "project")
    with Context.open(tmp_path / "project") as context:
        context.connections.save("shop", {"type": "postgres", "url": server.url})
        yield context


def test_a_context_keeps_one_connector_until_the_connection_changes(ctx: Context, server: Server) -> None:
    first = ctx.connector("shop")
    for _ in range(3):
        with ctx.connector("shop") as conn:  # leaving the block does not close a kept connector
            assert conn is first
            conn.list_tables()
    [(pid, _)] = server.sessions()
    ctx.connections.save("shop", {"type": "postgres", "url": server.url, "pool_size": 1})
    second = ctx.connector("shop")
    assert second is not first and second.config.pool_size == 1
    second.list_tables()
    [(new_pid, _)] = server.eventually_sessions(lambda s: len(s) == 1 and pid not in dict(s))
    assert new_pid != pid  # the old connector's session was closed when the config changed
    ctx.connections.remove("shop")
    assert server.eventually_sessions(lambda s: not s) == []


def test_closing_the_context_closes_its_sessions(ctx: Context, server: Server) -> None:
    ctx.connections.tables("shop")
    ctx.connections.schema("shop", "orders")
    assert len(server.sessions()) == 1
    ctx.close()
    assert server.eventually_sessions(lambda s: not s) == []


def test_api_discovery_requests_reuse_one_session(tmp_path: Path, server: Server) -> None:
    for api in make_api(tmp_path / "project"):
        name = f"pg_{uuid.uuid4().hex[:6]}"
        assert api.post("/connections", "editor", json={"name": name, "type": "postgres",
                                                        "url": server.url}).status_code == 201
        assert api.post(f"/connections/{name}/test", "editor").json()["ok"]
        [(pid, _)] = server.sessions()
        for _ in range(3):
            assert "orders" in {t["name"] for t in api.get(f"/connections/{name}/tables", "editor").json()}
            assert api.get(f"/connections/{name}/schema?table=orders", "editor").status_code == 200
            assert api.get(f"/connections/{name}/preview?table=orders&limit=3", "editor").json()["count"] == 3
        # previews stream on connections of their own (ADBC); the pooled session stayed the same
        assert server.eventually_sessions(lambda s: len(s) == 1) == [(pid, "idle")]
    assert server.eventually_sessions(lambda s: not s) == []  # the app's shutdown closed the Context


def test_reads_of_a_process_share_one_adbc_handle_and_leave_no_session(server: Server,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An ADBC handle costs a round trip (the driver reads the server's type catalog); the reads of a
    process share one for a few minutes, and it holds no session between reads."""
    import adbc_driver_manager
    import adbc_driver_postgresql

    made: list[Any] = []
    real = adbc_driver_postgresql.connect

    def counted(uri: str, *args: Any, **kwargs: Any) -> Any:
        made.append(real(uri, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(adbc_driver_postgresql, "connect", counted)
    monkeypatch.setattr(pg_connector, "_DATABASES", pg_connector._Databases())
    connector = _connector(server, pool_size=0)

    def read() -> int:
        plan = connector.plan(ReadRequest(table="orders"), None)
        return sum(batch.num_rows for part in connector.read(plan) for batch in part.batches)

    assert [read(), read(), read()] == [20, 20, 20]
    assert len(made) == 1
    assert server.eventually_sessions(lambda s: not s) == []

    monkeypatch.setattr(pg_connector._Databases, "TTL", 0.0)  # the handle is old: the next read makes another
    assert read() == 20
    assert len(made) == 2
    with pytest.raises(adbc_driver_manager.Error):  # the old one was closed once no connection used it
        adbc_driver_manager.AdbcConnection(made[0])
    connector.close()
    assert server.eventually_sessions(lambda s: not s) == []
