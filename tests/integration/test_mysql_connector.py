"""MySQL / MariaDB connector against a real server: the shared connector suite (with both
streaming drivers) plus every type value by value, procedures, failures, retries and
partitioned reads. Each module run uses a fresh database, dropped afterwards."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import yaml
from tests.connector_suite import ORDERS, ORDERS_DDL, ConnectorSuite, SourceHelper, read_table, read_tracked
from tests.waiting import eventually

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest, decode_position, encode_position
from flowforge.connectors.config import parse_connection
from flowforge.connectors.sql.mysql import connector as mysql_connector
from flowforge.connectors.sql.mysql import driver
from flowforge.connectors.sql.mysql.config import MysqlConfig
from flowforge.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    ConnectorError,
    SourceNotFound,
    SourceSchemaError,
)

pymysql = pytest.importorskip("pymysql")

pytestmark = pytest.mark.mysql

ADMIN_URL = os.environ.get("FLOWFORGE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SECRET = "Pw-never-shown-7f3a"
DRIVERS = ["pymysql", pytest.param("mysqlclient", marks=pytest.mark.skipif(
    driver.stream_driver(MysqlConfig(type="mysql", url="mysql://x@h/d", driver="pymysql"))
    and not importlib.util.find_spec("MySQLdb"),
    reason="mysqlclient is not installed (pip install mysqlclient; needs the client headers)")),
    pytest.param("connectorx", marks=pytest.mark.skipif(
        not importlib.util.find_spec("connectorx"), reason="connectorx is not installed (pip install connectorx)"))]


def _admin(database: str | None = None) -> Any:
    args = MysqlConfig(type="mysql", url=ADMIN_URL).connect_args()
    return pymysql.connect(host=args["host"], port=args["port"], user=args["user"], password=args["password"],
                           database=database or args["database"], autocommit=True, connect_timeout=5,
                           charset="utf8mb4", init_command="SET time_zone = '+00:00'")


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    name = f"flowforge_conn_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = _admin()
    except pymysql.err.MySQLError as exc:
        where = MysqlConfig(type="mysql", url=ADMIN_URL).describe()  # the URL may hold a password
        reason = f"MariaDB/MySQL not reachable at FLOWFORGE_TEST_MYSQL_URL ({where}): {exc}"
        if os.environ.get("FLOWFORGE_REQUIRE_MYSQL"):
            pytest.fail(reason)
        pytest.skip(reason)
    with admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with _admin() as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


class MysqlSource(SourceHelper):
    placeholder = "%s"
    integer_type = pa.int32()

    def __init__(self, url: str) -> None:
        self.database = url.rsplit("/", 1)[1].split("?")[0]

    def execute(self, sql: str, params: Sequence[Any] = (), setup: str | None = None) -> None:
        """Run one statement; ``setup`` first sets the session (a time zone, an sql_mode)."""
        with _admin(self.database) as conn, conn.cursor() as cur:
            if setup is not None:
                cur.execute(setup)
            cur.execute(sql, tuple(params) or None)

    def create_table(self, name: str, ddl: str, rows: Sequence[Sequence[Any]] = ()) -> None:
        # The suite's TIMESTAMP is SQL's TIMESTAMP WITHOUT TIME ZONE, which MySQL calls DATETIME.
        super().create_table(name, re.sub(r"\bTIMESTAMP\b", "DATETIME(6)", ddl), rows)


@pytest.fixture
def source(database_url: str) -> MysqlSource:
    return MysqlSource(database_url)


@pytest.fixture(params=DRIVERS)
def connector(request: pytest.FixtureRequest, database_url: str) -> Iterator[Connector]:
    config = MysqlConfig(type="mysql", url=database_url, driver=request.param, retries=0)
    with open_connector("shop", config) as conn:
        yield conn


def _table(source: MysqlSource, ddl: str, rows: Sequence[Sequence[Any]] = (), **kw: Any) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    source.execute(f"CREATE TABLE {name} ({ddl})")
    for row in rows:
        source.execute(f"INSERT INTO {name} VALUES ({', '.join(['%s'] * len(row))})", row, **kw)
    return name


def _read(connector: Connector, **request: Any) -> pa.Table:
    return read_table(connector, connector.plan(ReadRequest(**request), None))


class TestMysql(ConnectorSuite):
    pass


@pytest.fixture
def orders(source: MysqlSource) -> str:
    """The suite's orders table, for the MySQL-only tests below."""
    name = f"orders_{uuid.uuid4().hex[:8]}"
    source.create_table(name, ORDERS_DDL, ORDERS)
    return name


# -- types, value by value ----------------------------------------------------------------------

