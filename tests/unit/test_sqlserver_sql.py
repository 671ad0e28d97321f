"""The T-SQL the SQL Server connector sends (snapshots next to this file), and what it does with
the answers, against a scripted DB-API connection: no server needed.

Snapshots are written on first run (or with FLOWFORGE_UPDATE_SNAPSHOTS=1); review them by eye.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.connector_suite import read_tracked

from flowforge.connectors import open_connector
from flowforge.connectors.base import ReadRequest, decode_position
from flowforge.connectors.sql.sqlserver import catalog
from flowforge.connectors.sql.sqlserver import sql as tsql
from flowforge.connectors.sql.sqlserver.config import SqlServerConfig
from flowforge.connectors.sql.sqlserver.connector import SqlServerConnector
from flowforge.errors import SourceNotFound, SourceSchemaError

SNAPSHOTS = Path(__file__).parent / "snapshots" / "sqlserver"
W = "Connection 'core' (sqlserver://db1:1433/BFSI), query"


def _snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("FLOWFORGE_UPDATE_SNAPSHOTS") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


# -- a scripted server ----------------------------------------------------------------------------

COLUMN_FIELDS = ("column_name", "type_name", "base_type", "max_length", "precision", "scale", "is_nullable",
                 "is_primary_key", "default_sql", "is_user_defined")
DESCRIBE_FIELDS = ("is_hidden", "column_ordinal", "name", "is_nullable", "system_type_name", "max_length",
                   "precision", "scale", "user_type_name")
Answer = tuple[Sequence[str], list[tuple[Any, ...]]]


class Server:
    """Answers statements by the first rule whose regex matches; records what was sent."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, Answer | Callable[[str], Answer]]] = []
        self.sent: list[tuple[str, tuple[Any, ...] | None]] = []

    def on(self, pattern: str, answer: Answer | Callable[[str], Answer]) -> None:
        self.rules.insert(0, (pattern, answer))

    def answer(self, sql: str) -> Answer:
        for pattern, answer in self.rules:
            if re.search(pattern, sql, re.S):
                return answer(sql) if callable(answer) else answer
        raise AssertionError(f"unexpected statement: {sql}")

    def data(self) -> list[str]:
        return [s for s, _ in self.sent if s.startswith(("SELECT", "WITH", "EXEC [")) and "sys." not in s]


class Cursor:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.rows: list[Any] = []
        self.description: list[tuple[Any, ...]] | None = None

    def execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        self.server.sent.append((sql, params))
        names, rows = self.server.answer(sql)
        self.description = [(n, None, None, None, None, None, None) for n in names] or None
        self.rows = list(rows)

    def fetchall(self) -> list[Any]:
        rows, self.rows = self.rows, []
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        rows, self.rows = self.rows[:size], self.rows[size:]
        return rows

    def close(self) -> None:
        pass


class Connection:
    def __init__(self, server: Server) -> None:
        self.server = server

    def cursor(self) -> Cursor:
        return Cursor(self.server)

    def close(self) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    srv = Server()
    monkeypatch.setattr(catalog, "connect", lambda driver, params: Connection(srv))
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return srv


def _connector(**extra: Any) -> SqlServerConnector:
    config = SqlServerConfig.model_validate({"type": "sqlserver", "host": "db1", "database": "BFSI", "user": "etl",
                                             "password": "s3cret", "trust_server_certificate": True,
                                             "driver": "pymssql", **extra})
    connector = open_connector("core", config)
    assert isinstance(connector, SqlServerConnector)
    return connector


TXN_COLUMNS = [  # sys.columns of [Sales].[Txn History]: max_length in bytes
    ("id", "int", "int", 4, 10, 0, False, True, None, False),
    ("amount", "decimal", "decimal", 9, 15, 2, True, False, "((0))", False),
    ("fee", "money", "money", 8, 19, 4, True, False, None, False),
    ("name", "Name", "nvarchar", 100, 0, 0, True, False, None, True),
    ("booked_on", "date", "date", 3, 10, 0, True, False, None, False),
    ("modified", "datetime2", "datetime2", 8, 27, 7, False, False, "(sysdatetime())", False),
    ("ref", "uniqueidentifier", "uniqueidentifier", 16, 0, 0, True, False, "(newid())", False),
    ("ver", "timestamp", "timestamp", 8, 0, 0, False, False, None, False),
]
TXN_ROWS = [  # as the server sends them for the select list above
    (1, 123456, "1.5000", "alice", "2024-01-01", "2024-01-01T10:00:00.1234567",
     "6f9619ff-8b86-d011-b42d-00c04fc964ff", b"\x00" * 7 + b"\x01"),
    (2, None, None, None, None, "2024-01-02T00:00:00", None, b"\x00" * 7 + b"\x02"),
    (3, -1, "-0.0001", "émile 😀", "0001-01-01", "2262-04-11T23:47:16.8547758", None, b"\x00" * 7 + b"\x03"),
]


