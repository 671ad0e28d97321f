"""pg_logical against a real PostgreSQL started for this module with ``wal_level=logical``.

The shared test server runs with ``wal_level=replica``, so a session fixture runs ``initdb`` into a
temporary folder (as the ``postgres`` user when we are root), starts it on a free port with trust
authentication and removes it afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest
from flowforge.connectors.cdc.events import UNAVAILABLE
from flowforge.connectors.config import parse_connection


@pytest.fixture
def db(logical_pg: str) -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(logical_pg, autocommit=True)
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
    conn.execute("DROP SCHEMA IF EXISTS shop CASCADE")
    conn.execute("CREATE SCHEMA shop")
    conn.execute("CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric(10,2), "
                 "active boolean, seen timestamptz, notes text)")
    conn.execute("ALTER TABLE shop.items ALTER COLUMN notes SET STORAGE EXTERNAL")  # always TOASTed
    yield conn
    conn.close()


def _connector(url: str, **extra: Any) -> Any:
    config = parse_connection({"type": "pg_logical", "url": url, "slot": "ff_test",
                               "tables": ["shop.items"], **extra})
    return open_connector("items_cdc", config)


def _read(conn: Any, state: dict[str, Any] | None, *,
          markers: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Events of one plan + read; a snapshot's leading reset markers only when asked."""
    plan = conn.plan(ReadRequest(batch_size=1000), state)
    batches = [b for part in conn.read(plan) for b in part.batches]
    rows = pa.Table.from_batches(batches, schema=plan.schema).to_pylist() if batches else []
    if not markers:
        rows = [r for r in rows if r["_snapshot"] != "reset"]
    return rows, plan.new_state


def _slot_lsn(db: Any) -> str:
    return str(db.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
                          "WHERE slot_name = 'ff_test'").fetchone()[0])


def test_snapshot_then_every_kind_of_change(logical_pg: str, db: Any) -> None:
    big = "x" * 20_000
    db.execute("INSERT INTO shop.items VALUES (1, 'pen', 1.50, true, '2024-05-01 10:00:00+00', %s), "
               "(2, 'ink', NULL, false, NULL, 'short')", (big,))
    with _connector(logical_pg) as conn:
        snap, state = _read(conn, None, markers=True)
        # a snapshot replaces what silver holds of the table: a reset marker first, then the rows
        assert [(r["_op"], r["_snapshot"]) for r in snap[:1]] == [("t", "reset")]
        snap = snap[1:]
        assert [(r["_op"], json.loads(r["_key"])) for r in snap] == [("r", {"id": 1}), ("r", {"id": 2})]
        assert snap[0]["_source_ts"] is not None  # the snapshot's time: SCD2 valid_from of these rows
        first = json.loads(snap[0]["_after"])
        assert first == {"id": 1, "name": "pen", "price": "1.50", "active": True,
                         "seen": "2024-05-01T10:00:00Z", "notes": big}
        assert json.loads(snap[0]["_schema"])["price"] == "decimal(10,2)"
        assert {r["_snapshot"] for r in snap} == {"true"}

        db.execute("INSERT INTO shop.items VALUES (3, 'cap', 2.00, true, NULL, NULL)")
        db.execute("UPDATE shop.items SET name = 'fountain pen' WHERE id = 1")  # notes left unchanged
        db.execute("DELETE FROM shop.items WHERE id = 2")
        db.execute("TRUNCATE shop.items")
        changes, state2 = _read(conn, state)
    assert [r["_op"] for r in changes] == ["c", "u", "d", "t"]
    update = json.loads(changes[1]["_after"])
    assert update["name"] == "fountain pen" and update["notes"] == UNAVAILABLE
    assert json.loads(changes[2]["_before"]) == {"id": 2} and changes[2]["_after"] is None
    assert changes[3]["_table"] == "shop.items" and changes[3]["_key"] is None
    positions = [r["_source_position"] for r in snap + changes]
    assert positions == sorted(positions) and positions[0] < positions[2]
    assert all(r["_source_ts"] is not None for r in changes)
    assert len({r["_event_id"] for r in snap + changes}) == 6
    assert state2 is not None and state2["lsn"] != state["lsn"]  # type: ignore[index]


