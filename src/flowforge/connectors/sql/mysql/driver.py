"""Connections to MySQL / MariaDB with PyMySQL or mysqlclient, the errors they raise, and retries.

PyMySQL (pure Python) is required: discovery and planning use it, because its result metadata
carries the charset and flags that type a query's columns. Reads stream with connectorx when it
is installed and the connection needs no TLS (``fast.py``), else with mysqlclient (a C driver,
~2.5x faster than PyMySQL on the text protocol), else with PyMySQL; the last two run without
value converters, so rows arrive as the server's text (see ``convert.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from flowforge.connectors.sql.mysql.config import MysqlConfig

INSTALL = "pip install 'flowforge[mysql]'"
T = TypeVar("T")
# Server: UTC session (TIMESTAMP values arrive in UTC) and a long write timeout, so a consumer
# that pauses (a Delta commit) does not make the server drop a streaming result after 60 s.
INIT_SQL = "SET time_zone = '+00:00', net_write_timeout = 3600"
READ_ONLY_SQL = "SET SESSION TRANSACTION READ ONLY"
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)

_GRANT = "Grant this user SELECT on the table (and EXECUTE on procedures)."
_SERVER = ("Check that the server is running and reachable from this machine (host, port, firewall); "
           "the run will be retried.")
_TLS = "Enable TLS on the server, check ssl_ca / ssl_cert / ssl_key, or set ssl_mode: preferred."
_SCHEMA_HINT = "Fix the query, the column names or the procedure's parameters; the server said why above."
# MySQL / MariaDB error numbers → (FlowForge error, hint, retry before rows flow?)
ERRORS: dict[int, tuple[type[FlowForgeError], str, bool]] = {
    1045: (AuthenticationFailed, "Check the user and password of this connection, then run "
                                 "'flowforge connections test'.", False),
    1698: (AuthenticationFailed, "Check the user and password of this connection.", False),
    1044: (AuthenticationFailed, "The user may not use this database (or it does not exist); check "
                                 "the database name and the user's grants.", False),
    1049: (SourceNotFound, "Check the database name; list databases with SHOW DATABASES.", False),
    1146: (SourceNotFound, "List the tables with 'flowforge connections tables' and check the name.", False),
    1305: (SourceNotFound, "Check the procedure name and the database it lives in.", False),
    1142: (ConnectorError, _GRANT, False), 1143: (ConnectorError, _GRANT, False),
    1370: (ConnectorError, _GRANT, False),
    1792: (SourceSchemaError, "FlowForge reads in READ ONLY transactions; only read-only queries and "
                              "procedures that do not write are allowed.", False),
    1205: (ConnectionFailed, "A lock wait timed out; the read will be retried.", True),
    1213: (ConnectionFailed, "The read was chosen as a deadlock victim; it will be retried.", True),
    1040: (ConnectionFailed, "The server has too many connections; the read will be retried.", True),
    1053: (ConnectionFailed, "The server is shutting down; the read will be retried.", True),
    1927: (ConnectionFailed, "The connection was killed; the read will be retried.", True),
    2002: (ConnectionFailed, _SERVER, True), 2003: (ConnectionFailed, _SERVER, True),
    2026: (ConnectorError, _TLS, False),
    2005: (ConnectionFailed, "Check the host name of this connection.", False),
    2006: (ConnectionFailed, "The server closed the connection; the read will be retried.", True),
    2013: (ConnectionFailed, "The connection was lost during the read; it will be retried.", True),
    2055: (ConnectionFailed, "The connection was lost during the read; it will be retried.", True),
    **dict.fromkeys((1052, 1054, 1060, 1064, 1241, 1248, 1264, 1292, 1318, 1366, 1582, 1630),
                    (SourceSchemaError, _SCHEMA_HINT, False)),
}


def pymysql_module() -> Any:
    try:
        import pymysql
    except ImportError as exc:
        raise MissingDependencyError(f"The MySQL connector needs PyMySQL: {INSTALL}") from exc
    return pymysql


def stream_driver(config: MysqlConfig) -> str:
    """``connectorx``, ``mysqlclient`` or ``pymysql``: the one asked for, or (``auto``) the
    fastest installed one that honours the connection's options."""
    from flowforge.connectors.sql.mysql import fast

    options = config.connect_args()["options"]
    mode = options.get("ssl_mode", "").lower()
    # connectorx opens plain connections only; TLS and timeouts are the other drivers' job.
    plain = not set(options) - {"ssl_mode"} and mode in ("", "disabled")
    if config.driver == "connectorx":
        if not fast.available():
            raise MissingDependencyError(f"driver: connectorx needs connectorx: {INSTALL}")
        if not plain:
            raise ConfigError(f"{config.describe()}: driver: connectorx cannot apply the options "
                              f"{sorted(options)} (TLS, timeouts).",
                              hint="Use driver: mysqlclient or pymysql for TLS connections.")
        return "connectorx"
    if config.driver == "auto" and plain and fast.available():
        return "connectorx"
    # PyMySQL checks certificates with Python's ssl module; mysqlclient's checks depend on the
    # client library it was built with (MariaDB's Connector/C ignores ssl_mode), so verifying
    # modes use PyMySQL unless mysqlclient is asked for by name.
    if config.driver == "pymysql" or (config.driver == "auto" and mode.startswith("verify")):
        return "pymysql"
    try:
        import MySQLdb  # noqa: F401
    except ImportError as exc:
        if config.driver == "mysqlclient":
            raise MissingDependencyError("driver: mysqlclient needs 'pip install mysqlclient' (and the "
                                         "MySQL/MariaDB client headers to build it).") from exc
        return "pymysql"
    return "mysqlclient"