@pytest.fixture
def txn(server: Server) -> Server:
    server.on(r"FROM sys\.columns", (COLUMN_FIELDS, TXN_COLUMNS))
    names = ["id", "amount", "fee", "name", "booked_on", "modified", "ref", "ver"]
    server.on(r"^SELECT (TOP \(\d+\) )?\[id\], CAST", (names, TXN_ROWS))
    return server


# -- tables ---------------------------------------------------------------------------------------

def test_table_read_sends_bracket_quoted_select_and_returns_exact_values(txn: Server) -> None:
    connector = _connector()
    cols = {c.name: c for c in connector.columns(ReadRequest(table="Sales.[Txn History]"))}
    assert cols["name"].source_type == "Name (nvarchar(50))" and cols["amount"].source_type == "decimal(15,2)"
    assert cols["id"].primary_key and not cols["id"].nullable
    plan = connector.plan(ReadRequest(table="Sales.[Txn History]", batch_size=2), None)
    assert dict(zip(plan.schema.names, plan.schema.types, strict=True)) == {
        "id": pa.int32(), "amount": pa.decimal128(15, 2), "fee": pa.decimal128(19, 4), "name": pa.string(),
        "booked_on": pa.date32(), "modified": pa.timestamp("ns"), "ref": pa.string(), "ver": pa.binary(8)}
    batches = [b for part in connector.read(plan) for b in part.batches]
    assert [b.num_rows for b in batches] == [2, 1]
    rows = pa.Table.from_batches(batches).to_pylist()
    assert rows[0]["amount"] == Decimal("1234.56") and rows[2]["amount"] == Decimal("-0.01")
    assert rows[0]["fee"] == Decimal("1.5000") and rows[2]["name"] == "émile 😀"
    assert rows[2]["booked_on"] == dt.date(1, 1, 1)
    ns = pa.Table.from_batches(batches).column("modified").cast(pa.int64()).to_pylist()
    assert ns[0] == 1704103200123456700 and ns[2] == 9223372036854775800
    _snapshot("table_columns.sql", txn.sent[0][0])
    _snapshot("table_select.sql", txn.data()[-1])


def test_preview_uses_top(txn: Server) -> None:
    table = _connector().preview(ReadRequest(table="Sales.[Txn History]"), limit=2)
    assert table.num_rows == 2
    _snapshot("preview_top.sql", txn.data()[-1])


def test_exact_count_uses_count_big(txn: Server) -> None:
    txn.on(r"COUNT_BIG", ([""], [(5_000_000_000,)]))
    assert _connector().row_count(ReadRequest(table="Sales.[Txn History]")) == 5_000_000_000
    _snapshot("count.sql", txn.data()[-1])


def test_missing_table_is_source_not_found(server: Server) -> None:
    server.on(r"FROM sys\.columns", (COLUMN_FIELDS, []))
    with pytest.raises(SourceNotFound, match=r"(?s)'dbo\.nope'.*flowforge connections tables core"):
        _connector().plan(ReadRequest(table="dbo.nope"), None)
    with pytest.raises(SourceNotFound, match=r"not this connection"):
        _connector().plan(ReadRequest(table="OtherDb.dbo.t"), None)


# -- incremental ------------------------------------------------------------------------------------