TYPES_DDL = """id INT PRIMARY KEY, flag TINYINT(1), boo BOOL, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT,
    su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT,
    bu BIGINT UNSIGNED, d152 DECIMAL(15,2), d3810 DECIMAL(38,10), d6530 DECIMAL(65,30), f FLOAT, db DOUBLE,
    dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), y YEAR, ch CHAR(3),
    vc VARCHAR(20), tx TEXT, en ENUM('small','large'), st SET('a','b','c'), js JSON, bn BINARY(2),
    vb VARBINARY(8), bl BLOB, b5 BIT(5), b64 BIT(64)"""
TYPES_ROW = (
    1, 1, 0, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
    18446744073709551615, Decimal("-9999999999999.99"), Decimal("1234567890123456789012345678.0123456789"),
    Decimal("12345678901234567890123456789012345.123456789012345678901234567891"), 16777216.0, 0.1,
    dt.date(2024, 2, 29), dt.datetime(2024, 1, 1, 10, 0, 1), dt.datetime(2024, 1, 1, 10, 0, 1, 123456),
    dt.datetime(2024, 6, 30, 23, 59, 59, 999999), dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=5),
    2155, "ab", "émile 😀", "long\ttext\n", "large", "a,c", '{"k": [1, 2.5, null]}', b"\x00\x01",
    b"\xff\x00\xfe", b"\x00" * 3 + b"\xff", 0b10101, 2**64 - 1,
)
TYPES_ARROW = {
    "id": pa.int32(), "flag": pa.bool_(), "boo": pa.bool_(), "ti": pa.int8(), "tu": pa.int16(), "si": pa.int16(),
    "su": pa.int32(), "mi": pa.int32(), "mu": pa.int32(), "i": pa.int32(), "iu": pa.int64(), "bi": pa.int64(),
    "bu": pa.decimal128(20, 0), "d152": pa.decimal128(15, 2), "d3810": pa.decimal128(38, 10),
    "d6530": pa.decimal256(65, 30), "f": pa.float32(), "db": pa.float64(), "dt": pa.date32(),
    "dtm": pa.timestamp("us"), "dtm6": pa.timestamp("us"), "ts": pa.timestamp("us", tz="UTC"),
    "tm": pa.time64("us"), "y": pa.int16(), "ch": pa.string(), "vc": pa.string(), "tx": pa.string(),
    "en": pa.string(), "st": pa.string(), "js": pa.string(), "bn": pa.binary(), "vb": pa.binary(),
    "bl": pa.binary(), "b5": pa.int64(), "b64": pa.decimal128(20, 0),
}
TYPES_VALUES = {
    "id": 1, "flag": True, "boo": False, "ti": -128, "tu": 255, "si": -32768, "su": 65535, "mi": -8388608,
    "mu": 16777215, "i": -2147483648, "iu": 4294967295, "bi": -9223372036854775808,
    "bu": Decimal("18446744073709551615"), "d152": Decimal("-9999999999999.99"),
    "d3810": Decimal("1234567890123456789012345678.0123456789"),
    "d6530": Decimal("12345678901234567890123456789012345.123456789012345678901234567891"),
    "f": 16777216.0, "db": 0.1, "dt": dt.date(2024, 2, 29), "dtm": dt.datetime(2024, 1, 1, 10, 0, 1),
    "dtm6": dt.datetime(2024, 1, 1, 10, 0, 1, 123456),
    "ts": dt.datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC),
    "tm": dt.time(23, 59, 59, 5), "y": 2155, "ch": "ab", "vc": "émile 😀", "tx": "long\ttext\n", "en": "large",
    "st": "a,c", "js": '{"k": [1, 2.5, null]}', "bn": b"\x00\x01", "vb": b"\xff\x00\xfe", "bl": b"\x00\x00\x00\xff",
    "b5": 21, "b64": Decimal("18446744073709551615"),
}


@pytest.fixture
def types_table(source: MysqlSource) -> str:
    return _table(source, TYPES_DDL, [TYPES_ROW, (2,) + (None,) * (len(TYPES_ROW) - 1)])


def test_every_type_maps_exactly_value_by_value(connector: Connector, types_table: str) -> None:
    table = _read(connector, table=types_table)
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == TYPES_ARROW
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    for name, expected in TYPES_VALUES.items():
        assert rows[0][name] == expected, name
        assert type(rows[0][name]) is type(expected), name
    assert all(v is None for k, v in rows[1].items() if k != "id")
    assert str(rows[0]["d3810"]) == "1234567890123456789012345678.0123456789"
    cols = {c.name: c for c in connector.columns(ReadRequest(table=types_table))}
    assert cols["bu"].source_type == "bigint(20) unsigned" and cols["js"].source_type == "json"
    assert cols["en"].source_type == "enum('small','large')" and cols["flag"].source_type == "tinyint(1)"


