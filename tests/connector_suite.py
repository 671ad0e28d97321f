"""The behaviour every SQL source connector owes its users, as one suite to subclass.

A test module subclasses ``ConnectorSuite`` (``class TestSqlite(ConnectorSuite)``) and provides
two fixtures: ``source`` (a ``SourceHelper`` that writes to the database behind the connector)
and ``connector`` (the connector under test, pointing at that database). The class name does
not start with ``Test``, so pytest collects it only through its subclasses.
"""

from __future__ import annotations

import datetime as dt
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from flowforge.connectors.base import Connector, ReadPlan, ReadRequest, RowsWatermark, decode_position
from flowforge.errors import SourceNotFound, SourceSchemaError

ORDERS_DDL = (
    "id INTEGER PRIMARY KEY, big BIGINT, amount DECIMAL(15,2), name VARCHAR(50), "
    "order_date DATE, modified_date TIMESTAMP, active BOOLEAN"
)
ORDERS = [
    (1, 10**12, Decimal("1234.56"), "alice", dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10), True),
    (2, -5, Decimal("0.10"), "bob", dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 11, 30, 0, 250000), False),
    (3, 0, Decimal("-99999.99"), None, None, dt.datetime(2024, 1, 3, 9), None),
    (4, 7, None, "dave", dt.date(2024, 1, 4), dt.datetime(2024, 1, 4, 8), True),
    (5, 8, Decimal("0.20"), "émile 😀", dt.date(2024, 1, 5), dt.datetime(2024, 1, 5, 23, 59, 59), False),
    (6, 9, Decimal("9999999999999.99"), "frank", dt.date(2024, 1, 6), dt.datetime(2024, 1, 5, 23), True),
]
MAX_MODIFIED = dt.datetime(2024, 1, 5, 23, 59, 59)


