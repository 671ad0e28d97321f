"""SQL Server drivers, error rules and catalog discovery.

Two DB-API drivers are supported, chosen by ``driver`` in the connection config:

* **pymssql** (FreeTDS, a self-contained wheel): SQL logins and Windows accounts over NTLM
  (``DOMAIN\\user``). Installed by ``pip install 'flowforge[sqlserver]'``.
* **mssql-python** (Microsoft's, bundles ODBC Driver 18): SQL logins, verified TLS certificates.
  Its bundled driver needs the system library ``libltdl7`` (``apt-get install libltdl7``).

``auto`` takes pymssql when installed, unless the connection wants a verified certificate and
mssql-python is there. SQL Server has no read-only session: reads run under READ COMMITTED and
queries are refused unless they parse as a single read-only SELECT (T-SQL functions cannot write,
so what is left is that check and the login's own permissions; give it db_datareader only).
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from flowforge.connectors.sql.sqlserver import sql as tsql
from flowforge.connectors.sql.sqlserver.config import ConnectParams
from flowforge.connectors.sql.sqlserver.types import Column, SqlType, make_column
from flowforge.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    ConnectorError,
    FlowForgeError,
    MissingDependencyError,
    SourceNotFound,
    SourceSchemaError,
)

INSTALL = "pip install 'flowforge[sqlserver]'"
T = TypeVar("T")


class DeadlockVictim(ConnectorError):
    """SQL Server chose this read as a deadlock victim (1205) or a lock wait timed out (1222):
    transient, retried here with backoff and then by the runner."""

    transient = True


@dataclass(frozen=True)
class Rule:
    """SQL Server error numbers or message fragments (lower case) that select one FlowForge error."""

    error: type[FlowForgeError]
    numbers: tuple[int, ...] = ()
    fragments: tuple[str, ...] = ()
    hint: str | None = None

    def matches(self, number: int | None, text: str) -> bool:
        return any(f in text for f in self.fragments) if number is None else number in self.numbers


RULES = (
    Rule(MissingDependencyError, (), ("failed to load the driver",),
         hint="mssql-python's bundled ODBC driver needs libltdl7 (apt-get install libltdl7), "
              "or use driver: pymssql."),
    Rule(AuthenticationFailed, (18456, 18452, 18486, 18487, 18488),
         ("login failed", "password has expired", "untrusted domain", "password must be changed"),
         hint="Check the user and password of this connection (a DOMAIN\\user account needs "
              "authentication: windows), then run 'flowforge connections test'."),
    Rule(SourceNotFound, (4060, 4063, 911), ("cannot open database", "cannot open user default database"),
         hint="Check the database name and that this login is a user in it "
              "(SELECT name FROM sys.databases lists them)."),
    Rule(SourceNotFound, (208, 2812), ("invalid object name", "could not find stored procedure"),
         hint="List the tables with 'flowforge connections tables' and check the schema and spelling."),
    Rule(DeadlockVictim, (1205, 1222), ("deadlock victim", "lock request time out"),
         hint="Another transaction held the rows; the read is retried."),
    Rule(ConnectorError, (229, 230, 262, 297, 300), ("permission was denied", "permission denied"),
         hint="Grant this login SELECT on the table or view (or EXECUTE on the procedure)."),
    Rule(ConnectorError, (), ("certificate verify failed", "certificate chain", "untrusted authority"),
         hint="This machine does not trust the server's TLS certificate: install its CA, or set "
              "trust_server_certificate: true for a self-signed certificate."),
    Rule(SourceSchemaError, (102, 105, 156, 207, 209, 241, 245, 535, 8114, 8115, 8152, 1033, 4104, 8156),
         ("invalid column name", "incorrect syntax", "conversion failed", "arithmetic overflow"),
         hint="Fix the query or the column names; the database said why above."),
    Rule(SourceSchemaError, tuple(range(11500, 11600)), ("the metadata could not be determined",),
         hint="SQL Server cannot describe this result without running it (temporary tables or "
              "dynamic SQL); select from a table or view instead, or return a fixed set of columns."),
    Rule(ConnectionFailed, (20002, 20003, 20004, 20006, 20009, 20017, 20047, 233, 10053, 10054, 10060,
                            10061, 40197, 40501, 40613, -2),
         ("unable to connect", "timeout", "timed out", "connection refused", "is unavailable or does not exist",
          "tcp provider", "communication link failure", "server was not found", "network-related",
          "connection is broken", "login timeout", "connection reset", "unexpected eof"),
         hint="Check that the server is running and reachable from this machine (host, port or instance, "
              "firewall); the run will be retried."),
)

_ODBC_PREFIX = re.compile(r"^(?:Driver Error: [^;]*; DDBC Error: )?(?:\[[^\]]*\])*\s*")
_DBLIB = re.compile(r"DB-Lib error message \d+, severity \d+:\s*", re.I)


def error_number(exc: BaseException) -> int | None:
    """The SQL Server (or DB-Library) error number: pymssql puts it first in ``args``."""
    number = getattr(exc, "number", None)
    if isinstance(number, int):
        return number
    first = exc.args[0] if exc.args else None
    if isinstance(first, tuple) and first and isinstance(first[0], int):
        return first[0]
    match = re.search(r"\((\d{3,5})\)\s*(?:\(SQLExecDirectW\)|$)", str(exc))
    return int(match.group(1)) if match else None


def error_text(exc: BaseException) -> str:
    """The useful part of a driver message, on one line, without driver prefixes."""
    first = exc.args[0] if exc.args else None
    if isinstance(first, tuple) and len(first) > 1:
        raw = first[1].decode("utf-8", "replace") if isinstance(first[1], bytes) else str(first[1])
    else:
        raw = str(getattr(exc, "message", None) or exc)
    pieces = []
    for chunk in _DBLIB.split(raw):
        for line in chunk.splitlines():
            line = _ODBC_PREFIX.sub("", line.strip()).strip()
            if line and line not in pieces and not line.lower().startswith("general sql server error"):
                pieces.append(line)
    return "; ".join(pieces[:2]) or type(exc).__name__


@contextmanager
def translate(context: str) -> Iterator[None]:
    """Turn a driver exception into the FlowForge error its number or message selects."""
    try:
        yield
    except FlowForgeError:
        raise
    except Exception as exc:
        module = type(exc).__module__.split(".")[0]
        if module not in ("pymssql", "_mssql", "mssql_python"):
            raise  # a bug of ours propagates unchanged
        number, text = error_number(exc), error_text(exc)
        # The error number decides when a rule knows it; message fragments only otherwise
        # ("Cannot open database … The login failed." is 4060, a missing database).
        rule = next((r for r in RULES if r.matches(number, text.lower())), None) or next(
            (r for r in RULES if r.matches(None, text.lower())), None)
        if rule is not None:
            raise rule.error(f"{context}: {text}", hint=rule.hint) from exc
        operational = type(exc).__name__ in ("OperationalError", "InterfaceError")
        raise (ConnectionFailed if operational and number is None else ConnectorError)(
            f"{context}: {text}") from exc


def with_retries(action: Callable[[], T], context: str, attempts: int = 3, delay: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``action``, translating driver errors; a deadlock victim is retried with exponential
    backoff (0.5 s, 1 s) and, if it keeps losing, raised as a transient error for the runner."""
    for attempt in range(attempts):
        try:
            with translate(context):
                return action()
        except DeadlockVictim:
            if attempt == attempts - 1:
                raise
            sleep(delay * 2 ** attempt)
    raise AssertionError("unreachable")