def test_query_columns_are_typed_from_result_metadata(connector: Connector, types_table: str) -> None:
    names = [n for n in TYPES_ARROW if n != "js"]  # MariaDB's JSON is LONGTEXT in a result: string too
    table = _read(connector, query=f"SELECT {', '.join(names)} FROM {types_table} WHERE id = 1")
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {n: TYPES_ARROW[n] for n in names}
    assert table.to_pylist()[0] == {n: TYPES_VALUES[n] for n in names}


def test_expressions_in_a_query_get_exact_types(connector: Connector, source: MysqlSource) -> None:
    name = _table(source, "id INT, amount DECIMAL(15,2) NOT NULL", [(1, Decimal("2.50")), (2, Decimal("3.25"))])
    query = (f"SELECT COUNT(*) AS n, SUM(amount) AS total, CAST(MAX(amount) AS DECIMAL(10,3)) AS top, "
             f"CONCAT('x', MIN(id)) AS label, MAX(id) * 2 AS twice FROM {name}")
    table = _read(connector, query=query)
    assert table.schema.field("n").type == pa.int64() and table.schema.field("twice").type == pa.int64()
    assert table.schema.field("top").type == pa.decimal128(10, 3) and table.schema.field("label").type == pa.string()
    assert pa.types.is_decimal(table.schema.field("total").type) and table.schema.field("total").type.scale == 2
    assert table.to_pylist() == [{"n": 2, "total": Decimal("5.75"), "top": Decimal("3.250"), "label": "x1",
                                  "twice": 4}]


def test_timestamp_is_read_in_utc_whatever_the_writer_time_zone(connector: Connector,
                                                                 source: MysqlSource) -> None:
    name = _table(source, "id INT, ts TIMESTAMP(3) NULL")
    source.execute(f"INSERT INTO {name} VALUES (1, '2024-01-01 12:00:00.5')", setup="SET time_zone = '+02:00'")
    row = _read(connector, table=name).to_pylist()[0]
    assert row["ts"] == dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=dt.UTC)


@pytest.mark.parametrize(("ddl", "value", "text"), [
    ("x TIME", "838:59:59", "838:59:59"),
    ("x TIME", "-01:00:00", "-01:00:00"),
    ("x DATE", "0000-00-00", "0000-00-00"),
    ("x DATETIME", "0000-00-00 00:00:00", "0000-00-00 00:00:00"),
    ("x DATE", "2024-00-15", "2024-00-15"),
    ("x TINYINT(1)", "2", "2"),
])
def test_values_outside_the_arrow_type_name_the_column_unless_fallback_string(
        connector: Connector, source: MysqlSource, ddl: str, value: str, text: str) -> None:
    name = _table(source, f"id INT, {ddl}", [(1, None), (2, value)], setup="SET sql_mode = ''")
    with pytest.raises(SourceSchemaError) as info:
        _read(connector, table=name)
    message = str(info.value)
    assert "column 'x'" in message and "row 2" in message and value in message and "type_fallback" in message
    table = _read(connector, table=name, type_fallback="string")
    assert table.schema.field("x").type == pa.string()
    assert table.column("x").to_pylist() == [None, text]


def test_unmappable_type_names_the_column_and_falls_back_to_text(connector: Connector,
                                                                 source: MysqlSource) -> None:
    name = _table(source, "id INT, spot POINT")
    source.execute(f"INSERT INTO {name} VALUES (1, POINT(1, 2))")
    with pytest.raises(SourceSchemaError, match=r"column 'spot' has type 'point'"):
        connector.columns(ReadRequest(table=name))
    assert _read(connector, table=name, type_fallback="string").to_pylist() == [{"id": 1, "spot": "POINT(1 2)"}]


def test_decimal_38_10_sums_exactly(connector: Connector, source: MysqlSource) -> None:
    values = [Decimal("9999999999999999999999999999.9999999999"), Decimal("-0.0000000001"),
              Decimal("0.1000000000"), Decimal("-1234567890123456789012345678.0123456789")]
    name = _table(source, "id INT, v DECIMAL(38,10)", list(enumerate(values)))
    read = _read(connector, table=name).column("v").to_pylist()
    assert read == values and sum(read) == sum(values)


# -- procedures ---------------------------------------------------------------------------------

@pytest.fixture
def procedure(source: MysqlSource, orders: str) -> str:
    name = f"orders_between_{uuid.uuid4().hex[:6]}"
    source.execute(f"""CREATE PROCEDURE {name}(IN since DATE, IN min_amount DECIMAL(15,2))
        SELECT id, amount, name, order_date, modified_date FROM {orders}
         WHERE order_date >= since AND amount >= min_amount ORDER BY id""")
    return name