def test_crash_before_commit_replays_the_same_events_then_moves_on(logical_pg: str, db: Any) -> None:
    with _connector(logical_pg) as conn:
        _, state = _read(conn, None)
        db.execute("INSERT INTO shop.items (id, name) SELECT g, 'n' || g FROM generate_series(1, 50) g")
        db.execute("UPDATE shop.items SET name = 'changed' WHERE id <= 10")
        first, crashed_state = _read(conn, state)  # read, but the bronze commit never happens
        assert len(first) == 60
        assert _slot_lsn(db) == state["lsn"]  # type: ignore[index]  # the slot is not ahead of bronze

        db.execute("DELETE FROM shop.items WHERE id = 50")  # arrives after the crashed plan's bound
        again, committed = _read(conn, state)  # same stored state: replays the same window (and more)
        assert [r["_event_id"] for r in again[:60]] == [r["_event_id"] for r in first]
        assert [r["_op"] for r in again[60:]] == ["d"]

        # ``committed`` is now in bronze: the next plan advances the slot to it and reads only newer ones
        db.execute("INSERT INTO shop.items (id, name) VALUES (100, 'late')")
        newer, _ = _read(conn, committed)
        assert _slot_lsn(db) == committed["lsn"]  # type: ignore[index]
        assert [(r["_op"], json.loads(r["_key"])) for r in newer] == [("c", {"id": 100})]
        assert not ({r["_event_id"] for r in newer} & {r["_event_id"] for r in again})
        assert crashed_state is not None


def test_uncommitted_first_run_takes_a_new_snapshot(logical_pg: str, db: Any) -> None:
    db.execute("INSERT INTO shop.items (id, name) VALUES (1, 'a')")
    with _connector(logical_pg) as conn:
        _read(conn, None)  # snapshot read, never committed
        db.execute("INSERT INTO shop.items (id, name) VALUES (2, 'b')")
        snap, state = _read(conn, None)  # recreates the slot, snapshot holds both rows
        assert sorted(json.loads(r["_key"])["id"] for r in snap) == [1, 2]
        changes, _ = _read(conn, state)
        assert changes == []


def test_without_snapshot_the_first_run_commits_the_slot_position_only(logical_pg: str, db: Any) -> None:
    db.execute("INSERT INTO shop.items (id, name) VALUES (1, 'before the slot')")
    with _connector(logical_pg, snapshot=False) as conn:
        plan = conn.plan(ReadRequest(), None)
        assert plan.has_data  # nothing to read, but the position must reach the bronze commit
        assert [b for part in conn.read(plan) for b in part.batches] == []
        db.execute("INSERT INTO shop.items (id, name) VALUES (2, 'after')")
        changes, _ = _read(conn, plan.new_state)
    assert [(r["_op"], json.loads(r["_key"])) for r in changes] == [("c", {"id": 2})]


def test_snapshot_handoff_loses_and_duplicates_nothing_under_concurrent_writes(logical_pg: str, db: Any) -> None:
    import psycopg

    db.execute("INSERT INTO shop.items (id, name) SELECT g, 'seed' FROM generate_series(1, 2000) g")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        with psycopg.connect(logical_pg, autocommit=True) as w:
            next_id = 10_000
            while not stop.is_set():
                w.execute("INSERT INTO shop.items (id, name) VALUES (%s, 'live')", (next_id,))
                written.append(next_id)
                next_id += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with _connector(logical_pg) as conn:
            snap, state = _read(conn, None)
            stop.set()
            thread.join()
            changes, _ = _read(conn, state)
    finally:
        stop.set()
        thread.join()
    snap_ids = [json.loads(r["_key"])["id"] for r in snap]
    stream_ids = [json.loads(r["_key"])["id"] for r in changes if r["_op"] == "c"]
    assert len(written) > 0
    assert sorted(snap_ids + stream_ids) == list(range(1, 2001)) + written  # no loss, no duplicate
    assert min(r["_source_position"] for r in changes) > snap[0]["_source_position"] if changes else True


