"""SQL Server connector: the shared connector suite and SQL Server's own types against a live server
(set FLOWFORGE_TEST_SQLSERVER_URL, e.g. mssql://sa:pw@host:1433/master?TrustServerCertificate=yes;
each module run creates and drops its own database), plus what needs no server: connection
strings, driver choice and the translation of real driver errors.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import yaml
from tests.connector_suite import ConnectorSuite, SourceHelper, read_table

from flowforge.connectors import open_connector
from flowforge.connectors.base import Connector, ReadRequest
from flowforge.connectors.config import parse_connection
from flowforge.connectors.sql.sqlserver import catalog
from flowforge.connectors.sql.sqlserver.config import ConnectParams, SqlServerConfig
from flowforge.connectors.sql.sqlserver.connector import SqlServerConnector
from flowforge.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    ConnectorError,
    MissingDependencyError,
    SourceNotFound,
    SourceSchemaError,
)

URL = os.environ.get("FLOWFORGE_TEST_SQLSERVER_URL")
live = pytest.mark.skipif(not URL, reason="FLOWFORGE_TEST_SQLSERVER_URL not set")


# -- without a server: connection strings --------------------------------------------------------

@pytest.mark.parametrize(("data", "describe", "user", "password"), [
    ({"host": "db1", "database": "BFSI_Test", "user": "sa", "password": "s3cret"},
     "sqlserver://db1:1433/BFSI_Test", "sa", "s3cret"),
    ({"url": "mssql://sa:s3cret%40x@db1:1433/BFSI_Test?TrustServerCertificate=yes"},
     "sqlserver://db1:1433/BFSI_Test", "sa", "s3cret@x"),
    ({"connection_string": "mssql+pymssql://CORP%5Csvc:s3cret@db1/BFSI_Test?authentication=windows"
                           "&trust_server_certificate=yes"}, "sqlserver://db1:1433/BFSI_Test", "CORP\\svc", "s3cret"),
    ({"connection_string": "Server=tcp:db2\\BRANCH,1444;Database=GL;UID=etl;PWD={s3;cr}}et};Encrypt=yes;"
                           "TrustServerCertificate=yes;Connection Timeout=5;Driver={ODBC Driver 18 for SQL Server}"},
     "sqlserver://db2\\BRANCH:1444/GL", "etl", "s3;cr}et"),
    ({"connection_string": "Data Source=db3\\SQLEXPRESS;Initial Catalog=Core;User ID=etl;Password=s3cret"},
     "sqlserver://db3\\SQLEXPRESS/Core", "etl", "s3cret"),
    ({"connection_string": "jdbc:sqlserver://db4:1433;databaseName=Cards;user=etl;password=s3cret;encrypt=false"},
     "sqlserver://db4:1433/Cards", "etl", "s3cret"),
    ({"host": "db5", "instance": "HR", "database": "Payroll", "authentication": "windows", "user": "CORP\\svc",
      "password": "s3cret"}, "sqlserver://db5\\HR/Payroll", "CORP\\svc", "s3cret"),
])
def test_connection_forms_resolve_and_describe_without_secrets(data: dict[str, Any], describe: str, user: str,
                                                               password: str) -> None:
    config = SqlServerConfig.model_validate({"type": "sqlserver", **data})
    params = config.params()
    assert (config.describe(), params.user, params.password) == (describe, user, password)
    assert password not in repr(config) and password not in config.describe()


def test_connection_string_settings_apply_and_must_not_conflict() -> None:
    params = SqlServerConfig.model_validate({
        "type": "sqlserver", "connection_string": "Server=db;Database=x;UID=u;PWD=p;Encrypt=no;Connect Timeout=7",
        "trust_server_certificate": True}).params()
    assert (params.encrypt, params.trust_server_certificate, params.login_timeout) == (False, True, 7)
    with pytest.raises(ValueError, match="'encrypt' is set both"):
        SqlServerConfig.model_validate({"type": "sqlserver", "connection_string": "Server=db;Encrypt=no",
                                        "encrypt": True})


@pytest.mark.parametrize(("data", "message"), [
    ({}, "either 'connection_string' or 'host'"),
    ({"url": "mssql://u:s3cret@h/x", "host": "h"}, "not both"),
    ({"url": "postgresql://u:s3cret@h/x"}, "must start with mssql://"),
    ({"connection_string": "Server=h;Pwd=s3cret;Colour=blue"}, "keywords FlowForge does not know: Colour"),
    ({"connection_string": "Server=h;UID=u;PWD={s3cret"}, "unclosed"),
    ({"connection_string": "Server=h;Authentication=ActiveDirectoryPassword;PWD=s3cret"}, "not supported"),
    ({"connection_string": "Server=h;Trusted_Connection=yes"}, "DOMAIN\\\\user"),
    ({"host": "h", "authentication": "windows", "user": "svc", "password": "s3cret"}, "DOMAIN\\\\user"),
    ({"host": "h", "authentication": "windows", "user": "CORP\\svc", "password": "s3cret",
      "driver": "mssql-python"}, "Kerberos"),
    ({"host": "h", "user": "CORP\\svc", "password": "s3cret"}, "set authentication: windows"),
])
def test_bad_connections_are_refused_without_echoing_secrets(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        SqlServerConfig.model_validate({"type": "sqlserver", **data})
    assert "s3cret" not in str(info.value)


def test_docstring_examples_load() -> None:
    values = {"${CORE_PASSWORD}": "x", "${CORE_PW}": "x", "${BRANCH_PASSWORD}": "x",
              "${LEDGER_ODBC}": "Server=tcp:db2,1433;Database=GL;UID=etl;PWD=x;Encrypt=yes;TrustServerCertificate=yes"}
    described = []
    for doc in (SqlServerConfig.__doc__, SqlServerConnector.__doc__):
        block = re.search(r"```yaml\n(.*?)```", doc or "", re.S)
        assert block is not None
        text = block.group(1)
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        for connection in yaml.safe_load(text)["connections"].values():
            described.append(parse_connection(connection).describe())
    assert described == ["sqlserver://db1.bank.local:1433/BFSI_Test", "sqlserver://db2:1433/GL",
                         "sqlserver://db3\\BRANCH/(default database)", "sqlserver://db1:1433/BFSI_Test"]


# -- without a server: drivers --------------------------------------------------------------------

def _params(**changes: Any) -> ConnectParams:
    base: dict[str, Any] = {"host": "db1", "port": 1433, "instance": None, "database": "x", "user": "u",
                            "password": "p}w;", "authentication": "sql", "encrypt": True,
                            "trust_server_certificate": True, "login_timeout": 5}
    return ConnectParams(**{**base, **changes})


@pytest.mark.parametrize(("installed", "changes", "requested", "chosen"), [
    ({"pymssql", "mssql_python"}, {}, "auto", "pymssql"),
    ({"mssql_python"}, {}, "auto", "mssql-python"),
    ({"pymssql", "mssql_python"}, {"trust_server_certificate": False}, "auto", "mssql-python"),
    ({"pymssql", "mssql_python"}, {"authentication": "windows", "trust_server_certificate": True}, "auto", "pymssql"),
    ({"pymssql"}, {"encrypt": False, "trust_server_certificate": False}, "auto", "pymssql"),
])
def test_driver_choice(installed: set[str], changes: dict[str, Any], requested: str, chosen: str) -> None:
    assert catalog.choose_driver(requested, _params(**changes), lambda m: m in installed) == chosen


def test_driver_choice_explains_what_is_missing_or_impossible() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'flowforge\[sqlserver\]'"):
        catalog.choose_driver("auto", _params(), lambda m: False)
    with pytest.raises(MissingDependencyError, match="libltdl7"):
        catalog.choose_driver("mssql-python", _params(), lambda m: m == "pymssql")
    with pytest.raises(ConfigError, match="cannot verify the server's TLS certificate"):
        catalog.choose_driver("pymssql", _params(trust_server_certificate=False), lambda m: True)


def test_odbc_string_quotes_every_value() -> None:
    text = catalog.odbc_string(_params(instance="HR", port=None))
    assert text == ("Server={tcp:db1\\HR};Database={x};UID={u};PWD={p}}w;};Encrypt={yes};"
                    "TrustServerCertificate={yes}")


# -- without a server: real driver errors ----------------------------------------------------------

def _pymssql_error(number: int, text: str) -> Exception:
    pymssql = pytest.importorskip("pymssql")
    error: Exception = pymssql.exceptions.OperationalError(
        (number, f"{text}DB-Lib error message 20018, severity 14:\nGeneral SQL Server error: Check messages from "
                 "the SQL Server\n".encode()))
    return error


@pytest.mark.parametrize(("number", "text", "error", "transient"), [
    (18456, "Login failed for user 'sa'.", AuthenticationFailed, False),
    (4060, "Cannot open database \"BFSI_Tset\" requested by the login. The login failed.", SourceNotFound, False),
    (208, "Invalid object name 'dbo.nope'.", SourceNotFound, False),
    (229, "The SELECT permission was denied on the object 'accounts'.", ConnectorError, False),
    (1205, "Transaction (Process ID 53) was deadlocked on lock resources with another process and has been chosen "
           "as the deadlock victim. Rerun the transaction.", catalog.DeadlockVictim, True),
    (207, "Invalid column name 'x'.", SourceSchemaError, False),
    (20009, "Unable to connect: Adaptive Server is unavailable or does not exist (db1)\nNet-Lib error during "
            "Connection timed out (110)\n", ConnectionFailed, True),
])
def test_driver_errors_are_translated_by_number(number: int, text: str, error: type[Exception],
                                                transient: bool) -> None:
    with pytest.raises(error) as info, catalog.translate("Connection 'core' (sqlserver://db1:1433/BFSI)"):
        raise _pymssql_error(number, text)
    assert type(info.value) is error and info.value.transient is transient  # type: ignore[attr-defined]
    message = str(info.value)
    assert message.startswith("Connection 'core' (sqlserver://db1:1433/BFSI): ") and "DB-Lib" not in message
    assert text.splitlines()[0].split(" (")[0] in message


@pytest.mark.parametrize("driver", ["pymssql", "mssql-python"])
def test_refused_port_is_transient_connection_failed_without_password(driver: str) -> None:
    pytest.importorskip(driver.replace("-", "_"))
    config = SqlServerConfig.model_validate({
        "type": "sqlserver", "host": "127.0.0.1", "port": 1, "database": "x", "user": "sa", "password": "s3;c}ret",
        "trust_server_certificate": True, "login_timeout": 3, "driver": driver})
    connector = open_connector("core", config)
    try:
        connector.test()
    except MissingDependencyError as exc:  # mssql-python's bundled ODBC driver needs libltdl7
        pytest.skip(str(exc).splitlines()[0])
    except ConnectionFailed:
        pass
    with pytest.raises(ConnectionFailed) as info:
        connector.test()
    assert info.value.transient and "Connection 'core' (sqlserver://127.0.0.1:1/x)" in str(info.value)
    assert "s3;c}ret" not in str(info.value) and "s3;c}ret" not in repr(info.value)
    with pytest.raises(ConnectionFailed):
        connector.plan(ReadRequest(table="t"), None)


# -- live server ---------------------------------------------------------------------------------

def _admin() -> ConnectParams:
    assert URL
    return SqlServerConfig.model_validate({"type": "sqlserver", "url": URL}).params()


def _pymssql(params: ConnectParams) -> Any:
    import pymssql

    server = f"{params.host}\\{params.instance}" if params.instance else params.host
    return pymssql.connect(server=server, port=str(params.port or 1433), user=params.user, password=params.password,
                           database=params.database or "master", autocommit=True, tds_version="7.4",
                           use_datetime2=True, login_timeout=10)


@pytest.fixture(scope="module")
def database() -> Iterator[ConnectParams]:
    if not URL:
        pytest.skip("FLOWFORGE_TEST_SQLSERVER_URL not set")
    pytest.importorskip("pymssql")
    admin = _admin()
    name = f"flowforge_test_{uuid.uuid4().hex[:10]}"
    with _pymssql(admin) as conn:
        conn.cursor().execute(f"CREATE DATABASE [{name}]")
    try:
        yield ConnectParams(**{**admin.__dict__, "database": name})
    finally:
        with _pymssql(admin) as conn:
            conn.cursor().execute(f"ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; "
                                  f"DROP DATABASE [{name}]")


def _config(params: ConnectParams, **extra: Any) -> SqlServerConfig:
    return SqlServerConfig.model_validate({
        "type": "sqlserver", "host": params.host, "port": params.port, "instance": params.instance,
        "database": params.database, "user": params.user, "password": params.password, "encrypt": params.encrypt,
        "trust_server_certificate": params.trust_server_certificate or not params.encrypt, **extra})


class SqlServerSource(SourceHelper):
    """Writes through pymssql; the suite's portable DDL is rewritten into T-SQL."""

    placeholder = "%s"
    integer_type = pa.int32()

    def __init__(self, params: ConnectParams) -> None:
        self.params = params

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with _pymssql(self.params) as conn:
            conn.cursor().execute(sql, tuple(params) or None)

    def create_table(self, name: str, ddl: str, rows: Sequence[Sequence[Any]] = ()) -> None:
        ddl = re.sub(r"\bTIMESTAMP\b", "DATETIME2(6)", ddl)  # T-SQL TIMESTAMP is rowversion
        ddl = re.sub(r"\bBOOLEAN\b", "BIT", ddl)
        ddl = re.sub(r"\bVARCHAR\(", "NVARCHAR(", ddl)  # 'émile 😀' needs Unicode columns
        super().create_table(name, ddl, rows)