def test_procedure_with_named_params_is_read_with_typed_columns(connector: Connector, procedure: str) -> None:
    params = (("min_amount", Decimal("0.15")), ("since", dt.date(2024, 1, 2)))
    plan = connector.plan(ReadRequest(procedure=procedure, params=params), None)
    assert dict(zip(plan.schema.names, plan.schema.types, strict=True)) == {
        "id": pa.int32(), "amount": pa.decimal128(15, 2), "name": pa.string(), "order_date": pa.date32(),
        "modified_date": pa.timestamp("us")}
    rows = read_table(connector, plan).to_pylist()
    assert [(r["id"], r["amount"]) for r in rows] == [(5, Decimal("0.20")), (6, Decimal("9999999999999.99"))]
    assert connector.preview(ReadRequest(procedure=procedure, params=params), limit=1).num_rows == 1
    assert connector.capabilities.procedures


def test_procedure_param_mistakes_and_missing_procedure(connector: Connector, procedure: str) -> None:
    with pytest.raises(SourceSchemaError, match=r"missing \['min_amount'\]"):
        connector.plan(ReadRequest(procedure=procedure, params=(("since", "2024-01-01"),)), None)
    with pytest.raises(SourceSchemaError, match=r"unknown \['limit'\]"):
        connector.plan(ReadRequest(procedure=procedure, params=(("since", "2024-01-01"), ("min_amount", 1),
                                                                ("limit", 5))), None)
    with pytest.raises(SourceNotFound, match="no_such_proc"):
        connector.plan(ReadRequest(procedure="no_such_proc"), None)


def test_procedure_that_writes_is_stopped_by_the_read_only_transaction(connector: Connector,
                                                                       source: MysqlSource, orders: str) -> None:
    name = f"sneaky_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE PROCEDURE {name}() BEGIN DELETE FROM {orders}; SELECT 1 AS one; END")
    with pytest.raises(SourceSchemaError, match="READ ONLY"):
        connector.plan(ReadRequest(procedure=name), None)
    assert _read(connector, table=orders).num_rows == len(ORDERS)


# -- read-only queries --------------------------------------------------------------------------

def test_delete_query_is_refused_before_reaching_the_server(connector: Connector, orders: str) -> None:
    with pytest.raises(SourceSchemaError, match="only read-only queries are allowed") as info:
        connector.plan(ReadRequest(query=f"DELETE FROM {orders}"), None)
    assert "DELETE" in str(info.value)


def test_write_hidden_in_a_function_is_stopped_by_the_read_only_transaction(
        connector: Connector, source: MysqlSource, orders: str) -> None:
    name = f"purge_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE FUNCTION {name}() RETURNS INT MODIFIES SQL DATA "
                   f"BEGIN DELETE FROM {orders}; RETURN 1; END")
    with pytest.raises(SourceSchemaError, match="READ ONLY"):
        _read(connector, query=f"SELECT {name}() AS x")
    assert _read(connector, table=orders).num_rows == len(ORDERS)


# -- discovery and counting ---------------------------------------------------------------------

def test_row_count_is_exact_and_views_have_no_estimate(connector: Connector, source: MysqlSource,
                                                       orders: str) -> None:
    source.insert(orders, [(100 + i, i, None, None, None, None, None) for i in range(37)])
    assert connector.row_count(ReadRequest(table=orders)) == len(ORDERS) + 37
    assert connector.row_count(ReadRequest(query=f"SELECT id FROM {orders} WHERE id < 4")) == 3
    view = f"v_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE VIEW {view} AS SELECT id FROM {orders}")
    tables = {t.name: t for t in connector.list_tables()}
    assert tables[view].row_estimate is None and tables[orders].schema is not None


def test_connection_test_names_the_product(connector: Connector) -> None:
    version = connector.test().server_version
    assert version.startswith(("MariaDB ", "MySQL "))


# -- incremental ----------------------------------------------------------------------------------

def test_lookback_rereads_a_window_below_the_watermark(connector: Connector, source: MysqlSource,
                                                       orders: str) -> None:
    request = ReadRequest(table=orders, incremental_column="modified_date", lookback=dt.timedelta(hours=2))
    first = connector.plan(request, None)
    source.insert(orders, [(30, 1, None, "late", None, dt.datetime(2024, 1, 6), None)])
    second = connector.plan(request, first.new_state)
    assert second.bounds == (dt.datetime(2024, 1, 5, 21, 59, 59), dt.datetime(2024, 1, 6))
    assert sorted(r["id"] for r in read_table(connector, second).to_pylist()) == [5, 6, 30]
    assert decode_position(second.new_state["high"]) == dt.datetime(2024, 1, 6)  # type: ignore[index]


