"""PostgreSQL connector against a real server: the shared connector suite plus PostgreSQL's own
types, connection failures and partitioned reads. Each module run uses a fresh database."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from tests.connector_suite import ConnectorSuite, SourceHelper, read_table

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest
from flowforge.connectors.sql.postgres.config import PostgresConfig
from flowforge.errors import ConnectionFailed, SourceNotFound, SourceSchemaError

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("adbc_driver_postgresql")

pytestmark = pytest.mark.postgres

ADMIN_URL = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    name = f"flowforge_conn_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at FLOWFORGE_TEST_PG_URL: {str(exc).splitlines()[0]}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresSource(SourceHelper):
    placeholder = "%s"
    integer_type = pa.int32()

    def __init__(self, url: str) -> None:
        self.url = url

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params or None)


@pytest.fixture
def source(database_url: str) -> PostgresSource:
    return PostgresSource(database_url)


@pytest.fixture
def connector(database_url: str) -> Iterator[Connector]:
    with open_connector("shop", PostgresConfig(type="postgres", url=database_url)) as conn:
        yield conn


class TestPostgres(ConnectorSuite):
    pass


# -- configuration and failures -------------------------------------------------------------

def test_url_with_driver_suffix_and_describe_without_password() -> None:
    config = PostgresConfig.model_validate(
        {"type": "postgres", "url": "postgresql+psycopg://etl:s3cret@db1:6543/shop"})
    assert config.describe() == "postgresql://db1:6543/shop"
    assert "s3cret" not in repr(config) and "s3cret" not in config.describe()
    fields = PostgresConfig.model_validate(
        {"type": "postgres", "host": "db1", "database": "shop", "user": "etl", "password": "p@ss",
         "schema": "sales"})
    assert fields.describe() == "postgresql://db1:5432/shop" and fields.schema_ == "sales"


@pytest.mark.parametrize("data", [
    {"type": "postgres"},
    {"type": "postgres", "url": "postgresql://u@h/x", "database": "x"},
])
def test_url_xor_database(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="either 'url' or 'database'"):
        PostgresConfig.model_validate(data)


@pytest.mark.parametrize("data", [
    {"url": "postgresql://u:s3cret@127.0.0.1:1/x"},
    {"host": "127.0.0.1", "port": 1, "database": "x", "user": "u", "password": "s3cret"},
])
def test_refused_port_is_transient_connection_failed_without_password(data: dict[str, Any]) -> None:
    config = PostgresConfig.model_validate({"type": "postgres", "connect_timeout": 2, **data})
    connector = open_connector("core", config)
    with pytest.raises(ConnectionFailed) as info:
        connector.test()
    message = str(info.value)
    assert info.value.transient
    assert "Connection 'core' (postgresql://127.0.0.1:1/x)" in message
    assert "s3cret" not in message and "s3cret" not in repr(info.value)
    with pytest.raises(ConnectionFailed) as info:
        connector.plan(ReadRequest(table="t"), None)
    assert "s3cret" not in str(info.value)


def test_missing_database_is_source_not_found(database_url: str) -> None:
    url = _with_database(database_url, "flowforge_no_such_db")
    with pytest.raises(SourceNotFound) as info:
        open_connector("gone", PostgresConfig(type="postgres", url=url)).test()
    assert "flowforge_no_such_db" in str(info.value) and not info.value.transient


def test_fields_config_and_default_schema(source: PostgresSource, database_url: str) -> None:
    source.execute("CREATE SCHEMA IF NOT EXISTS sales")
    source.create_table("sales.leads", "id int PRIMARY KEY, who text", [(1, "x")])
    admin = psycopg.conninfo.conninfo_to_dict(database_url)
    config = PostgresConfig.model_validate({
        "type": "postgres", "host": admin.get("host", "localhost"), "port": int(admin.get("port", 5432)),
        "database": admin["dbname"], "user": admin.get("user"), "schema": "sales",
        "options": {"application_name": "flowforge-test"}})
    with open_connector("crm", config) as connector:
        assert read_table(connector, connector.plan(ReadRequest(table="leads"), None)).num_rows == 1
        assert read_table(connector, connector.plan(ReadRequest(table="sales.leads"), None)).num_rows == 1
        assert any(t.schema == "sales" and t.name == "leads" for t in connector.list_tables())


def test_write_hidden_in_a_function_is_stopped_by_the_read_only_session(
        source: PostgresSource, connector: Connector) -> None:
    source.create_table("victims", "id int", [(1,)])
    source.execute("CREATE OR REPLACE FUNCTION sneaky() RETURNS int LANGUAGE sql AS "
                   "'DELETE FROM victims RETURNING 1'")
    with pytest.raises(SourceSchemaError, match="read-only transaction"):
        read_table(connector, connector.plan(ReadRequest(query="SELECT sneaky() AS n"), None))


# -- PostgreSQL types -------------------------------------------------------------------------

def test_postgres_types_map_exactly(source: PostgresSource, connector: Connector) -> None:
    source.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    source.execute("CREATE DOMAIN money2 AS numeric(12,2)")
    source.create_table("types", (
        "i int, s smallint, b bigint, n numeric, n152 numeric(15,2), r real, d double precision, "
        "t text, v varchar(5), c char(3), dt date, tm time, ts timestamp(3), tz timestamptz, bo boolean, "
        "by bytea, u uuid, j json, jb jsonb, iv interval, m mood, dm money2, ip inet, n50 numeric(5,0), "
        "n3810 numeric(38,10)"), [(
        1, 2, 3, Decimal("12345678901234567890.123456789"), Decimal("-0.01"), 1.5, 2.25, "t", "v", "ab",
        dt.date(2024, 2, 29), dt.time(1, 2, 3, 4), dt.datetime(2024, 1, 1, 0, 0, 0, 123000),
        dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))), True, b"\x00\x01",
        uuid.UUID("12345678-1234-5678-1234-567812345678"), '{"a": 1}', '{"b": 2}',
        dt.timedelta(days=1, hours=2), "sad", Decimal("10.50"), "10.0.0.1", Decimal("-99999"),
        Decimal("1234567890123456789012345678.0123456789"))])
    table = read_table(connector, connector.plan(ReadRequest(table="types"), None))
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "i": pa.int32(), "s": pa.int16(), "b": pa.int64(), "n": pa.decimal128(38, 9),
        "n152": pa.decimal128(15, 2), "r": pa.float32(), "d": pa.float64(), "t": pa.string(),
        "v": pa.string(), "c": pa.string(), "dt": pa.date32(), "tm": pa.time64("us"),
        "ts": pa.timestamp("us"), "tz": pa.timestamp("us", tz="UTC"), "bo": pa.bool_(), "by": pa.binary(),
        "u": pa.string(), "j": pa.string(), "jb": pa.string(), "iv": pa.month_day_nano_interval(),
        "m": pa.string(), "dm": pa.decimal128(12, 2), "ip": pa.string(), "n50": pa.decimal128(5, 0),
        "n3810": pa.decimal128(38, 10),
    }
    row = table.to_pylist()[0]
    assert row["n"] == Decimal("12345678901234567890.123456789")
    assert row["n152"] == Decimal("-0.01") and row["dm"] == Decimal("10.50")
    assert row["n50"] == Decimal("-99999")
    assert row["n3810"] == Decimal("1234567890123456789012345678.0123456789")
    assert row["tz"] == dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    assert row["u"] == "12345678-1234-5678-1234-567812345678"
    assert row["jb"] == '{"b": 2}' and row["m"] == "sad" and row["ip"] == "10.0.0.1/32"
    cols = {c.name: c for c in connector.columns(ReadRequest(table="types"))}
    assert cols["n152"].source_type == "numeric(15,2)" and cols["dm"].source_type == "money2"


def test_unconstrained_numeric_with_too_many_digits_names_the_column(
        source: PostgresSource, connector: Connector) -> None:
    source.create_table("rates", "id int, rate numeric", [(1, Decimal("0.5")), (2, Decimal("0.1234567891"))])
    with pytest.raises(SourceSchemaError) as info:
        read_table(connector, connector.plan(ReadRequest(table="rates"), None))
    assert "'rate'" in str(info.value) and "0.1234567891" in str(info.value)
    assert "CAST" in str(info.value)
    query = ReadRequest(query="SELECT id, rate::numeric(20,12) AS rate FROM rates")
    rows = read_table(connector, connector.plan(query, None)).to_pylist()
    assert rows[1]["rate"] == Decimal("0.123456789100")


@pytest.mark.parametrize(("ddl", "column"), [("p point", "p"), ("t timetz", "t"), ("m money", "m")])
def test_types_without_exact_mapping_name_the_column(source: PostgresSource, connector: Connector,
                                                     ddl: str, column: str) -> None:
    name = f"odd_{uuid.uuid4().hex[:6]}"
    source.create_table(name, f"id int, {ddl}")
    with pytest.raises(SourceSchemaError, match=f"column '{column}'"):
        connector.columns(ReadRequest(table=name))


def test_timestamptz_watermark_round_trips(source: PostgresSource, connector: Connector) -> None:
    source.create_table("audit", "id int, at timestamptz", [
        (1, dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)), (2, dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC))])
    request = ReadRequest(table="audit", incremental_column="at")
    first = connector.plan(request, None)
    source.insert("audit", [(3, dt.datetime(2024, 1, 2, 10, 0, 0, 1, tzinfo=dt.UTC))])
    second = connector.plan(request, first.new_state)
    assert [r["id"] for r in read_table(connector, second).to_pylist()] == [3]


# -- partitioned reads --------------------------------------------------------------------------

def test_partitioned_read_returns_every_row_once(source: PostgresSource, database_url: str) -> None:
    source.execute("CREATE TABLE big AS SELECT g AS id, g % 7 AS k, (g / 100.0)::numeric(12,2) AS amount, "
                   "timestamp '2024-01-01' + g * interval '1 second' AS at FROM generate_series(1, 5003) g")
    source.execute("ALTER TABLE big ADD PRIMARY KEY (id)")
    config = PostgresConfig(type="postgres", url=database_url, read_partitions=3)
    with open_connector("shop", config) as connector:
        plan = connector.plan(ReadRequest(table="big", batch_size=500), None)
        batches = [b for part in connector.read(plan) for b in part.batches]
        assert all(b.num_rows <= 500 for b in batches)
        ids = pa.Table.from_batches(batches).column("id").to_pylist()
        assert sorted(ids) == list(range(1, 5004))
        request = ReadRequest(table="big", incremental_column="at", batch_size=500)
        state = {"column": "at", "high": {"type": "timestamp", "value": "2024-01-01T01:00:00"}}
        window = read_table(connector, connector.plan(request, state))
        assert sorted(window.column("id").to_pylist()) == list(range(3601, 5004))


def test_stopping_a_partitioned_read_early_releases_its_threads(source: PostgresSource,
                                                                 database_url: str) -> None:
    import threading

    source.execute("CREATE TABLE many AS SELECT g AS id FROM generate_series(1, 200000) g")
    source.execute("ALTER TABLE many ADD PRIMARY KEY (id)")
    config = PostgresConfig(type="postgres", url=database_url, read_partitions=2)
    with open_connector("shop", config) as connector:
        part = next(connector.read(connector.plan(ReadRequest(table="many", batch_size=1000), None)))
        first = next(part.batches)
        assert first.num_rows == 1000
        part.batches.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name.startswith("pg-read-")]


# -- functions as a read mode ------------------------------------------------------------------

@pytest.fixture
def orders_function(source: PostgresSource) -> str:
    suffix = uuid.uuid4().hex[:6]
    table, function = f"fn_orders_{suffix}", f"orders_since_{suffix}"
    source.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, amount numeric(15,2), ordered date, note text)")
    source.execute(f"INSERT INTO {table} VALUES (1, 10.50, '2024-01-01', 'a'), (2, 20.25, '2024-02-01', NULL), "
                   "(3, 30.00, '2024-03-01', 'O''Brien')")
    source.execute(f"""CREATE FUNCTION {function}(since date, min_amount numeric DEFAULT 0)
        RETURNS TABLE (id int, amount numeric(15,2), ordered date, note text) LANGUAGE sql STABLE AS $$
        SELECT id, amount, ordered, note FROM {table} WHERE ordered >= since AND amount >= min_amount
        ORDER BY id $$""")
    source.execute(f"CREATE FUNCTION {function}_by_note(wanted text) RETURNS SETOF {table} LANGUAGE sql AS "
                   f"$$ SELECT * FROM {table} WHERE note = wanted $$")
    return function


def test_function_is_read_with_named_params_and_defaults(connector: Connector, orders_function: str) -> None:
    request = ReadRequest(procedure=orders_function, params=(("since", "2024-01-15"),))
    table = read_table(connector, connector.plan(request, None))
    assert table.column("id").to_pylist() == [2, 3]
    # PostgreSQL drops the typmod of a function's result columns: numeric(15,2) comes back as numeric
    assert table.schema.field("amount").type == pa.decimal128(38, 9)
    assert table.column("amount").to_pylist() == [Decimal("20.25"), Decimal("30.00")]
    both = ReadRequest(procedure=f"public.{orders_function}", params=(("since", dt.date(2024, 1, 1)),
                                                                      ("min_amount", 15)))
    assert read_table(connector, connector.plan(both, None)).column("id").to_pylist() == [2, 3]
    quoted = ReadRequest(procedure=f"{orders_function}_by_note", params=(("wanted", "O'Brien"),))
    assert read_table(connector, connector.plan(quoted, None)).column("id").to_pylist() == [3]
    assert connector.preview(request, 1).num_rows == 1


def test_function_mistakes_are_named(connector: Connector, orders_function: str, source: PostgresSource) -> None:
    with pytest.raises(SourceNotFound, match=r"orders_sinc.*does not exist"):
        connector.plan(ReadRequest(procedure="orders_sinc", params=(("since", "2024-01-01"),)), None)
    with pytest.raises(SourceSchemaError, match=r"no signature takes the parameters \['snice'\].*since date"):
        connector.plan(ReadRequest(procedure=orders_function, params=(("snice", "2024-01-01"),)), None)
    with pytest.raises(SourceSchemaError, match="cannot be read incrementally"):
        connector.plan(ReadRequest(procedure=orders_function, params=(("since", "2024-01-01"),),
                                   incremental_column="ordered"), None)
    name = f"noop_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE PROCEDURE {name}() LANGUAGE sql AS $$ SELECT 1 $$")
    with pytest.raises(SourceSchemaError, match="is a procedure; PostgreSQL procedures return no rows"):
        connector.plan(ReadRequest(procedure=name), None)


def test_function_that_writes_is_stopped_by_the_read_only_session(connector: Connector,
                                                                   source: PostgresSource) -> None:
    table, name = f"victims_{uuid.uuid4().hex[:6]}", f"purge_{uuid.uuid4().hex[:6]}"
    source.execute(f"CREATE TABLE {table} (id int)")
    source.execute(f"INSERT INTO {table} VALUES (1)")
    source.execute(f"CREATE FUNCTION {name}() RETURNS SETOF int LANGUAGE sql AS "
                   f"$$ DELETE FROM {table} RETURNING id $$")
    with pytest.raises(SourceSchemaError, match="read-only"):
        read_table(connector, connector.plan(ReadRequest(procedure=name), None))
    assert read_table(connector, connector.plan(ReadRequest(table=table), None)).num_rows == 1


def test_docstring_example_loads() -> None:
    import re

    import yaml

    from flowforge.connectors.config import parse_connection
    from flowforge.connectors.sql.postgres.connector import PostgresConnector
    from flowforge.spec.jobs import IngestJob

    block = re.search(r"```yaml\n(.*?)```", PostgresConnector.__doc__ or "", re.S)
    assert block is not None
    spec = yaml.safe_load(block.group(1))
    assert parse_connection(spec["connections"]["shop"]).describe() == "postgresql://db1:5432/shop"
    job = IngestJob.model_validate(spec["jobs"][0])
    assert [t.procedure for t in job.tables] == [None, "sales.orders_since"]