def connect(config: MysqlConfig, driver: str = "pymysql", *, raw: bool = False) -> Any:
    """An autocommit connection in a UTC session. ``raw`` turns value converters off."""
    args = config.connect_args()
    options: dict[str, str] = args.pop("options")
    common: dict[str, Any] = {
        "host": args["host"], "port": int(args["port"]), "user": args["user"], "password": args["password"],
        "database": args["database"], "charset": "utf8mb4", "connect_timeout": config.connect_timeout,
        "autocommit": True, "init_command": INIT_SQL,
    }
    for key in ("read_timeout", "write_timeout"):
        if key in options:
            common[key] = int(options[key])
    mode = options.get("ssl_mode", "").lower()
    files = {k: options[f"ssl_{k}"] for k in ("ca", "cert", "key") if f"ssl_{k}" in options}
    if driver == "mysqlclient":
        import MySQLdb

        extra: dict[str, Any] = {"multi_statements": False}
        if raw:
            extra["conv"] = {}
        if mode:
            extra["ssl_mode"] = mode.upper()
        if files:
            extra["ssl"] = files
        return _session(MySQLdb.connect(**common, **extra), mode)
    pymysql = pymysql_module()
    # PyMySQL sends a str password as Latin-1; the server hashed the UTF-8 bytes it was given
    # (and mysqlclient and connectorx send UTF-8), so a password with 'é' must travel as UTF-8.
    extra = {"password": common["password"].encode()}
    if raw:  # keep the encoders (for bound parameters), drop every decoder
        extra["conv"] = {k: v for k, v in pymysql.converters.conversions.items() if isinstance(k, type)}
    if mode == "disabled":
        extra["ssl_disabled"] = True
    elif mode == "required":
        extra["ssl"] = {"check_hostname": False, "verify_mode": False, **files}
    elif mode in ("verify_ca", "verify_identity"):
        extra.update({f"ssl_{k}": v for k, v in files.items()})
        extra["ssl_verify_cert"] = True
        extra["ssl_verify_identity"] = mode == "verify_identity"
    return _session(pymysql.connect(**{**common, **extra}), mode)


