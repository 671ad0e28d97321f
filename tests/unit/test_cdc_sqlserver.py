"""sqlserver_cdc without a server: generated T-SQL (snapshots), LSN arithmetic, and the decoding of
change rows built as ``cdc.fn_cdc_get_all_changes_*`` returns them. A live round trip runs only
when FLOWFORGE_TEST_SQLSERVER_URL points at a SQL Server with CDC and its Agent running."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
from pathlib import Path
from typing import Any

import pytest

from flowforge.connectors import connector_class
from flowforge.connectors.cdc.events import to_batch
from flowforge.connectors.cdc.sqlserver_cdc import decode, lsn, sql
from flowforge.connectors.cdc.sqlserver_cdc.connector import window
from flowforge.connectors.config import parse_connection
from flowforge.errors import SourceSchemaError

SNAPSHOTS = Path(__file__).parent / "snapshots" / "cdc_sqlserver"
PRODUCT = decode.CapturedTable(
    schema="dbo", table="Product", capture_instance="dbo_Product",
    columns=("ID", "Name", "Price", "Updated", "Photo"),
    types=("int", "nvarchar(200)", "decimal(15,2)", "datetime2", "varbinary(max)"), key_columns=("ID",))


def _snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("FLOWFORGE_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


def L(text: str) -> bytes:
    return lsn.from_text(text)


def test_generated_sql_snapshots() -> None:
    _snapshot("all_changes.sql", sql.all_changes("dbo_Product", PRODUCT.columns, "?"))
    _snapshot("snapshot_select.sql", sql.snapshot_select("dbo", "Product", PRODUCT.columns))
    _snapshot("help_capture_instance.sql", sql.help_capture_instance("%s"))


def test_identifiers_are_bracket_quoted() -> None:
    text = sql.all_changes("dbo_Odd", ("we]ird",), "?")
    assert "c.[we]]ird]" in text and "cdc.[fn_cdc_get_all_changes_dbo_Odd](?, ?, N'all update old')" in text


def test_lsn_text_round_trip_and_arithmetic() -> None:
    raw = bytes.fromhex("0000002f000001e80002")
    assert lsn.to_text(raw) == "0000002f:000001e8:0002"
    assert lsn.from_text("0000002f:000001e8:0002") == raw == lsn.from_text("0x0000002F000001E80002")
    assert lsn.to_text(lsn.increment(L("0000002f:000001e8:ffff"))) == "0000002f:000001e9:0000"
    assert lsn.decrement(lsn.increment(raw)) == raw
    with pytest.raises(ValueError, match="not an LSN"):
        lsn.from_text("2f:1e8:2")


def test_positions_sort_in_log_order_and_snapshot_comes_first() -> None:
    snap = lsn.snapshot_position(L("0000002f:000001e8:0002"))
    a = lsn.position(L("0000002f:000001e8:0003"), L("0000002f:000001e0:0002"), 1)
    b = lsn.position(L("0000002f:000001e8:0003"), L("0000002f:000001e0:0002"), 2)
    c = lsn.position(L("00000030:00000010:0001"), L("0000002f:00000fff:0001"), 1)
    assert snap < a < b < c
    assert a == "mssql:0000002f:000001e8:0003:0000002f:000001e0:0002:00000000000000000001"


def test_window_reads_after_the_stored_lsn_up_to_the_planned_one() -> None:
    stored, upper = L("00000010:00000000:0001"), L("00000020:00000000:0001")
    assert window(stored, L("00000001:00000000:0001"), upper, "t") == (lsn.increment(stored), upper)
    assert window(None, L("00000005:00000000:0001"), upper, "t") == (L("00000005:00000000:0001"), upper)
    assert window(upper, L("00000001:00000000:0001"), upper, "t") is None  # nothing new
    with pytest.raises(SourceSchemaError, match="removed by CDC cleanup"):
        window(stored, L("00000015:00000000:0001"), upper, "dbo.Product")


def _change(start: str, seq: str, op: int, *values: Any) -> tuple[Any, ...]:
    return (L(start), L(seq), op, dt.datetime(2025, 10, 18, 14, 56, 47), *values)


def test_change_rows_become_events() -> None:
    when = dt.datetime(2025, 10, 1, 12, 0, 0, 123456)
    rows = [
        _change("00000027:00000758:0003", "00000027:00000758:0002", 2, 1, "Pen", decimal.Decimal("1.50"), when,
                b"\x01"),
        _change("00000027:00000760:0005", "00000027:00000760:0002", 3, 1, "Pen", decimal.Decimal("1.50"), when, None),
        _change("00000027:00000760:0005", "00000027:00000760:0002", 4, 1, "Fountain pen",
                decimal.Decimal("2.00"), when, None),
        _change("00000027:00000770:0004", "00000027:00000770:0002", 1, 1, "Fountain pen",
                decimal.Decimal("2.00"), when, None),
    ]
    events = list(decode.change_events(PRODUCT, rows))
    assert [e.op for e in events] == ["c", "u", "d"]
    insert, update, delete = (e.row() for e in events)
    assert json.loads(insert["_after"]) == {"ID": 1, "Name": "Pen", "Price": "1.50",
                                            "Updated": "2025-10-01T12:00:00.123456", "Photo": "AQ=="}
    assert json.loads(update["_before"])["Name"] == "Pen" and json.loads(update["_after"])["Name"] == "Fountain pen"
    assert update["_source_position"].endswith(":00000000000000000002")  # the after-image's serial
    assert delete["_after"] is None and json.loads(delete["_key"]) == {"ID": 1}
    assert json.loads(insert["_schema"]) == {"ID": "int32", "Name": "string", "Price": "decimal(15,2)",
                                             "Updated": "timestamp", "Photo": "binary"}
    assert insert["_source_ts"] == dt.datetime(2025, 10, 18, 14, 56, 47, tzinfo=dt.UTC)
    positions = [r["_source_position"] for r in (insert, update, delete)]
    assert positions == sorted(positions)
    assert to_batch(events).num_rows == 3


def test_replayed_window_gives_the_same_event_ids() -> None:
    rows = [_change("00000027:00000758:0003", "00000027:00000758:0002", 2, 7, "x", None, None, None)]
    first = [e.row()["_event_id"] for e in decode.change_events(PRODUCT, rows)]
    again = [e.row()["_event_id"] for e in decode.change_events(PRODUCT, rows)]
    assert first == again


def test_snapshot_rows_become_read_events() -> None:
    events = list(decode.snapshot_events(PRODUCT, [(1, "Pen", decimal.Decimal("1.50"), None, None)],
                                         L("00000027:00000758:0003")))
    row = events[0].row()
    assert (row["_op"], row["_snapshot"], json.loads(row["_key"])) == ("r", "true", {"ID": 1})
    assert row["_source_position"].startswith("mssql:00000027:00000758:0003:00000000:00000000:0000:")


@pytest.mark.parametrize(("declared", "logical"), [
    ("money", "decimal(19,4)"), ("numeric(9, 3)", "decimal(9,3)"), ("bit", "boolean"), ("bigint", "int64"),
    ("datetimeoffset(7)", "timestamptz"), ("uniqueidentifier", "string"), ("date", "date")])
def test_logical_types(declared: str, logical: str) -> None:
    assert decode.logical_type(declared) == logical


def test_config_and_registry() -> None:
    config = parse_connection({"type": "sqlserver_cdc", "host": "db1", "database": "ConcordDb", "user": "u",
                               "password": "secret", "tables": ["dbo.Product"]})
    assert connector_class("sqlserver_cdc").capabilities.cdc
    assert config.capture_instance("dbo", "Product") == "dbo_Product"  # type: ignore[attr-defined]
    assert "secret" not in config.describe()


@pytest.mark.skipif(not os.environ.get("FLOWFORGE_TEST_SQLSERVER_URL"),
                    reason="no SQL Server here: set FLOWFORGE_TEST_SQLSERVER_URL to a server with CDC and Agent")
def test_live_round_trip() -> None:  # pragma: no cover - needs a SQL Server
    import time

    import pyarrow as pa

    from flowforge.connectors import open_connector
    from flowforge.connectors.base import ReadRequest
    from flowforge.connectors.sql.sqlserver import catalog

    url = os.environ["FLOWFORGE_TEST_SQLSERVER_URL"]
    config = parse_connection({"type": "sqlserver_cdc", "connection_string": url, "tables": ["dbo.ff_cdc_items"],
                               "trust_server_certificate": True})
    params = config.params()  # type: ignore[attr-defined]
    admin = catalog.connect(catalog.choose_driver("auto", params), params)
    cur = admin.cursor()
    for stmt in ("IF OBJECT_ID('dbo.ff_cdc_items') IS NOT NULL BEGIN "
                 "EXEC sys.sp_cdc_disable_table N'dbo', N'ff_cdc_items', N'all'; DROP TABLE dbo.ff_cdc_items END",
                 "IF (SELECT is_cdc_enabled FROM sys.databases WHERE database_id = DB_ID()) = 0 "
                 "EXEC sys.sp_cdc_enable_db",
                 "CREATE TABLE dbo.ff_cdc_items (id int PRIMARY KEY, name nvarchar(50))",
                 "INSERT INTO dbo.ff_cdc_items VALUES (1, N'a')",
                 "EXEC sys.sp_cdc_enable_table N'dbo', N'ff_cdc_items', @role_name = NULL"):
        cur.execute(stmt)
    conn = open_connector("live", config)

    def read(state: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        plan = conn.plan(ReadRequest(), state)
        rows = [r for part in conn.read(plan) for b in part.batches for r in pa.Table.from_batches([b]).to_pylist()]
        return rows, plan.new_state

    snap, state = read(None)
    assert [r["_op"] for r in snap] == ["r"]
    cur.execute("INSERT INTO dbo.ff_cdc_items VALUES (2, N'b'); UPDATE dbo.ff_cdc_items SET name = N'c' WHERE id = 1; "
                "DELETE FROM dbo.ff_cdc_items WHERE id = 2")
    deadline = time.time() + 60
    changes: list[dict[str, Any]] = []
    while time.time() < deadline and len(changes) < 3:  # the capture job is asynchronous
        time.sleep(2)
        changes, _ = read(state)
    assert [r["_op"] for r in changes] == ["c", "u", "d"]
    again, committed = read(state)  # not committed: the same window again
    assert [r["_event_id"] for r in again] == [r["_event_id"] for r in changes]
    assert read(committed)[0] == []