def test_timestamp_and_unsigned_watermarks_round_trip(connector: Connector, source: MysqlSource) -> None:
    name = _table(source, "id BIGINT UNSIGNED PRIMARY KEY, at TIMESTAMP(6) NULL",
                  [(2**64 - 3, "2024-01-01 10:00:00"), (2**64 - 2, "2024-01-02 10:00:00")])
    by_time = ReadRequest(table=name, incremental_column="at")
    first = connector.plan(by_time, None)
    assert decode_position(first.new_state["high"]) == dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC)  # type: ignore[index]
    source.execute(f"INSERT INTO {name} VALUES ({2**64 - 1}, '2024-01-02 10:00:00.000001')")
    assert [r["id"] for r in read_table(connector, connector.plan(by_time, first.new_state)).to_pylist()] == [
        Decimal(2**64 - 1)]
    by_id = ReadRequest(table=name, incremental_column="id")
    state = {"column": "id", "high": {"type": "int", "value": 2**64 - 3}}
    assert read_table(connector, connector.plan(by_id, state)).num_rows == 2


def test_an_open_window_reads_once_and_its_watermark_is_the_max_read(connector: Connector,
                                                                      source: MysqlSource) -> None:
    name = _table(source, "id BIGINT UNSIGNED PRIMARY KEY, at TIMESTAMP(6) NULL",
                  [(2**64 - 3, "2024-01-01 10:00:00"), (2**64 - 2, "2024-01-02 10:00:00.000001")])
    for column, lower, reached in (("at", dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC),
                                    dt.datetime(2024, 1, 2, 10, 0, 0, 1, tzinfo=dt.UTC)),
                                   ("id", 2**64 - 4, Decimal(2**64 - 2))):
        state = {"column": column, "high": encode_position(lower)}
        plan = connector.plan(ReadRequest(table=name, incremental_column=column, watermark_from_rows=True), state)
        assert plan.watermark_column == column and plan.bounds == (lower, None)
        rows, tracker = read_tracked(connector, plan)
        assert tracker is not None
        ids = rows.column("id").to_pylist()
        assert len(ids) == (1 if column == "at" else 2)
        assert decode_position(tracker.new_state()["high"]) == reached
        # the position read back selects nothing more
        again = connector.plan(ReadRequest(table=name, incremental_column=column), tracker.new_state())
        assert not again.has_data


# -- configuration and failures -------------------------------------------------------------------

@pytest.mark.parametrize("url", [f"mysql://etl:{SECRET}@db1:3307/shop", f"mariadb://etl:{SECRET}@db1:3307/shop",
                                 f"mysql+pymysql://etl:{SECRET}@db1:3307/shop?ssl_mode=required"])
def test_url_forms_and_describe_without_password(url: str) -> None:
    config = parse_connection({"type": "mysql", "url": url})
    assert config.describe() == "mysql://db1:3307/shop"
    assert SECRET not in repr(config) and SECRET not in config.describe()
    fields = MysqlConfig.model_validate({"type": "mysql", "host": "db1", "database": "shop", "user": "etl",
                                         "password": SECRET, "options": {"ssl_mode": "verify_ca"}})
    assert fields.describe() == "mysql://db1:3306/shop" and SECRET not in repr(fields)


@pytest.mark.parametrize(("data", "error"), [
    ({}, "either 'url' or 'database'"),
    ({"url": "mysql://u@h/x", "database": "x"}, "either 'url' or 'database'"),
    ({"url": f"postgresql://u:{SECRET}@h/x"}, "must start with mysql://"),
    ({"url": f"mysql://u:{SECRET}@h:3306/"}, "must name a database"),
    ({"database": "x", "options": {"ssl_mod": "required"}}, "unknown option"),
    ({"url": f"mysql://u:{SECRET}@h/x?sslmode=on"}, "unknown option"),
])
def test_bad_configs_are_refused_without_echoing_the_password(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error) as info:
        MysqlConfig.model_validate({"type": "mysql", **data})
    assert SECRET not in str(info.value)


def test_docstring_examples_load() -> None:
    for doc in (MysqlConfig.__doc__, mysql_connector.MysqlConnector.__doc__):
        block = re.search(r"```yaml\n(.*?)```", doc or "", re.S)
        assert block is not None
        spec = yaml.safe_load(block.group(1).replace("${MYSQL_PASSWORD}", "x"))
        for connection in spec["connections"].values():
            assert parse_connection(connection).describe().startswith("mysql://")