@pytest.fixture
def source(database: ConnectParams) -> SqlServerSource:
    return SqlServerSource(database)


@pytest.fixture
def connector(database: ConnectParams) -> Iterator[Connector]:
    with open_connector("core", _config(database)) as conn:
        yield conn


@live
@pytest.mark.sqlserver
class TestSqlServer(ConnectorSuite):
    def test_incremental_works_on_a_query(self, connector: Connector, source: SourceHelper, orders: str) -> None:
        # T-SQL has no boolean expressions: a bit column is compared with 1.
        request = ReadRequest(query=f"SELECT id, modified_date FROM {orders} WHERE active = 1",
                              incremental_column="modified_date")
        first = connector.plan(request, None)
        assert sorted(r["id"] for r in read_table(connector, first).to_pylist()) == [1, 4, 6]
        source.insert(orders, [(20, 1, None, None, None, dt.datetime(2025, 1, 1), True),
                               (21, 1, None, None, None, dt.datetime(2025, 1, 1), False)])
        second = connector.plan(request, first.new_state)
        assert [r["id"] for r in read_table(connector, second).to_pylist()] == [20]


TYPES_DDL = """id int PRIMARY KEY, ti tinyint, si smallint, bi bigint, b bit, d152 decimal(15,2), d3810 decimal(38,10),
m money, sm smallmoney, r real, f float, dt date, sdt smalldatetime, dtm datetime, dt2 datetime2, dt23 datetime2(3),
dto datetimeoffset, t time, c char(3), vc varchar(10), nc nchar(2), nv nvarchar(max), tx text, ntx ntext, x xml,
u uniqueidentifier, bn binary(3), vb varbinary(max), img image, rv rowversion"""
TYPES_ROW = """(1, 255, -32768, 9223372036854775807, 1, -9999999999999.99, 1234567890123456789012345678.0123456789,
922337203685477.5807, -214748.3648, 1.5, 2.25, '0001-01-01', '2024-01-01 10:01', '2024-01-01 10:00:00.007',
'2024-01-01 10:00:00.1234567', '9999-12-31 23:59:59.999', '2024-01-01 12:00:00.1234567 +02:00', '23:59:59.9999999',
'ab', 'x', N'ü', REPLICATE(CAST(N'é' AS nvarchar(max)), 100000), 'txt', N'ñtext', '<a>1</a>',
'6F9619FF-8B86-D011-B42D-00C04FC964FF', 0x010203, 0x00FF, 0xCAFE, DEFAULT)"""