class SourceHelper(ABC):
    """Writes to the database behind a connector, so tests can create, insert and update."""

    placeholder = "?"
    integer_type: pa.DataType = pa.int64()

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def adapt(self, value: Any) -> Any:
        """A Python value as this database's driver should bind it."""
        return value

    def watermark(self, value: Any) -> Any:
        """The position a connector records for a delta-column value (SQLite keeps the text)."""
        return value

    def create_table(self, name: str, ddl: str, rows: Sequence[Sequence[Any]] = ()) -> None:
        self.execute(f"CREATE TABLE {name} ({ddl})")
        self.insert(name, rows)

    def insert(self, name: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            marks = ", ".join([self.placeholder] * len(row))
            self.execute(f"INSERT INTO {name} VALUES ({marks})", [self.adapt(v) for v in row])

    def update(self, name: str, key: int, values: dict[str, Any]) -> None:
        sets = ", ".join(f"{column} = {self.placeholder}" for column in values)
        params = [self.adapt(v) for v in values.values()]
        self.execute(f"UPDATE {name} SET {sets} WHERE id = {self.placeholder}", [*params, key])


def read_table(connector: Connector, plan: ReadPlan) -> pa.Table:
    batches = [b for part in connector.read(plan) for b in part.batches]
    for batch in batches:
        assert batch.schema == plan.schema, "every batch must have exactly the planned schema"
    return pa.Table.from_batches(batches, schema=plan.schema)


def read_tracked(connector: Connector, plan: ReadPlan) -> tuple[pa.Table, RowsWatermark | None]:
    """The plan's rows, and for an open incremental window the watermark they reach (as bronze tracks it)."""
    tracker = RowsWatermark(plan) if plan.watermark_column else None
    batches = []
    for part in connector.read(plan):
        for batch in part.batches:
            if tracker is not None:
                tracker.add(batch)
            batches.append(batch)
    return (pa.Table.from_batches(batches) if batches else plan.schema.empty_table()), tracker


class ConnectorSuite:
    """Shared behaviour of SQL source connectors. Subclasses provide ``source`` and ``connector``."""

    @pytest.fixture
    def orders(self, source: SourceHelper) -> str:
        name = f"orders_{uuid.uuid4().hex[:8]}"
        source.create_table(name, ORDERS_DDL, ORDERS)
        return name

    # -- discovery ----------------------------------------------------------------------

    def test_connection_test_reports_server_version(self, connector: Connector) -> None:
        result = connector.test()
        assert result.ok
        assert any(ch.isdigit() for ch in result.server_version)
        assert result.latency_ms >= 0

    def test_list_tables_includes_created_table(self, connector: Connector, orders: str) -> None:
        tables = {t.name: t for t in connector.list_tables()}
        assert orders in tables
        estimate = tables[orders].row_estimate
        assert estimate is None or estimate >= 0

    def test_columns_have_exact_arrow_types(self, connector: Connector, source: SourceHelper,
                                            orders: str) -> None:
        cols = {c.name: c for c in connector.columns(ReadRequest(table=orders))}
        assert {n: c.arrow_type for n, c in cols.items()} == {
            "id": source.integer_type, "big": pa.int64(), "amount": pa.decimal128(15, 2),
            "name": pa.string(), "order_date": pa.date32(), "modified_date": pa.timestamp("us"),
            "active": pa.bool_(),
        }
        assert list(cols) == ["id", "big", "amount", "name", "order_date", "modified_date", "active"]
        assert cols["id"].primary_key and not cols["id"].nullable
        assert cols["name"].nullable and not cols["name"].primary_key
        assert "15" in cols["amount"].source_type and "2" in cols["amount"].source_type

    def test_columns_report_declared_defaults(self, connector: Connector, source: SourceHelper) -> None:
        name = f"defaults_{uuid.uuid4().hex[:8]}"
        source.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, status VARCHAR(10) NOT NULL DEFAULT 'new', "
                       "n INTEGER DEFAULT 0, note VARCHAR(20))")
        cols = {c.name: c for c in connector.columns(ReadRequest(table=name))}
        assert cols["status"].default is not None and "new" in cols["status"].default
        assert cols["n"].default == "0"
        assert cols["note"].default is None and cols["id"].default is None

    # -- full reads ---------------------------------------------------------------------

    def test_full_read_returns_all_rows_with_exact_values(self, connector: Connector, orders: str) -> None:
        plan = connector.plan(ReadRequest(table=orders), None)
        assert plan.has_data and plan.new_state is None
        parts = list(connector.read(plan))
        assert [p.name for p in parts] == [orders]
        assert parts[0].modified_time is None
        table = pa.Table.from_batches([b for p in parts for b in p.batches], schema=plan.schema)
        rows = sorted(table.to_pylist(), key=lambda r: r["id"])
        assert [tuple(r.values()) for r in rows] == [tuple(r) for r in ORDERS]
        amounts = [r["amount"] for r in rows if r["amount"] is not None]
        assert sum(amounts) == sum(r[2] for r in ORDERS if r[2] is not None) == Decimal("9999999901234.86")
        assert rows[0]["amount"] == Decimal("1234.56") and str(rows[0]["amount"]) == "1234.56"

    def test_small_batch_size_streams_several_bounded_batches(self, connector: Connector,
                                                              source: SourceHelper, orders: str) -> None:
        source.insert(orders, [(100 + i, i, Decimal(i) / 100, f"n{i}", None, dt.datetime(2023, 1, 1), None)
                               for i in range(19)])
        plan = connector.plan(ReadRequest(table=orders, batch_size=4), None)
        batches = [b for part in connector.read(plan) for b in part.batches]
        assert len(batches) >= 7
        assert all(0 < b.num_rows <= 4 for b in batches)
        assert sum(b.num_rows for b in batches) == len(ORDERS) + 19

    def test_preview_returns_limit_rows(self, connector: Connector, source: SourceHelper,
                                        orders: str) -> None:
        source.insert(orders, [(100 + i, i, None, None, None, None, None) for i in range(20)])
        preview = connector.preview(ReadRequest(table=orders), limit=10)
        assert preview.num_rows == 10
        assert preview.schema.field("amount").type == pa.decimal128(15, 2)

    def test_query_is_read_with_declared_types(self, connector: Connector, orders: str) -> None:
        plan = connector.plan(ReadRequest(query=f"SELECT id, amount, name FROM {orders} WHERE id <= 2 "
                                                f"ORDER BY id -- trailing comment"), None)
        assert plan.schema.field("amount").type == pa.decimal128(15, 2)
        parts = list(connector.read(plan))
        assert [p.name for p in parts] == ["query"]
        table = pa.Table.from_batches([b for p in parts for b in p.batches], schema=plan.schema)
        assert table.to_pylist() == [{"id": 1, "amount": Decimal("1234.56"), "name": "alice"},
                                     {"id": 2, "amount": Decimal("0.10"), "name": "bob"}]

    def test_query_with_repeated_column_names_asks_for_aliases(self, connector: Connector,
                                                               orders: str) -> None:
        with pytest.raises(SourceSchemaError, match="duplicate column names") as info:
            connector.plan(ReadRequest(query=f"SELECT id, id FROM {orders}"), None)
        assert "alias" in str(info.value)

    # -- incremental --------------------------------------------------------------------

    def test_incremental_reads_only_new_and_changed_rows(self, connector: Connector,
                                                         source: SourceHelper, orders: str) -> None:
        request = ReadRequest(table=orders, incremental_column="modified_date")
        first = connector.plan(request, None)
        assert first.has_data
        assert first.new_state is not None and first.new_state["column"] == "modified_date"
        assert decode_position(first.new_state["high"]) == source.watermark(MAX_MODIFIED)
        assert read_table(connector, first).num_rows == len(ORDERS)

        unchanged = connector.plan(request, first.new_state)
        assert not unchanged.has_data
        assert unchanged.new_state == first.new_state
        assert read_table(connector, unchanged).num_rows == 0

        later = dt.datetime(2024, 2, 1, 12)
        source.insert(orders, [(7, 1, Decimal("1.01"), "gina", None, later, True),
                               (8, 2, Decimal("2.02"), "hugo", None, later + dt.timedelta(seconds=1), False)])
        source.update(orders, 1, {"modified_date": later, "name": "alice v2"})
        changed = connector.plan(request, first.new_state)
        assert changed.has_data
        rows = read_table(connector, changed).to_pylist()
        assert sorted(r["id"] for r in rows) == [1, 7, 8]
        assert {r["name"] for r in rows} == {"alice v2", "gina", "hugo"}
        assert changed.new_state is not None
        assert decode_position(changed.new_state["high"]) == source.watermark(later + dt.timedelta(seconds=1))

    def test_row_committed_after_planning_waits_for_next_run(self, connector: Connector,
                                                             source: SourceHelper, orders: str) -> None:
        request = ReadRequest(table=orders, incremental_column="modified_date")
        state = connector.plan(request, None).new_state
        source.insert(orders, [(10, 1, None, "before plan", None, dt.datetime(2024, 3, 1), None)])
        plan = connector.plan(request, state)
        source.insert(orders, [(11, 1, None, "after plan", None, dt.datetime(2024, 3, 2), None)])
        assert [r["id"] for r in read_table(connector, plan).to_pylist()] == [10]
        following = connector.plan(request, plan.new_state)
        assert [r["id"] for r in read_table(connector, following).to_pylist()] == [11]

    def test_incremental_works_on_a_query(self, connector: Connector, source: SourceHelper,
                                          orders: str) -> None:
        request = ReadRequest(query=f"SELECT id, modified_date FROM {orders} WHERE active",
                              incremental_column="modified_date")
        first = connector.plan(request, None)
        assert sorted(r["id"] for r in read_table(connector, first).to_pylist()) == [1, 4, 6]
        source.insert(orders, [(20, 1, None, None, None, dt.datetime(2025, 1, 1), True),
                               (21, 1, None, None, None, dt.datetime(2025, 1, 1), False)])
        second = connector.plan(request, first.new_state)
        assert [r["id"] for r in read_table(connector, second).to_pylist()] == [20]

    # -- errors a user can cause ---------------------------------------------------------

    def test_unknown_table_is_source_not_found(self, connector: Connector) -> None:
        with pytest.raises(SourceNotFound) as info:
            connector.plan(ReadRequest(table="no_such_table"), None)
        assert "no_such_table" in str(info.value)
        assert "flowforge" in str(info.value)
        with pytest.raises(SourceNotFound):
            connector.columns(ReadRequest(table="no_such_table"))

    def test_unknown_incremental_column_lists_available_columns(self, connector: Connector,
                                                                orders: str) -> None:
        with pytest.raises(SourceSchemaError) as info:
            connector.plan(ReadRequest(table=orders, incremental_column="updated_at"), None)
        message = str(info.value)
        assert "updated_at" in message and orders in message
        assert "modified_date" in message and "amount" in message

    @pytest.mark.parametrize("template", [
        "DELETE FROM {t}",
        "UPDATE {t} SET name = 'x'",
        "DROP TABLE {t}",
        "SELECT 1; DELETE FROM {t}",
        "WITH gone AS (DELETE FROM {t} RETURNING id) SELECT * FROM gone",
        "INSERT INTO {t} (id) VALUES (999)",
    ])
    def test_write_queries_are_refused(self, connector: Connector, orders: str, template: str) -> None:
        with pytest.raises(SourceSchemaError, match="only read-only queries are allowed"):
            connector.plan(ReadRequest(query=template.format(t=orders)), None)
        assert read_table(connector, connector.plan(ReadRequest(table=orders), None)).num_rows == len(ORDERS)