# -- drivers -------------------------------------------------------------------------------------

def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_driver(requested: str, params: ConnectParams,
                  importable: Callable[[str], bool] = _importable) -> str:
    """The driver to use, or a clear error: NTLM needs pymssql, a verified certificate mssql-python."""
    have = {"pymssql": importable("pymssql"), "mssql-python": importable("mssql_python")}
    verified_tls = params.encrypt and not params.trust_server_certificate
    if requested == "auto":
        if params.authentication != "windows" and verified_tls and have["mssql-python"]:
            requested = "mssql-python"
        else:  # with neither installed, the message names our extra, which installs pymssql
            requested = "pymssql" if have["pymssql"] or not have["mssql-python"] else "mssql-python"
    if not have[requested]:
        install = INSTALL if requested == "pymssql" else "pip install mssql-python (and apt-get install libltdl7)"
        raise MissingDependencyError(f"The SQL Server connector needs the {requested} driver: {install}")
    if requested == "pymssql" and verified_tls:
        raise ConfigError(
            "pymssql (FreeTDS) cannot verify the server's TLS certificate from FlowForge settings.",
            hint="Set trust_server_certificate: true to encrypt without verifying (FreeTDS still verifies "
                 "if freetds.conf names a 'ca file'), set encrypt: false, or use driver: mssql-python.")
    return requested


def placeholder(driver: str) -> str:
    return "%s" if driver == "pymssql" else "?"


def connect(driver: str, params: ConnectParams) -> Any:
    """A DB-API connection in autocommit mode with FlowForge's session settings applied."""
    if driver == "pymssql":
        import pymssql

        server = f"{params.host}\\{params.instance}" if params.instance else params.host
        kwargs: dict[str, Any] = {
            "server": server, "user": params.user, "password": params.password,
            "database": params.database or "", "login_timeout": params.login_timeout, "appname": "flowforge",
            "autocommit": True, "tds_version": "7.4", "conn_properties": tsql.SESSION,
            # 'request' encrypts whenever the server can, and always when it requires it.
            "encryption": "require" if params.encrypt else "request",
        }
        if params.port is not None:
            kwargs["port"] = str(params.port)
        return pymssql.connect(**kwargs)
    import mssql_python

    conn = mssql_python.connect(odbc_string(params), autocommit=True, timeout=params.login_timeout)
    cursor = conn.cursor()
    cursor.execute(tsql.SESSION)
    cursor.close()
    return conn