@live
@pytest.mark.sqlserver
def test_every_type_reads_exactly(source: SqlServerSource, connector: Connector) -> None:
    source.execute(f"CREATE TABLE all_types ({TYPES_DDL})")
    source.execute(f"INSERT INTO all_types (id, ti, si, bi, b, d152, d3810, m, sm, r, f, dt, sdt, dtm, dt2, dt23, dto, "
                   f"t, c, vc, nc, nv, tx, ntx, x, u, bn, vb, img) VALUES {TYPES_ROW.replace(', DEFAULT)', ')')}")
    table = read_table(connector, connector.plan(ReadRequest(table="all_types"), None))
    assert table.schema.field("dt2").type == pa.timestamp("ns") and table.schema.field("rv").type == pa.binary(8)
    row = table.to_pylist()[0]
    assert (row["ti"], row["si"], row["bi"], row["b"]) == (255, -32768, 2**63 - 1, True)
    assert row["d152"] == Decimal("-9999999999999.99")
    assert row["d3810"] == Decimal("1234567890123456789012345678.0123456789")
    assert row["m"] == Decimal("922337203685477.5807") and row["sm"] == Decimal("-214748.3648")
    assert (row["r"], row["f"]) == (1.5, 2.25)
    assert row["dt"] == dt.date(1, 1, 1) and row["sdt"] == dt.datetime(2024, 1, 1, 10, 1)
    assert row["dtm"] == dt.datetime(2024, 1, 1, 10, 0, 0, 7000)
    assert table.column("dt2").cast(pa.int64())[0].as_py() == 1704103200123456700
    assert row["dt23"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999000)
    assert table.column("dto").cast(pa.int64())[0].as_py() == 1704103200123456700  # 12:00 +02:00 = 10:00 UTC
    assert table.column("t").cast(pa.int64())[0].as_py() == 86399999999900
    assert (row["c"], row["vc"], row["nc"], row["tx"], row["ntx"], row["x"]) == ("ab ", "x", "ü ", "txt", "ñtext",
                                                                                  "<a>1</a>")
    assert row["nv"] == "é" * 100000  # (n)varchar(max) arrives whole, not cut at a driver's text size
    assert row["u"] == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert (row["bn"], row["vb"], row["img"]) == (b"\x01\x02\x03", b"\x00\xff", b"\xca\xfe")
    assert len(row["rv"]) == 8


