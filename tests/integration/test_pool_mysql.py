"""Pooled discovery connections of the MySQL / MariaDB connector, seen from the server: the
connector logs in as a user of its own, so its sessions are that user's rows of
``information_schema.PROCESSLIST``. The module's database is dropped afterwards."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.waiting import eventually

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest
from flowforge.connectors.sql.mysql import catalog, driver
from flowforge.connectors.sql.mysql import connector as mysql_connector
from flowforge.connectors.sql.mysql.config import MysqlConfig
from flowforge.connectors.sql.pool import Pool

pymysql = pytest.importorskip("pymysql")

pytestmark = pytest.mark.mysql

ADMIN_URL = "mysql://root@127.0.0.1:3306/test"
PASSWORD = "Pool-pw-never-shown-51c"


def _admin(database: str | None = None) -> Any:
    import os

    args = MysqlConfig(type="mysql", url=os.environ.get("FLOWFORGE_TEST_MYSQL_URL", ADMIN_URL)).connect_args()
    return pymysql.connect(host=args["host"], port=args["port"], user=args["user"], password=args["password"],
                           database=database or args["database"], autocommit=True, connect_timeout=5)


class Server:
    def __init__(self, database: str, user: str) -> None:
        self.database, self.user = database, user

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with _admin(self.database) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())

    def sessions(self) -> list[int]:
        return sorted(int(r[0]) for r in self.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (self.user,)))

    def eventually_sessions(self, wanted: Callable[[list[int]], bool]) -> list[int]:
        return eventually(self.sessions, wanted)

    def config(self, **options: Any) -> MysqlConfig:
        return MysqlConfig(type="mysql", host="127.0.0.1", database=self.database, user=self.user,
                           password=PASSWORD, driver="pymysql", **options)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    try:
        admin = _admin()
    except pymysql.err.MySQLError as exc:
        reason = f"MariaDB/MySQL not reachable: {exc}"
        if os.environ.get("FLOWFORGE_REQUIRE_MYSQL"):
            pytest.fail(reason)
        pytest.skip(reason)
    database, user = f"flowforge_pool_{uuid.uuid4().hex[:10]}", f"ffpool_{uuid.uuid4().hex[:8]}"
    with admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT SELECT, EXECUTE ON `{database}`.* TO '{user}'@'%'")
    found = Server(database, user)
    found.execute("CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20))")
    found.execute("INSERT INTO orders SELECT seq, seq * 1.5, CONCAT('n', seq) FROM seq_1_to_20")
    found.execute("CREATE PROCEDURE big_orders(IN least INT) SELECT id, amount FROM orders WHERE id >= least")
    try:
        yield found
    finally:
        with _admin() as admin, admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")


@pytest.fixture
def connector(server: Server) -> Iterator[Connector]:
    with open_connector("shop", server.config()) as conn:
        yield conn
    assert server.eventually_sessions(lambda s: not s) == [], "close() must end every session"


def test_ten_discovery_calls_use_one_session(connector: Connector, server: Server) -> None:
    assert connector.test().ok
    [session] = server.sessions()
    calls = [connector.list_tables, lambda: connector.columns(ReadRequest(table="orders")),
             lambda: connector.plan(ReadRequest(table="orders", incremental_column="id"), None)] * 3
    for call in calls:
        call()
        assert server.sessions() == [session]


def test_a_session_killed_on_the_server_is_replaced_transparently(connector: Connector, server: Server) -> None:
    connector.list_tables()
    [session] = server.sessions()
    server.execute(f"KILL {session}")
    assert server.eventually_sessions(lambda s: not s) == []
    assert "orders" in {t.name for t in connector.list_tables()}
    [new] = server.sessions()
    assert new != session


def test_a_session_lost_mid_call_is_retried_on_a_new_one(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(driver, "sleep", slept.append)
    real, killed = catalog.list_tables, list[int]()

    def killed_once(conn: Any) -> Any:
        if not killed:  # the server drops the connection after it passed its ping
            killed.append(conn.thread_id())
            server.execute(f"KILL {int(conn.thread_id())}")
        return real(conn)

    monkeypatch.setattr(catalog, "list_tables", killed_once)
    with open_connector("shop", server.config(retries=2)) as connector:
        assert "orders" in {t.name for t in connector.list_tables()}
        assert slept == [0.5]
        assert server.sessions() not in ([], killed)


def test_describing_a_procedure_leaves_no_transaction_and_no_unread_result(connector: Connector,
                                                                          server: Server) -> None:
    plan = connector.plan(ReadRequest(procedure="big_orders", params=(("least", 5),)), None)
    assert plan.schema.names == ["id", "amount"]
    # The describing session (in a READ ONLY transaction, its result unread) was closed, not
    # pooled: the next calls work, and nothing holds a lock on the table the procedure read.
    for _ in range(3):
        assert [c.name for c in connector.columns(ReadRequest(table="orders"))] == ["id", "amount", "note"]
    server.execute("CREATE TABLE orders_copy LIKE orders")
    with _admin(server.database) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 5")
        cur.execute("RENAME TABLE orders TO orders_old, orders_copy TO orders")  # needs every table lock
        cur.execute("DROP TABLE orders")
        cur.execute("RENAME TABLE orders_old TO orders")
    assert len(server.sessions()) == 1


def test_a_transaction_left_open_is_rolled_back_before_reuse(server: Server) -> None:
    def connect() -> Any:
        return driver.connect(server.config(), "pymysql")

    pool = Pool(connect, size=1, ping=mysql_connector._ping, reset=mysql_connector._reset)
    with pool.connection() as conn:
        catalog.execute(conn, catalog.START_READ_ONLY)
        assert catalog.execute(conn, "SELECT @@in_transaction") == [(1,)]
    with pool.connection() as again:
        assert again is conn and catalog.execute(again, "SELECT @@in_transaction") == [(0,)]
        # the session the connector set up is still there: UTC, read-only transactions
        assert catalog.execute(again, "SELECT @@session.time_zone, @@session.tx_read_only") == [("+00:00", 1)]
    pool.close()


def test_threads_never_share_a_session(server: Server) -> None:
    """PyMySQL connections are not thread-safe: two threads on one would mix their packets."""
    errors: list[BaseException] = []
    start = threading.Barrier(6)
    with open_connector("shop", server.config(pool_size=2)) as connector:
        def work(n: int) -> None:
            try:
                start.wait()
                for _ in range(10):
                    assert [c.name for c in connector.columns(ReadRequest(table="orders"))] == ["id", "amount", "note"]
                    plan = connector.plan(ReadRequest(query=f"SELECT id FROM orders WHERE id <= {n + 10}",
                                                      incremental_column="id"), None)
                    assert plan.new_state is not None and plan.new_state["high"]["value"] == n + 10
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(server.eventually_sessions(lambda s: len(s) <= 2)) == 2
    assert server.eventually_sessions(lambda s: not s) == []


def test_pool_size_zero_keeps_no_session(server: Server) -> None:
    connector = open_connector("shop", server.config(pool_size=0))
    for _ in range(3):
        connector.list_tables()
    assert server.eventually_sessions(lambda s: not s) == []
