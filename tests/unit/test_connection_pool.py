"""The generic connection pool of the SQL connectors, on real SQLite connections (DB-API, a file
database shared by every connection, so one connection's uncommitted rows are visible to none)."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from flowforge.connectors.config import ConnectionConfig, parse_connection
from flowforge.connectors.sql.mysql.config import MysqlConfig
from flowforge.connectors.sql.pool import Pool
from flowforge.connectors.sql.postgres.config import PostgresConfig
from flowforge.connectors.sql.sqlserver.config import SqlServerConfig
from flowforge.errors import ConnectionFailed, SourceNotFound


class Counting:
    """Makes SQLite connections to one file and remembers each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made: list[sqlite3.Connection] = []
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")

    def __call__(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        self.made.append(conn)
        return conn


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1")


def _reset(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.rollback()


def _closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


@pytest.fixture
def connect(tmp_path: Path) -> Counting:
    return Counting(tmp_path / "pool.db")


def _pool(connect: Callable[[], sqlite3.Connection], **kw: object) -> Pool[sqlite3.Connection]:
    return Pool(connect, ping=_ping, reset=_reset, **kw)


def test_sequential_checkouts_reuse_one_connection(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    for _ in range(10):
        with pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert len(connect.made) == 1 and pool.idle == 1
    pool.close()
    assert _closed(connect.made[0]) and pool.idle == 0


def test_size_zero_connects_and_closes_every_time(connect: Counting) -> None:
    pool = _pool(connect, size=0)
    for _ in range(3):
        with pool.connection():
            pass
    assert len(connect.made) == 3 and all(_closed(c) for c in connect.made) and pool.idle == 0


def test_at_most_size_idle_connections_are_kept(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection() as a, pool.connection() as b, pool.connection() as c:
        assert len({id(a), id(b), id(c)}) == 3
    assert pool.idle == 2 and sum(_closed(x) for x in connect.made) == 1
    pool.close()


def test_a_connection_dropped_while_idle_is_replaced(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection() as first:
        pass
    first.close()  # what a server restart or a DBA's KILL does behind the pool's back
    with pool.connection() as second:
        assert second is not first and second.execute("SELECT 1").fetchone() == (1,)
    assert len(connect.made) == 2 and pool.idle == 1
    pool.close()


def test_a_driver_error_discards_the_connection_an_own_error_keeps_it(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pytest.raises(SourceNotFound), pool.connection() as kept:
        raise SourceNotFound("table 'x' does not exist")  # our check: the connection is fine
    with pool.connection() as again:
        assert again is kept
    with pytest.raises(sqlite3.OperationalError), pool.connection() as broken:
        broken.execute("SELECT * FROM no_such_table")
    assert _closed(broken) and pool.idle == 0
    with pytest.raises(ConnectionFailed), pool.connection() as translated:
        try:
            translated.execute("SELEC")
        except sqlite3.OperationalError as exc:  # what the connectors' error mapping does
            raise ConnectionFailed("could not list tables") from exc
    assert _closed(translated) and pool.idle == 0


def test_discard_closes_the_connection_when_it_comes_back(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection() as conn:
        pool.discard(conn)
        assert not _closed(conn)
    assert _closed(conn) and pool.idle == 0


def test_a_transaction_left_open_is_rolled_back_before_reuse(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection() as conn:
        conn.execute("INSERT INTO t VALUES (1)")  # sqlite3 opens a transaction here
        assert conn.in_transaction
    assert not conn.in_transaction
    with sqlite3.connect(connect.path) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
    pool.close()


def test_a_connection_whose_reset_fails_is_not_kept(connect: Counting) -> None:
    def reset(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("busy")

    pool = Pool(connect, size=2, ping=_ping, reset=reset)
    with pool.connection() as conn:
        pass
    assert _closed(conn) and pool.idle == 0


def test_idle_connections_past_the_timeout_are_closed(connect: Counting) -> None:
    now = [0.0]
    pool = _pool(connect, size=2, idle_timeout=60.0, clock=lambda: now[0])
    with pool.connection() as old:
        pass
    now[0] = 61.0
    with pool.connection() as new:
        assert new is not old
    assert _closed(old) and len(connect.made) == 2
    pool.close()


def test_the_timer_closes_idle_connections_nobody_asks_for(connect: Counting) -> None:
    pool = _pool(connect, size=2, idle_timeout=0.05)
    with pool.connection() as conn:
        pass
    done = threading.Event()
    for _ in range(200):  # the timer runs on its own thread; wait for it, up to 10 s
        if pool.idle == 0:
            done.set()
            break
        threading.Event().wait(0.05)
    assert done.is_set() and _closed(conn)


def test_close_closes_idle_now_and_lent_on_return_and_the_pool_stays_usable(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection() as idle:
        pass
    with pool.connection() as lent:
        assert lent is idle
        with pool.connection() as other:
            pool.close()
            assert not _closed(other)  # in use: closed when it comes back, not under the caller
        assert _closed(other)
    assert _closed(lent) and pool.idle == 0
    with pool.connection() as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
    assert pool.idle == 1
    pool.close()


def test_fresh_checkout_connects_anew_then_joins_the_pool(connect: Counting) -> None:
    pool = _pool(connect, size=2)
    with pool.connection():
        pass
    with pool.connection(fresh=True):
        pass
    assert len(connect.made) == 2 and pool.idle == 2
    pool.close()


def test_a_failed_connect_propagates_and_leaves_the_pool_clean(connect: Counting) -> None:
    def refuse() -> sqlite3.Connection:
        raise ConnectionFailed("refused")

    pool = Pool(refuse, size=2, ping=_ping, reset=_reset)
    with pytest.raises(ConnectionFailed), pool.connection():
        pass
    assert pool.idle == 0


def test_threads_never_share_a_connection(connect: Counting) -> None:
    pool = _pool(connect, size=3)
    in_use: set[int] = set()
    guard = threading.Lock()
    shared: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait()
            for _ in range(200):
                with pool.connection() as conn:
                    with guard:
                        if id(conn) in in_use:
                            shared.append(id(conn))
                        in_use.add(id(conn))
                    conn.execute("SELECT count(*) FROM t").fetchone()
                    with guard:
                        in_use.discard(id(conn))
        except BaseException as exc:  # surfaced below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and shared == []
    # connections beyond the idle three were closed when they came back
    assert pool.idle == 3 and sum(not _closed(c) for c in connect.made) == 3
    pool.close()
    assert all(_closed(c) for c in connect.made)


@pytest.mark.parametrize("model", [PostgresConfig, MysqlConfig, SqlServerConfig])
def test_pool_size_is_set_per_connection_and_zero_turns_pooling_off(model: type[ConnectionConfig]) -> None:
    block = re.search(r"```yaml\n(.*?)```", model.__doc__ or "", re.S)
    assert block is not None
    example = next(iter(yaml.safe_load(block.group(1))["connections"].values()))
    assert example["pool_size"] == 2 and parse_connection(example).pool_size == 2
    assert parse_connection({**example, "pool_size": 0}).pool_size == 0
    with pytest.raises(ValueError, match="pool_size"):
        parse_connection({**example, "pool_size": -1})