def _assert_no_secret(exc: BaseException) -> None:
    seen = exc
    while seen is not None:
        assert SECRET not in str(seen) and SECRET not in repr(seen)
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]


@pytest.mark.parametrize("data", [
    {"url": f"mysql://u:{SECRET}@127.0.0.1:1/x"},
    {"host": "127.0.0.1", "port": 1, "database": "x", "user": "u", "password": SECRET},
])
def test_refused_port_is_transient_connection_failed_without_password(data: dict[str, Any]) -> None:
    connector = open_connector("core", MysqlConfig.model_validate({"type": "mysql", "connect_timeout": 2,
                                                                   "retries": 0, **data}))
    with pytest.raises(ConnectionFailed) as info:
        connector.test()
    assert info.value.transient and "Connection 'core' (mysql://127.0.0.1:1/x)" in str(info.value)
    _assert_no_secret(info.value)
    with pytest.raises(ConnectionFailed) as info:
        connector.plan(ReadRequest(table="t"), None)
    _assert_no_secret(info.value)


@pytest.mark.parametrize("stream_driver", DRIVERS)
def test_required_tls_is_enforced_whatever_the_driver(database_url: str, stream_driver: str) -> None:
    with _admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT @@have_ssl")
        server_tls = cur.fetchone()[0] == "YES"
    config = MysqlConfig(type="mysql", url=f"{database_url}?ssl_mode=required", driver=stream_driver, retries=0)
    connector = open_connector("vault", config)
    if server_tls:
        assert connector.test().ok
        return
    with pytest.raises(ConnectorError) as info:  # never silently in clear text
        read_table(connector, connector.plan(ReadRequest(query="SELECT 1 AS one"), None))
    assert not info.value.transient and "Connection 'vault'" in str(info.value)
    assert "ssl_mode" in str(info.value.hint)
    if stream_driver == "mysqlclient":  # its client library may ignore ssl_mode: checked after connecting
        with pytest.raises(pymysql.err.OperationalError, match="did not encrypt"):
            driver.connect(config, "mysqlclient", raw=True)


def test_unknown_database_is_source_not_found(database_url: str) -> None:
    url = _with_database(database_url, "flowforge_no_such_db")
    with pytest.raises(SourceNotFound) as info:
        open_connector("gone", MysqlConfig(type="mysql", url=url)).test()
    assert "flowforge_no_such_db" in str(info.value) and not info.value.transient


@pytest.fixture
def etl_user(source: MysqlSource) -> Iterator[str]:
    user = f"ff_{uuid.uuid4().hex[:8]}"
    source.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'")
    source.execute(f"GRANT SELECT ON `{source.database}`.* TO '{user}'@'%'")
    try:
        yield user
    finally:
        source.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def test_wrong_password_is_authentication_failed_and_never_shown(database_url: str, etl_user: str) -> None:
    host = MysqlConfig(type="mysql", url=database_url).connect_args()
    base = {"type": "mysql", "host": host["host"], "port": host["port"], "database": host["database"],
            "user": etl_user}
    assert open_connector("crm", MysqlConfig.model_validate({**base, "password": SECRET})).test().ok
    wrong = open_connector("crm", MysqlConfig.model_validate({**base, "password": SECRET + "x"}))
    with pytest.raises(AuthenticationFailed) as info:
        wrong.test()
    assert not info.value.transient and etl_user in str(info.value) and "password" in str(info.value.hint)
    _assert_no_secret(info.value)
    with pytest.raises(AuthenticationFailed) as info:
        read_table(wrong, wrong.plan(ReadRequest(table="t"), None))
    _assert_no_secret(info.value)


# -- retries ---------------------------------------------------------------------------------------

@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(driver, "sleep", slept.append)
    return slept


def test_deadlock_is_retried_with_backoff_then_reported_as_transient(
        database_url: str, source: MysqlSource, sleeps: list[float]) -> None:
    name = f"victim_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE PROCEDURE {name}() SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, "
                   "MESSAGE_TEXT = 'Deadlock found when trying to get lock'")
    connector = open_connector("shop", MysqlConfig(type="mysql", url=database_url, retries=2))
    with pytest.raises(ConnectionFailed, match=r"Deadlock.*1213.*after 3 attempts") as info:
        connector.plan(ReadRequest(procedure=name), None)
    assert info.value.transient and sleeps == [0.5, 1.0]