def odbc_string(params: ConnectParams) -> str:
    """The ODBC string mssql-python gets (values brace-quoted: a '}' or ';' in a password is safe)."""
    server = f"tcp:{params.host}" + (f"\\{params.instance}" if params.instance else "")
    if params.port is not None:
        server += f",{params.port}"
    parts = {"Server": server, "Database": params.database, "UID": params.user, "PWD": params.password,
             "Encrypt": "yes" if params.encrypt else "no",
             "TrustServerCertificate": "yes" if params.trust_server_certificate else "no"}
    return ";".join(f"{key}={{{value.replace('}', '}}')}}}" for key, value in parts.items() if value)


# -- discovery -----------------------------------------------------------------------------------

def rows(conn: Any, sql: str, params: tuple[Any, ...] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params) if params else cursor.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        return names, [tuple(r) for r in cursor.fetchall()] if names else []
    finally:
        cursor.close()


def list_tables(conn: Any) -> list[tuple[str, str, int | None]]:
    _, found = rows(conn, tsql.LIST_TABLES)
    return [(schema, name, int(estimate) if estimate is not None else None)
            for schema, name, _kind, estimate in found]


def table_columns(conn: Any, schema: str, table: str, where: str,
                  fallback: str | None) -> list[Column] | None:
    """Columns of a table or view, or None if it does not exist (or is not visible)."""
    names, found = rows(conn, tsql.table_columns(schema, table))
    if not found:
        return None
    out = []
    for row in found:
        r = dict(zip(names, row, strict=True))
        t = SqlType.from_catalog(r["base_type"], r["max_length"], r["precision"], r["scale"])
        alias = r["type_name"] if r["is_user_defined"] and r["type_name"] != r["base_type"] else None
        out.append(make_column(r["column_name"], t, where, fallback=fallback, nullable=bool(r["is_nullable"]),
                               primary_key=bool(r["is_primary_key"]), default=r["default_sql"], alias=alias))
    return out


def described_columns(conn: Any, statement: str, where: str, fallback: str | None) -> list[Column]:
    """Columns of a query or procedure call as SQL Server describes them, without running it."""
    names, found = rows(conn, tsql.describe_first_result_set(statement))
    out = []
    for row in found:
        r = dict(zip(names, row, strict=True))
        if r.get("is_hidden"):
            continue
        name = r["name"]
        if not name:
            raise SourceSchemaError(f"{where}: result column {r['column_ordinal']} has no name.",
                                    hint="Give every computed column an alias (… AS total).")
        base = str(r["system_type_name"]).split("(", 1)[0].strip()
        t = SqlType.from_catalog(base, r["max_length"], r["precision"], r["scale"])
        alias = r.get("user_type_name")
        out.append(make_column(name, t, where, fallback=fallback, nullable=bool(r["is_nullable"]),
                               alias=alias if alias and alias != base else None))
    duplicates = sorted({c.name for c in out if [d.name for d in out].count(c.name) > 1})
    if duplicates:
        raise SourceSchemaError(f"{where}: the result has duplicate column names {duplicates}.",
                                hint="Give every selected column a distinct alias.")
    return out


def qualified(name: str, default_schema: str, database: str | None, where: str) -> tuple[str, str]:
    """``schema.table`` (or ``db.schema.table`` naming this database) → (schema, table)."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        table = exp.to_table(name, dialect=tsql.DIALECT)
    except (SqlglotError, ValueError):  # sqlglot raises ValueError for too many dots
        raise SourceNotFound(f"{where}: {name!r} is not a valid table name.",
                             hint="Give schema.table, or [schema].[table] for names with special characters.") from None
    if table.catalog and (database is None or table.catalog.lower() != database.lower()):
        raise SourceNotFound(f"{where}: {name!r} is in database {table.catalog!r}, not this connection's.",
                             hint="Add a connection to that database and read the table through it.")
    return table.db or default_schema, table.name


def describe_call(procedure: str, params: tuple[tuple[str, Any], ...], where: str) -> str:
    """The EXEC statement with literal arguments, for sp_describe_first_result_set only."""
    call = tsql.procedure_call(procedure, [n for n, _ in params], "\x00", where)
    for _, value in params:
        call = call.replace("\x00", tsql.param_literal(value), 1)
    return call
