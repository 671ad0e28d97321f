"""mysql_binlog against a real MariaDB started for this module with a row-based binlog.

The shared MariaDB runs without a binlog, so a session fixture runs ``mariadb-install-db`` into a
temporary folder, starts ``mariadbd`` on a free port with ``--log-bin --binlog-format=ROW
--binlog-row-metadata=FULL`` (root without a password, bound to 127.0.0.1) and stops it afterwards.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest
from flowforge.connectors.config import parse_connection

pytest.importorskip("pymysqlreplication", reason="mysql-replication is not installed (pip install 'flowforge[cdc]')")
pymysql = pytest.importorskip("pymysql", reason="PyMySQL is not installed")


@pytest.fixture
def db(binlog_server: int) -> Iterator[Any]:
    conn = pymysql.connect(host="127.0.0.1", port=binlog_server, user="root", autocommit=True)
    cur = conn.cursor()
    cur.execute("DROP DATABASE IF EXISTS shop")
    cur.execute("CREATE DATABASE shop")
    cur.execute("CREATE TABLE shop.items (id int PRIMARY KEY, name varchar(50), price decimal(10,2), "
                "notes longtext, doc json, seen timestamp(6) NULL)")
    cur.execute("CREATE TABLE shop.other (id int PRIMARY KEY)")  # not captured
    yield cur
    conn.close()


def _connector(port: int) -> Any:
    return open_connector("items_binlog", parse_connection({"type": "mysql_binlog", "host": "127.0.0.1", "port": port,
                                                            "user": "root", "tables": ["shop.items"]}))


def _read(conn: Any, state: dict[str, Any] | None, *,
          markers: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Events of one plan + read; a snapshot's leading reset markers only when asked."""
    plan = conn.plan(ReadRequest(batch_size=500), state)
    batches = [b for part in conn.read(plan) for b in part.batches]
    rows = pa.Table.from_batches(batches, schema=plan.schema).to_pylist() if batches else []
    if not markers:
        rows = [r for r in rows if r["_snapshot"] != "reset"]
    return rows, plan.new_state


def test_snapshot_then_every_kind_of_change(binlog_server: int, db: Any) -> None:
    big = "y" * 100_000
    db.execute("INSERT INTO shop.items VALUES (1, 'pen', 1.50, %s, '{\"a\": 1}', '2024-05-01 10:00:00'), "
               "(2, 'ink', NULL, NULL, NULL, NULL)", (big,))
    with _connector(binlog_server) as conn:
        assert conn.test().ok
        snap, state = _read(conn, None, markers=True)
        assert [(r["_op"], r["_snapshot"]) for r in snap[:1]] == [("t", "reset")]
        snap = snap[1:]
        assert [(r["_op"], json.loads(r["_key"])) for r in snap] == [("r", {"id": 1}), ("r", {"id": 2})]
        assert snap[0]["_source_ts"] is not None
        assert json.loads(snap[0]["_after"]) == {"id": 1, "name": "pen", "price": "1.50", "notes": big,
                                                 "doc": '{"a": 1}', "seen": "2024-05-01T10:00:00Z"}
        db.execute("INSERT INTO shop.items (id, name) VALUES (3, 'cap')")
        db.execute("INSERT INTO shop.other VALUES (1)")
        db.execute("UPDATE shop.items SET name = 'fountain pen' WHERE id = 1")  # the large text left unchanged
        db.execute("DELETE FROM shop.items WHERE id = 2")
        db.execute("TRUNCATE TABLE shop.items")
        changes, _ = _read(conn, state)
    assert [r["_op"] for r in changes] == ["c", "u", "d", "t"]
    update = changes[1]
    assert json.loads(update["_before"])["name"] == "pen"
    assert json.loads(update["_after"]) == {**json.loads(snap[0]["_after"]), "name": "fountain pen"}
    assert json.loads(changes[2]["_before"])["id"] == 2 and changes[2]["_after"] is None
    positions = [r["_source_position"] for r in snap + changes]
    assert positions == sorted(positions) and snap[-1]["_source_position"] < changes[0]["_source_position"]
    assert json.loads(snap[0]["_schema"])["price"] == "decimal(10,2)"


def test_crash_before_commit_replays_the_same_events_then_moves_on(binlog_server: int, db: Any) -> None:
    with _connector(binlog_server) as conn:
        _, state = _read(conn, None)
        db.executemany("INSERT INTO shop.items (id, name) VALUES (%s, %s)", [(i, f"n{i}") for i in range(1, 31)])
        db.execute("UPDATE shop.items SET name = 'changed' WHERE id <= 10")
        first, _ = _read(conn, state)  # never committed
        assert len(first) == 40
        db.execute("DELETE FROM shop.items WHERE id = 30")
        again, committed = _read(conn, state)
        assert [r["_event_id"] for r in again[:40]] == [r["_event_id"] for r in first]
        assert [r["_op"] for r in again[40:]] == ["d"]
        db.execute("INSERT INTO shop.items (id, name) VALUES (100, 'late')")
        newer, _ = _read(conn, committed)
        assert [(r["_op"], json.loads(r["_key"])) for r in newer] == [("c", {"id": 100})]
        assert _read(conn, committed)[0] == newer  # the binlog is not consumed: a replay is identical


def test_snapshot_handoff_loses_and_duplicates_nothing_under_concurrent_writes(binlog_server: int, db: Any) -> None:
    db.executemany("INSERT INTO shop.items (id, name) VALUES (%s, 'seed')", [(i,) for i in range(1, 1001)])
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        w = pymysql.connect(host="127.0.0.1", port=binlog_server, user="root", autocommit=True)
        next_id = 10_000
        while not stop.is_set():
            w.cursor().execute("INSERT INTO shop.items (id, name) VALUES (%s, 'live')", (next_id,))
            written.append(next_id)
            next_id += 1
        w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        with _connector(binlog_server) as conn:
            snap, state = _read(conn, None)
            time.sleep(0.2)
            stop.set()
            thread.join()
            changes, _ = _read(conn, state)
    finally:
        stop.set()
        thread.join()
    ids = [json.loads(r["_key"])["id"] for r in snap] + [json.loads(r["_key"])["id"] for r in changes]
    assert len(written) > 0 and len(changes) > 0
    assert sorted(ids) == list(range(1, 1001)) + written  # no loss, no duplicate