def test_lost_connection_before_rows_is_retried_but_not_after(
        connector: Connector, orders: str, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    plan = connector.plan(ReadRequest(table=orders, batch_size=2), None)
    real_open, failures = mysql_connector.MysqlConnector._open, [1]

    def flaky(self: Any, *args: Any) -> Iterator[pa.RecordBatch]:
        if failures:  # the connection breaks before the first row, whatever the driver
            failures.pop()
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")
        yield from real_open(self, *args)

    monkeypatch.setattr(mysql_connector.MysqlConnector, "_open", flaky)
    retrying = open_connector("shop", connector.config.model_copy(update={"retries": 3}))
    assert read_table(retrying, plan).num_rows == len(ORDERS) and sleeps == [0.5]

    def drop_after_first(self: Any, *args: Any) -> Iterator[pa.RecordBatch]:
        for batch in real_open(self, *args):
            yield batch
            raise pymysql.err.OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr(mysql_connector.MysqlConnector, "_open", drop_after_first)
    part = next(retrying.read(plan))
    assert next(part.batches).num_rows == 2
    with pytest.raises(ConnectionFailed, match="2013"):
        next(part.batches)
    assert sleeps == [0.5]


# -- partitioned reads -----------------------------------------------------------------------------

@pytest.fixture
def big(source: MysqlSource) -> str:
    name = f"big_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, k INT, amount DECIMAL(12,2), at DATETIME)")
    source.execute(f"INSERT INTO {name} SELECT seq, seq % 7, seq / 100, "
                   "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_5003")
    return name


@pytest.mark.parametrize("stream_driver", DRIVERS)
def test_partitioned_read_returns_every_row_once(database_url: str, big: str, stream_driver: str) -> None:
    config = MysqlConfig(type="mysql", url=database_url, read_partitions=3, driver=stream_driver)
    with open_connector("shop", config) as connector:
        plan = connector.plan(ReadRequest(table=big, batch_size=500), None)
        batches = [b for part in connector.read(plan) for b in part.batches]
        assert all(b.num_rows <= 500 for b in batches)
        assert sorted(pa.Table.from_batches(batches).column("id").to_pylist()) == list(range(1, 5004))
        request = ReadRequest(table=big, incremental_column="at", batch_size=500)
        state = {"column": "at", "high": {"type": "timestamp", "value": "2024-01-01T01:00:00"}}
        window = read_table(connector, connector.plan(request, state))
        assert sorted(window.column("id").to_pylist()) == list(range(3601, 5004))


def test_stopping_a_partitioned_read_early_releases_its_threads(database_url: str, big: str) -> None:
    config = MysqlConfig(type="mysql", url=database_url, read_partitions=2)
    with open_connector("shop", config) as connector:
        part = next(connector.read(connector.plan(ReadRequest(table=big, batch_size=100), None)))
        assert next(part.batches).num_rows == 100
        part.batches.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("mysql-read-")]


# -- the connectorx fast path ------------------------------------------------------------------

needs_connectorx = pytest.mark.skipif(not importlib.util.find_spec("connectorx"),
                                      reason="connectorx is not installed (pip install connectorx)")


@pytest.mark.parametrize(("options", "expected"), [
    ({}, "connectorx"),
    ({"ssl_mode": "disabled"}, "connectorx"),
    ({"ssl_mode": "required"}, "mysqlclient"),
    ({"ssl_mode": "verify_ca"}, "pymysql"),
    ({"read_timeout": "30"}, "mysqlclient"),
])
@needs_connectorx
def test_auto_driver_uses_connectorx_only_for_plain_connections(options: dict[str, str], expected: str) -> None:
    config = MysqlConfig(type="mysql", url="mysql://etl@db1/shop", options=options)
    chosen = driver.stream_driver(config)
    if expected == "mysqlclient" and not importlib.util.find_spec("MySQLdb"):
        expected = "pymysql"
    assert chosen == expected


@needs_connectorx
def test_connectorx_asked_for_with_tls_is_refused_up_front() -> None:
    config = MysqlConfig(type="mysql", url="mysql://etl@db1/shop?ssl_mode=required", driver="connectorx")
    with pytest.raises(ConfigError, match="connectorx cannot apply the options") as info:
        driver.stream_driver(config)
    assert "mysqlclient" in (info.value.hint or "")


@needs_connectorx
def test_connectorx_url_encodes_credentials() -> None:
    from flowforge.connectors.sql.mysql import fast

    config = MysqlConfig(type="mysql", host="db1", database="shop db", user="etl@corp", password="p@ss:w/rd")
    assert fast.url(config) == "mysql://etl%40corp:p%40ss%3Aw%2Frd@db1:3306/shop%20db?tcp_connect_timeout_ms=10000"


def _server_queries(marker: str) -> list[str]:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (f"%{marker}%",))
        return [row[0] for row in cur.fetchall()]