@live
@pytest.mark.sqlserver
def test_clr_and_variant_types_need_the_string_fallback(source: SqlServerSource, connector: Connector) -> None:
    source.execute("CREATE TABLE odd (id int, h hierarchyid, g geography, v sql_variant)")
    source.execute("INSERT INTO odd VALUES (1, '/1/2/', geography::Point(47.37, 8.54, 4326), CAST(12.5 AS money))")
    with pytest.raises(SourceSchemaError, match=r"(?s)column 'h'.*type_fallback: string"):
        connector.plan(ReadRequest(table="odd"), None)
    row = read_table(connector, connector.plan(ReadRequest(table="odd", type_fallback="string"), None)).to_pylist()
    assert row == [{"id": 1, "h": "/1/2/", "g": "POINT (8.54 47.37)", "v": "12.5000"}]


@live
@pytest.mark.sqlserver
def test_hundred_nanosecond_and_rowversion_watermarks(source: SqlServerSource, connector: Connector) -> None:
    source.execute("CREATE TABLE ticks (id int PRIMARY KEY, at datetime2(7), rv rowversion)")
    source.execute("INSERT INTO ticks (id, at) VALUES (1, '2024-01-01 10:00:00.1234567')")
    for column in ("at", "rv"):
        first = connector.plan(ReadRequest(table="ticks", incremental_column=column), None)
        source.execute(f"INSERT INTO ticks (id, at) VALUES ({2 if column == 'at' else 3}, "
                       f"'2024-01-01 10:00:00.1234568')")
        second = connector.plan(ReadRequest(table="ticks", incremental_column=column), first.new_state)
        assert [r["id"] for r in read_table(connector, second).to_pylist()] == [2 if column == "at" else 3]