def test_preview_never_touches_the_slot(logical_pg: str, db: Any) -> None:
    db.execute("INSERT INTO shop.items (id, name) SELECT g, 'x' FROM generate_series(1, 30) g")
    with _connector(logical_pg) as conn:
        _, state = _read(conn, None)
        slot_before = _slot_lsn(db)
        preview = conn.preview(ReadRequest(), limit=5)
        assert preview.num_rows == 5 and set(preview.column("_op").to_pylist()) == {"r"}
        assert conn.row_count(ReadRequest()) == 30
        assert _slot_lsn(db) == slot_before  # the CDC job's slot is still there, where it was
        db.execute("INSERT INTO shop.items (id, name) VALUES (31, 'y')")
        assert [r["_op"] for r in _read(conn, state)[0]] == ["c"]


def test_missing_slot_with_stored_state_is_reported(logical_pg: str, db: Any) -> None:
    from flowforge.errors import SourceNotFound

    with _connector(logical_pg) as conn:
        _, state = _read(conn, None)
        conn.drop_slot()
        with pytest.raises(SourceNotFound, match="slot 'ff_test' is gone"):
            conn.plan(ReadRequest(), state)


def test_cdc_workflow_keeps_silver_scd1_equal_to_the_source_table(logical_pg: str, db: Any, tmp_path: Path) -> None:
    import yaml
    from deltalake import DeltaTable

    from flowforge.core.context import Context
    from flowforge.core.project import init_project, write_project_file

    root = tmp_path / "p"
    init_project(root)
    (root / "workflows" / "example.yml").unlink()
    write_project_file(root, {"shop": {"type": "pg_logical", "url": logical_pg, "slot": "ff_test",
                                       "tables": ["shop.items"]}})
    wf = {"name": "cdc", "jobs": [{"name": "items", "kind": "cdc", "connection": "shop", "target": "bronze_items",
                                   "tables": [{"target": "items", "strategy": "scd1", "keys": ["id"]}]}]}
    (root / "workflows" / "cdc.yml").write_text(yaml.safe_dump(wf), encoding="utf-8")
    long_notes = "n" * 10_000

    def run() -> None:
        with Context.open(root) as ctx:
            summary = ctx.run("cdc")
        assert summary.status == "success", "\n".join(e.error or "" for e in summary.failed)

    def same_as_source() -> None:
        want = db.execute("SELECT id, name, price::text, active, notes FROM shop.items ORDER BY id").fetchall()
        silver = DeltaTable(str(root / "lakehouse" / "silver" / "items")).to_pyarrow_table().to_pylist()
        got = sorted((r["id"], r["name"], None if r["price"] is None else str(r["price"]), r["active"], r["notes"])
                     for r in silver)
        assert got == [tuple(w) for w in want]

    db.execute("INSERT INTO shop.items (id, name, price, active, notes) SELECT g, 'item ' || g, g * 1.25, g %% 2 = 0, "
               "%s FROM generate_series(1, 20) g", (long_notes,))
    run()  # the snapshot
    same_as_source()
    db.execute("UPDATE shop.items SET name = 'renamed' WHERE id <= 5")  # TOASTed notes left unchanged
    db.execute("DELETE FROM shop.items WHERE id BETWEEN 15 AND 17")
    db.execute("INSERT INTO shop.items (id, name, price) VALUES (21, 'new', 9.99)")
    db.execute("UPDATE shop.items SET price = 0 WHERE id = 21")
    run()
    same_as_source()
    run()  # nothing new: still equal, nothing duplicated
    same_as_source()