def _queries_gone(marker: str) -> bool:
    """Whether the server stops running queries on ``marker`` (KILL QUERY takes effect asynchronously)."""
    return not eventually(lambda: _server_queries(marker), lambda found: not found)


@needs_connectorx
def test_a_stream_closed_early_ends_its_query_on_the_server(database_url: str, source: MysqlSource) -> None:
    """A half-read connectorx stream would keep the server writing until net_write_timeout."""
    name = f"wide_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, payload TEXT)")
    source.execute(f"INSERT INTO {name} SELECT seq, REPEAT('x', 500) FROM seq_1_to_100000")  # ~50 MB
    config = MysqlConfig(type="mysql", url=database_url, driver="connectorx")
    with open_connector("shop", config) as connector:
        part = next(connector.read(connector.plan(ReadRequest(table=name, batch_size=1000), None)))
        assert next(part.batches).num_rows == 1000
        assert eventually(lambda: _server_queries(name), bool), "the query should still be streaming"
        part.batches.close()  # type: ignore[attr-defined]
    assert _queries_gone(name)


@needs_connectorx
def test_a_query_killed_mid_stream_is_a_clear_error_not_a_panic(database_url: str, source: MysqlSource) -> None:
    name = f"wide_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, payload TEXT)")
    source.execute(f"INSERT INTO {name} SELECT seq, REPEAT('x', 500) FROM seq_1_to_100000")
    config = MysqlConfig(type="mysql", url=database_url, driver="connectorx", retries=0)
    with open_connector("shop", config) as connector:
        # the server pauses every 1,000 rows, so the read is still running when the DBA comes (on a
        # busy machine the whole table could otherwise be sent before the kill)
        slow = f"SELECT id, payload FROM {name} WHERE id % 1000 <> 0 OR SLEEP(0.05) = 0"
        part = next(connector.read(connector.plan(ReadRequest(query=slow, batch_size=1000), None)))
        assert next(part.batches).num_rows == 1000
        with _admin() as conn, conn.cursor() as cur:  # a DBA kills the long-running read
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                        (f"%{name}%",))
            for (thread,) in cur.fetchall():
                cur.execute(f"KILL QUERY {int(thread)}")
        with pytest.raises(ConnectorError, match=r"reading .* failed: .*interrupted \(MySQL error 1317\)"):
            for _ in part.batches:
                pass


@needs_connectorx
def test_connectorx_logs_in_with_a_password_full_of_url_characters(database_url: str, source: MysqlSource,
                                                                    orders: str) -> None:
    user, password = f"ff_{uuid.uuid4().hex[:6]}", "p@ss:w/rd?#%&=+ é"
    source.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
    source.execute(f"GRANT SELECT ON `{source.database}`.* TO '{user}'@'%'")
    try:
        host = MysqlConfig(type="mysql", url=database_url).connect_args()
        config = MysqlConfig(type="mysql", host=host["host"], port=host["port"], database=host["database"],
                             user=user, password=password, driver="connectorx")
        with open_connector("crm", config) as connector:
            assert read_table(connector, connector.plan(ReadRequest(table=orders), None)).num_rows == len(ORDERS)
    finally:
        source.execute(f"DROP USER IF EXISTS '{user}'@'%'")


@needs_connectorx
def test_a_zero_date_deep_in_a_native_stream_is_named_by_row(database_url: str, source: MysqlSource) -> None:
    """Dates stream natively; a zero date makes connectorx fail mid-stream, after batches were
    handed out, and the error still names the column, the row and the value."""
    name = f"dates_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, d DATE, at DATETIME(6))")
    source.execute(f"INSERT INTO {name} SELECT seq, DATE '2024-01-01' + INTERVAL (seq % 300) DAY, "
                   "TIMESTAMP '2024-01-01 00:00:00.25' + INTERVAL seq SECOND FROM seq_1_to_5000")
    source.execute(f"UPDATE {name} SET d = '0000-00-00' WHERE id = 4500", setup="SET sql_mode = ''")
    config = MysqlConfig(type="mysql", url=database_url, driver="connectorx", retries=0)
    with open_connector("shop", config) as connector:
        part = next(connector.read(connector.plan(ReadRequest(table=name, batch_size=1000), None)))
        first = next(part.batches)
        assert first.schema.field("d").type == pa.date32()
        assert first.column("at")[0].as_py() == dt.datetime(2024, 1, 1, 0, 0, 1, 250000)
        with pytest.raises(SourceSchemaError) as info:
            for _ in part.batches:
                pass
    message = str(info.value)
    assert "column 'd'" in message and "row 4500" in message and "0000-00-00" in message
    assert _queries_gone(name)