def test_incremental_window_uses_typed_literals_and_exact_watermarks(txn: Server) -> None:
    connector = _connector()
    txn.on(r"MAX\(\[modified\]\)", ([""], [("2024-01-02T00:00:00.0000001",)]))
    request = ReadRequest(table="Sales.[Txn History]", incremental_column="modified")
    first = connector.plan(request, None)
    assert first.new_state is not None
    # 100 ns precision is kept: the watermark stays text, compared as datetime2(7)
    assert decode_position(first.new_state["high"]) == "2024-01-02T00:00:00.0000001"
    txn.on(r"MAX\(\[modified\]\)", ([""], [(None,)]))
    unchanged = connector.plan(request, first.new_state)
    assert not unchanged.has_data and unchanged.new_state == first.new_state
    txn.on(r"MAX\(\[modified\]\)", ([""], [("2024-01-03T00:00:00",)]))
    later = connector.plan(ReadRequest(table="Sales.[Txn History]", incremental_column="modified",
                                       lookback=dt.timedelta(minutes=15)), first.new_state)
    assert later.bounds == ("2024-01-01 23:45:00", "2024-01-03T00:00:00")
    assert sum(b.num_rows for p in connector.read(later) for b in p.batches) == len(TXN_ROWS)
    maxima = [s for s, _ in txn.sent if "MAX(" in s]
    _snapshot("incremental_max.sql", "\n\n".join(maxima))
    _snapshot("incremental_window.sql", txn.data()[-1])


@pytest.mark.parametrize(("column", "wire", "high"), [
    ("booked_on", "2024-06-30", dt.date(2024, 6, 30)),
    ("id", 41, 41),
    ("amount", 123456, Decimal("1234.56")),
    ("ver", 2001, 2001),  # rowversion: an integer watermark
])
def test_incremental_by_date_int_decimal_and_rowversion(txn: Server, column: str, wire: Any, high: Any) -> None:
    txn.on(r"MAX\(", ([""], [(wire,)]))
    request = ReadRequest(table="Sales.[Txn History]", incremental_column=column)
    first = _connector().plan(request, None)
    assert first.new_state is not None and decode_position(first.new_state["high"]) == high
    second = _connector().plan(request, first.new_state)
    _snapshot(f"incremental_{column}.sql", [s for s, _ in txn.sent if "MAX(" in s][-1])
    assert second.bounds == (high, high)


def test_unknown_and_unsuitable_incremental_columns(txn: Server) -> None:
    with pytest.raises(SourceSchemaError, match=r"'updated_at'.*Available columns: id, amount"):
        _connector().plan(ReadRequest(table="Sales.[Txn History]", incremental_column="updated_at"), None)


# -- partitions -------------------------------------------------------------------------------------

def test_partitioned_read_splits_the_integer_key_into_open_ended_ranges(txn: Server) -> None:
    txn.on(r"MIN\(\[id\]\)", ([""], [(1, 1000)]))
    connector = _connector(read_partitions=3)
    plan = connector.plan(ReadRequest(table="Sales.[Txn History]"), None)
    rows = [b for part in connector.read(plan) for b in part.batches]
    assert sum(b.num_rows for b in rows) == 3 * len(TXN_ROWS)  # the scripted server ignores the ranges
    ranges = sorted(s for s in txn.data() if ">=" in s or "<" in s.split("WHERE")[-1])
    assert len(ranges) == 3
    _snapshot("partition_ranges.sql", "\n\n".join(ranges))


def test_partition_bounds_on_a_date_key() -> None:
    bounds = [tsql.range_predicate("[d]", i, ["CAST(N'2024-01-11' AS date)", "CAST(N'2024-01-21' AS date)"])
              for i in range(3)]
    assert bounds == ["[d] < CAST(N'2024-01-11' AS date)",
                      "[d] >= CAST(N'2024-01-11' AS date) AND [d] < CAST(N'2024-01-21' AS date)",
                      "[d] >= CAST(N'2024-01-21' AS date)"]


# -- queries ------------------------------------------------------------------------------------

PROC_DESCRIPTION = [(False, 1, "account_id", False, "bigint", 8, 19, 0, None),
                    (False, 2, "balance", True, "decimal(19,4)", 9, 19, 4, None),
                    (False, 3, "as_of", True, "datetime2(3)", 7, 23, 3, None)]