def _session(conn: Any, ssl_mode: str) -> Any:
    """Every transaction of the session is READ ONLY, autocommit statements included: a query's
    description (LIMIT 0) or ``max()`` evaluates functions, and a function may write. A session
    that must be encrypted is checked to be, whatever the driver did with ``ssl_mode``."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(READ_ONLY_SQL)
            if ssl_mode not in ("", "disabled", "preferred"):
                cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                row = cursor.fetchone()
                if not row or not row[1]:
                    # the error the driver should have raised; translated like one (2026: TLS)
                    raise pymysql_module().err.OperationalError(
                        2026, f"ssl_mode is {ssl_mode} but the server did not encrypt the connection")
    except BaseException:
        abort(conn)
        raise
    return conn


def unbuffered_cursor(conn: Any) -> Any:
    """A cursor that streams rows from the server (``mysql_use_result``): bounded memory."""
    module = type(conn).__module__
    if module.startswith("MySQLdb"):
        import MySQLdb.cursors

        return conn.cursor(MySQLdb.cursors.SSCursor)
    import pymysql.cursors

    return conn.cursor(pymysql.cursors.SSCursor)


def abort(conn: Any, cursor: Any = None) -> None:
    """Close without draining. A streaming cursor's close() reads every remaining row (PyMySQL
    even calls it from ``__del__``), so the cursor is detached first and the connection closed:
    the server then stops sending."""
    if cursor is not None:
        detach(cursor)
    with contextlib.suppress(Exception):  # already closed or broken: nothing left to release
        conn.close()


def detach(cursor: Any) -> None:
    """Make a streaming cursor forget its unread rows, so neither its close() nor (PyMySQL) its
    result's ``__del__`` reads them; the connection must be closed next."""
    result = getattr(cursor, "_result", None)
    if result is not None and hasattr(result, "unbuffered_active"):
        result.unbuffered_active = False
    cursor.connection = None


def _driver_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    try:
        import pymysql

        found.append(pymysql.err.Error)
    except ImportError:
        pass
    try:
        import MySQLdb

        found.append(MySQLdb.Error)
    except ImportError:
        pass
    return tuple(found)


def errno(exc: BaseException) -> int | None:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def is_transient(exc: BaseException) -> bool:
    cause = exc.__cause__ if isinstance(exc, FlowForgeError) else exc
    code = errno(cause) if cause is not None else None
    return code is not None and code in ERRORS and ERRORS[code][2]


def translate(exc: BaseException, context: str) -> FlowForgeError:
    """One FlowForge error for a driver error: '<context>: <server message> (MySQL error N)'."""
    code = errno(exc)
    message = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    detail = f"{message.strip().splitlines()[0] if message.strip() else type(exc).__name__}" + (
        f" (MySQL error {code})" if code else "")
    if code in ERRORS:
        error, hint, _ = ERRORS[code]
        return error(f"{context}: {detail}", hint=hint)
    if code is not None and 2000 <= code < 3000:  # client-side errors: the connection, not the data
        return ConnectionFailed(f"{context}: {detail}", hint=_SERVER)
    return ConnectorError(f"{context}: {detail}")


@contextmanager
def errors(context: str) -> Iterator[None]:
    """Translate driver exceptions raised inside the block; anything else propagates unchanged."""
    try:
        yield
    except FlowForgeError:
        raise
    except _driver_errors() as exc:
        raise translate(exc, context) from exc


def sleep(seconds: float) -> None:
    """Backoff between attempts (a function of this module, so tests can replace it)."""
    time.sleep(seconds)


def backoff(attempt: int) -> float:
    return BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]


def note_attempts(exc: FlowForgeError, attempts: int) -> FlowForgeError:
    if attempts > 1:
        exc.message = f"{exc.message} (after {attempts} attempts)"
        exc.args = (exc.message,)
    return exc


def retrying(action: Callable[[], T], context: str, retries: int) -> T:
    """Run ``action`` (which must not have handed out rows yet), retrying transient failures
    (deadlock, lock wait timeout, lost connection, refused) with exponential backoff."""
    attempt = 0
    while True:
        try:
            with errors(context):
                return action()
        except FlowForgeError as exc:
            if attempt >= retries or not is_transient(exc):
                raise note_attempts(exc, attempt + 1) from exc.__cause__
            sleep(backoff(attempt))
            attempt += 1
