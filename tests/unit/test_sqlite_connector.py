"""SQLite connector: the shared connector suite plus what only SQLite users meet
(dynamically typed values checked against declared types, a missing file)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.connector_suite import ConnectorSuite, SourceHelper, read_table

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest
from flowforge.connectors.sql.sqlite.config import SqliteConfig
from flowforge.errors import SourceNotFound, SourceSchemaError


class SqliteSource(SourceHelper):
    placeholder = "?"
    integer_type = pa.int64()  # SQLite integers are 64-bit whatever the declared name

    def __init__(self, path: Path) -> None:
        self.path = path
        sqlite3.connect(path).close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(sql, params)
        conn.close()

    def adapt(self, value: Any) -> Any:
        # What applications typically store: REAL for decimals, ISO text for dates, 0/1 booleans.
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def watermark(self, value: Any) -> Any:
        return self.adapt(value)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def source(db_path: Path) -> SqliteSource:
    return SqliteSource(db_path)


@pytest.fixture
def connector(source: SqliteSource) -> Iterator[Connector]:
    config = SqliteConfig.model_validate({"type": "sqlite", "path": str(source.path)})
    with open_connector("shop", config) as conn:
        yield conn


class TestSqlite(ConnectorSuite):
    pass


def test_missing_file_is_source_not_found_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    connector = open_connector("ghost", SqliteConfig(type="sqlite", path=str(path)))
    with pytest.raises(SourceNotFound) as info:
        connector.test()
    assert "ghost" in str(info.value) and "missing.db" in str(info.value)
    with pytest.raises(SourceNotFound):
        connector.plan(ReadRequest(table="t"), None)
    assert not path.exists()


def test_file_that_is_not_a_database_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, long enough to be a header " * 4)
    with pytest.raises(Exception, match="not a database"):
        open_connector("notes", SqliteConfig(type="sqlite", path=str(path))).test()


def test_declared_decimal_holding_real_and_text_reads_exactly(source: SqliteSource,
                                                              connector: Connector) -> None:
    source.create_table("prices", "id INTEGER, p DECIMAL(15,2), n NUMERIC(10,4)")
    source.execute("INSERT INTO prices VALUES (1, 1234.56, '0.1'), (2, '19.9', 3), (3, 0.3, 2.5)")
    rows = read_table(connector, connector.plan(ReadRequest(table="prices"), None)).to_pylist()
    assert [(r["p"], r["n"]) for r in rows] == [
        (Decimal("1234.56"), Decimal("0.1000")), (Decimal("19.90"), Decimal("3.0000")),
        (Decimal("0.30"), Decimal("2.5000")),
    ]


@pytest.mark.parametrize(("ddl", "value", "why"), [
    ("x INTEGER", "'abc'", "another type"),
    ("x DECIMAL(15,2)", "1.234", "more than 2 fractional digits"),
    ("x DECIMAL(4,2)", "123.45", "more than 4 digits"),
    ("x TIMESTAMP", "'yesterday'", "not an ISO-8601 timestamp"),
    ("x TIMESTAMP", "'2024-01-01 10:00:00+02:00'", "time-zone offset"),
    ("x BOOLEAN", "2", "0 or 1"),
    ("x DATE", "'2024-01-01 10:30:00'", "time of day"),
])
def test_value_that_does_not_fit_the_declared_type_names_column_and_row(
        source: SqliteSource, connector: Connector, ddl: str, value: str, why: str) -> None:
    source.create_table("bad", ddl)
    source.execute("INSERT INTO bad VALUES (NULL)")
    source.execute(f"INSERT INTO bad VALUES ({value})")
    with pytest.raises(SourceSchemaError) as info:
        read_table(connector, connector.plan(ReadRequest(table="bad"), None))
    message = str(info.value)
    assert "'x'" in message and "row 2" in message and why in message


def test_dates_times_and_timestamps_from_text(source: SqliteSource, connector: Connector) -> None:
    source.create_table("events", "d DATE, t TIME, ts DATETIME, tz TIMESTAMPTZ, r REAL, b BLOB")
    source.execute("INSERT INTO events VALUES ('2024-02-29', '23:59:59.5', '2024-02-29T12:00:00.123456', "
                   "'2024-02-29 12:00:00+02:00', 0.1, x'00ff')")
    table = read_table(connector, connector.plan(ReadRequest(table="events"), None))
    assert table.schema.types == [pa.date32(), pa.time64("us"), pa.timestamp("us"),
                                  pa.timestamp("us", tz="UTC"), pa.float64(), pa.binary()]
    row = table.to_pylist()[0]
    assert row["d"] == dt.date(2024, 2, 29) and row["t"] == dt.time(23, 59, 59, 500000)
    assert row["ts"] == dt.datetime(2024, 2, 29, 12, 0, 0, 123456)
    assert row["tz"] == dt.datetime(2024, 2, 29, 10, tzinfo=dt.UTC)
    assert row["r"] == 0.1 and row["b"] == b"\x00\xff"


def test_query_expressions_take_cast_types_or_their_stored_values(source: SqliteSource,
                                                                  connector: Connector) -> None:
    source.create_table("t", "id INTEGER, amount DECIMAL(15,2), untyped")
    source.execute("INSERT INTO t VALUES (1, 2.5, 'a'), (2, 3.25, 'b')")
    query = ("SELECT id * 2 AS twice, CAST(amount AS DECIMAL(10,3)) AS amt3, untyped, "
             "count(*) OVER () AS n FROM t")
    cols = {c.name: c.arrow_type for c in connector.columns(ReadRequest(query=query))}
    assert cols == {"twice": pa.int64(), "amt3": pa.decimal128(10, 3), "untyped": pa.string(),
                    "n": pa.int64()}
    rows = read_table(connector, connector.plan(ReadRequest(query=query), None)).to_pylist()
    assert rows[1] == {"twice": 4, "amt3": Decimal("3.250"), "untyped": "b", "n": 2}


def test_untyped_column_with_mixed_values_asks_for_a_cast(source: SqliteSource, connector: Connector) -> None:
    source.create_table("mixed", "v")
    source.execute("INSERT INTO mixed VALUES (1), ('one')")
    with pytest.raises(SourceSchemaError, match=r"'v'.*mixed values") as info:
        connector.columns(ReadRequest(table="mixed"))
    assert "CAST" in str(info.value)


def test_unmappable_declared_type_names_the_column(source: SqliteSource, connector: Connector) -> None:
    source.create_table("geo", "id INTEGER, spot GEOMETRY")
    with pytest.raises(SourceSchemaError, match=r"'spot'.*GEOMETRY"):
        connector.columns(ReadRequest(table="geo"))


def test_integer_watermark_round_trips(source: SqliteSource, connector: Connector) -> None:
    source.create_table("log", "seq INTEGER PRIMARY KEY, msg TEXT", [(1, "a"), (2, "b")])
    request = ReadRequest(table="log", incremental_column="seq")
    first = connector.plan(request, None)
    assert first.new_state == {"column": "seq", "high": {"type": "int", "value": 2}}
    source.insert("log", [(3, "c")])
    second = connector.plan(request, first.new_state)
    assert second.bounds == (2, 3)
    assert read_table(connector, second).to_pylist() == [{"seq": 3, "msg": "c"}]


def test_watermark_for_another_column_is_refused(source: SqliteSource, connector: Connector) -> None:
    source.create_table("log", "seq INTEGER, at TIMESTAMP", [(1, "2024-01-01 00:00:00")])
    state = connector.plan(ReadRequest(table="log", incremental_column="seq"), None).new_state
    with pytest.raises(SourceSchemaError, match="watermark"):
        connector.plan(ReadRequest(table="log", incremental_column="at"), state)


def test_describe_names_the_file(connector: Connector, source: SqliteSource) -> None:
    assert connector.describe() == f"Connection 'shop' (sqlite:///{source.path})"


def test_many_real_cents_read_as_the_decimals_that_were_written(source: SqliteSource,
                                                                connector: Connector) -> None:
    import random

    rnd = random.Random(7)
    cents = [rnd.randint(-10**13, 10**13) for _ in range(5000)]
    expected = [Decimal(c).scaleb(-2) for c in cents]
    source.create_table("ledger", "id INTEGER PRIMARY KEY, amount DECIMAL(15,2), note TEXT")
    with sqlite3.connect(source.path) as conn:  # REAL, as an application writing floats stores them
        conn.executemany("INSERT INTO ledger VALUES (?, ?, NULL)",
                         [(i, float(d)) for i, d in enumerate(expected)])
        conn.execute("INSERT INTO ledger VALUES (5000, '12.5', 'text storage mixed in')")
    conn.close()
    table = read_table(connector, connector.plan(ReadRequest(table="ledger", batch_size=1000), None))
    amounts = table.column("amount").to_pylist()
    assert amounts[:5000] == expected and amounts[5000] == Decimal("12.50")
    assert sum(amounts) == sum(expected) + Decimal("12.50")