def test_query_is_described_by_the_server_and_wrapped(server: Server) -> None:
    server.on(r"sp_describe_first_result_set", (DESCRIBE_FIELDS, PROC_DESCRIPTION))
    server.on(r"^SELECT TOP|^SELECT \[account_id\]|^WITH", (["account_id", "balance", "as_of"], [
        (7, "10.5000", "2024-06-30T23:59:59.997")]))
    connector = _connector()
    query = "SELECT account_id, balance, as_of FROM rpt.balances ORDER BY account_id -- newest first"
    plan = connector.plan(ReadRequest(query=query), None)
    assert plan.schema.field("balance").type == pa.decimal128(19, 4)
    assert plan.schema.field("as_of").type == pa.timestamp("us") and not plan.schema.field("account_id").nullable
    rows = [r for p in connector.read(plan) for b in p.batches for r in b.to_pylist()]
    assert rows == [{"account_id": 7, "balance": Decimal("10.5000"),
                     "as_of": dt.datetime(2024, 6, 30, 23, 59, 59, 997000)}]
    cte = "WITH recent AS (SELECT * FROM rpt.balances WHERE as_of > '2024-01-01') SELECT * FROM recent ORDER BY 1"
    connector.plan(ReadRequest(query=cte), None)
    read = [b for p in connector.read(connector.plan(ReadRequest(query=cte), None)) for b in p.batches]
    assert read
    _snapshot("query_describe.sql", next(s for s, _ in server.sent if "sp_describe" in s))
    _snapshot("query_order_by.sql", server.data()[0])
    _snapshot("query_cte.sql", server.data()[-1])


@pytest.mark.parametrize("query", [
    "DELETE FROM t", "SELECT 1; DELETE FROM t", "SELECT * INTO #copy FROM t", "EXEC dbo.purge",
    "SELECT * FROM OPENQUERY(LINKED, 'DELETE FROM x')", "UPDATE t SET a = 1", "MERGE t USING u ON 1=1 "
    "WHEN MATCHED THEN DELETE;",
])
def test_writes_and_remote_text_are_refused_before_anything_is_sent(server: Server, query: str) -> None:
    with pytest.raises(SourceSchemaError, match="only read-only queries are allowed"):
        _connector().plan(ReadRequest(query=query), None)
    assert not server.sent


# -- procedures -----------------------------------------------------------------------------------

def test_procedure_is_called_with_bound_parameters(server: Server) -> None:
    server.on(r"sp_describe_first_result_set", (DESCRIBE_FIELDS, PROC_DESCRIPTION))
    server.on(r"^EXEC \[rpt\]", (["account_id", "balance", "as_of"], [
        (7, Decimal("10.5000"), dt.datetime(2024, 6, 30, 23, 59, 59, 997000))]))
    connector = _connector()
    request = ReadRequest(procedure="rpt.usp_balances",
                          params=(("as_of", dt.date(2024, 6, 30)), ("@branch", "Zürich 100%")))
    plan = connector.plan(request, None)
    rows = [r for p in connector.read(plan) for b in p.batches for r in b.to_pylist()]
    assert rows[0]["balance"] == Decimal("10.5000")
    call, params = next((s, p) for s, p in server.sent if s.startswith("EXEC [rpt]"))
    assert params == (dt.date(2024, 6, 30), "Zürich 100%")
    _snapshot("procedure_exec.sql", call)
    _snapshot("procedure_describe.sql", next(s for s, _ in server.sent if "sp_describe" in s))
    server.on(r"^EXEC \[rpt\]", (["account_id", "balance"], []))
    with pytest.raises(SourceSchemaError, match="same columns on every call"):
        [b for p in connector.read(plan) for b in p.batches]


def test_procedure_columns_a_driver_cannot_carry_exactly_are_refused(server: Server) -> None:
    server.on(r"sp_describe_first_result_set", (DESCRIBE_FIELDS, [
        (False, 1, "posted_at", False, "datetime2(7)", 8, 27, 7, None)]))
    with pytest.raises(SourceSchemaError, match=r"(?s)'posted_at' is datetime2\(7\).*datetime2\(6\)"):
        _connector().plan(ReadRequest(procedure="dbo.usp_x"), None)
    with pytest.raises(SourceSchemaError, match="not a valid procedure parameter"):
        tsql.procedure_call("dbo.p", ["a; DROP TABLE x"], "?", W)


# -- catalog, errors and retries ----------------------------------------------------------------

def test_a_deadlock_while_planning_is_retried(txn: Server) -> None:
    import pymssql

    attempts = []

    def max_query(sql: str) -> Answer:
        attempts.append(sql)
        if len(attempts) == 1:
            raise pymssql.exceptions.OperationalError((1205, b"Transaction (Process ID 61) was deadlocked ..."))
        return [""], [(41,)]

    txn.on(r"MAX\(\[id\]\)", max_query)
    plan = _connector().plan(ReadRequest(table="Sales.[Txn History]", incremental_column="id"), None)
    assert len(attempts) == 2 and plan.bounds == (None, 41)