@live
@pytest.mark.sqlserver
def test_query_with_cte_and_order_by_and_a_procedure(source: SqlServerSource, connector: Connector) -> None:
    source.create_table("accounts", "id int PRIMARY KEY, branch nvarchar(20), balance money",
                        [(1, "ZRH", Decimal("10.5")), (2, "GVA", Decimal("-3")), (3, "ZRH", Decimal("7"))])
    query = "WITH z AS (SELECT * FROM accounts WHERE branch = 'ZRH') SELECT id, balance FROM z ORDER BY id DESC"
    rows = read_table(connector, connector.plan(ReadRequest(query=query), None)).to_pylist()
    assert sorted(r["id"] for r in rows) == [1, 3]
    source.execute("CREATE PROCEDURE dbo.usp_branch @branch nvarchar(20), @min money AS "
                   "SELECT id, balance FROM accounts WHERE branch = @branch AND balance >= @min")
    request = ReadRequest(procedure="dbo.usp_branch", params=(("branch", "ZRH"), ("@min", Decimal("8"))))
    plan = connector.plan(request, None)
    assert plan.schema.field("balance").type == pa.decimal128(19, 4)
    assert read_table(connector, plan).to_pylist() == [{"id": 1, "balance": Decimal("10.5000")}]


@live
@pytest.mark.sqlserver
def test_partitioned_read_on_integer_and_date_keys(source: SqlServerSource, database: ConnectParams) -> None:
    source.execute("CREATE TABLE big (id int PRIMARY KEY, d date NOT NULL)")
    source.execute("WITH n AS (SELECT TOP (5003) ROW_NUMBER() OVER (ORDER BY (SELECT 1)) AS i FROM sys.all_columns a "
                   "CROSS JOIN sys.all_columns b) INSERT INTO big SELECT i, DATEADD(DAY, i, '2000-01-01') FROM n")
    source.execute("CREATE TABLE days (d date PRIMARY KEY)")
    source.execute("INSERT INTO days SELECT d FROM big")
    with open_connector("core", _config(database, read_partitions=3)) as connector:
        for table, column in (("big", "id"), ("days", "d")):
            plan = connector.plan(ReadRequest(table=table, batch_size=500), None)
            batches = [b for part in connector.read(plan) for b in part.batches]
            assert all(b.num_rows <= 500 for b in batches)
            values = pa.Table.from_batches(batches).column(column).to_pylist()
            assert len(values) == len(set(values)) == 5003


@live
@pytest.mark.sqlserver
def test_wrong_password_and_missing_database(database: ConnectParams) -> None:
    bad = _config(database).model_copy(update={"password": None})
    with pytest.raises(AuthenticationFailed) as info:
        open_connector("core", bad).test()
    assert not info.value.transient
    missing = ConnectParams(**{**database.__dict__, "database": "flowforge_no_such_db"})
    with pytest.raises(SourceNotFound, match="flowforge_no_such_db"):
        open_connector("core", _config(missing)).test()