def test_list_tables_and_connection_test(server: Server) -> None:
    server.on(r"FROM sys\.objects", (["schema_name", "table_name", "object_type", "row_estimate"], [
        ("Sales", "Txn History", "U ", 1200), ("rpt", "v_balances", "V ", None)]))
    server.on(r"@@VERSION", ([""], [("Microsoft SQL Server 2022 (RTM-CU12) - 16.0.4125.3 (X64)\n\tJan 2024",)]))
    connector = _connector()
    tables = connector.list_tables()
    assert [(t.schema, t.name, t.row_estimate) for t in tables] == [("Sales", "Txn History", 1200),
                                                                      ("rpt", "v_balances", None)]
    result = connector.test()
    assert result.ok and result.server_version == "Microsoft SQL Server 2022 (RTM-CU12) - 16.0.4125.3 (X64)"
    _snapshot("list_tables.sql", next(s for s, _ in server.sent if "sys.objects" in s))
    assert connector.describe() == "Connection 'core' (sqlserver://db1:1433/BFSI)"


def test_a_deadlock_victim_is_retried_then_reported_as_transient(txn: Server) -> None:
    import pymssql

    victim = pymssql.exceptions.OperationalError((1205, b"Transaction (Process ID 53) was deadlocked on lock "
                                                       b"resources with another process and has been chosen as "
                                                       b"the deadlock victim. Rerun the transaction.DB-Lib error "
                                                       b"message 20018, severity 13:\nGeneral SQL Server error"))
    calls = []

    def flaky(sql: str) -> Answer:
        calls.append(sql)
        if len(calls) < 3:
            raise victim
        return ["id"], [(1,)]

    txn.on(r"^SELECT \[id\] FROM", flaky)
    txn.on(r"sp_describe", (DESCRIBE_FIELDS, [(False, 1, "id", False, "int", 4, 10, 0, None)]))
    connector = _connector()
    rows = [b for p in connector.read(connector.plan(ReadRequest(query="SELECT id FROM t"), None)) for b in p.batches]
    assert len(calls) == 3 and rows[0].num_rows == 1
    calls.clear()
    txn.on(r"^SELECT \[id\] FROM", lambda sql: (_ for _ in ()).throw(victim))
    with pytest.raises(catalog.DeadlockVictim) as info:
        [b for p in connector.read(connector.plan(ReadRequest(query="SELECT id FROM t"), None)) for b in p.batches]
    assert info.value.transient and "deadlock victim" in str(info.value) and "DB-Lib" not in str(info.value)


@pytest.mark.parametrize(("column", "high", "reached"), [
    ("id", 1, 3),
    ("amount", Decimal("1234.56"), None),  # (the scripted server answers every row) none past it: no commit
    ("booked_on", dt.date(2023, 12, 31), dt.date(2024, 1, 1)),
])
def test_an_open_window_sends_no_max_and_no_upper_bound(txn: Server, column: str, high: Any, reached: Any) -> None:
    from flowforge.connectors.base import NothingNew, encode_position

    state = {"column": column, "high": encode_position(high)}
    request = ReadRequest(table="Sales.[Txn History]", incremental_column=column, watermark_from_rows=True)
    plan = _connector().plan(request, state)
    assert plan.watermark_column == column and plan.bounds == (high, None)
    _, tracker = read_tracked(_connector(), plan)
    assert tracker is not None
    assert not [s for s, _ in txn.sent if "MAX(" in s], "the window's upper bound is not asked for"
    window = txn.data()[-1]
    assert " <= " not in window
    _snapshot(f"open_window_{column}.sql", window)
    if reached is None:
        with pytest.raises(NothingNew):
            tracker.new_state()
    else:
        assert decode_position(tracker.new_state()["high"]) == reached


def test_datetime_and_rowversion_windows_keep_their_upper_bound(txn: Server) -> None:
    # datetime2(7) watermarks keep 100 ns digits as text, rowversion is binary: max() as before
    for column, wire in (("modified", "2024-01-03T00:00:00"), ("ver", 2001)):
        txn.on(r"MAX\(", ([""], [(wire,)]))
        plan = _connector().plan(ReadRequest(table="Sales.[Txn History]", incremental_column=column,
                                             watermark_from_rows=True), None)
        assert plan.watermark_column is None and plan.bounds is not None and plan.bounds[1] is not None
