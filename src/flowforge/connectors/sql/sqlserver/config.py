"""SQL Server connection config (pydantic and the standard library only, so parsing specs stays fast).

A connection is given either as fields or as one secret connection string, in any of the forms
banks hand out: a URL (``mssql://`` / ``sqlserver://``, SQLAlchemy's ``mssql+pymssql://``), an
ODBC string (``Server=tcp:db1,1433;Database=BFSI;UID=etl;PWD=…;Encrypt=yes``) or a JDBC string
(``jdbc:sqlserver://db1:1433;databaseName=BFSI;user=etl;password=…``). Both end in the same
``ConnectParams``, which only drivers see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from pydantic import AliasChoices, ConfigDict, Field, SecretStr, model_validator

from flowforge.connectors.config import ConnectionConfig, register_config
from flowforge.connectors.sql.pool import DEFAULT_SIZE, POOL_SIZE_HELP

DEFAULT_PORT = 1433
_WINDOWS_USER = re.compile(r"^[^\\/@\s]+\\[^\\/@\s]+$")
_TRUE = {"yes", "true", "1", "mandatory", "strict", "on"}
_FALSE = {"no", "false", "0", "optional", "off"}
# ODBC / ADO / JDBC keyword → our field. Keys are compared lower-case without spaces.
_KEYS = {
    "server": "server", "datasource": "server", "address": "server", "addr": "server",
    "networkaddress": "server", "servername": "server",
    "database": "database", "initialcatalog": "database", "databasename": "database",
    "uid": "user", "userid": "user", "user": "user", "username": "user",
    "pwd": "password", "password": "password",
    "encrypt": "encrypt", "trustservercertificate": "trust_server_certificate",
    "connectiontimeout": "login_timeout", "connecttimeout": "login_timeout",
    "logintimeout": "login_timeout", "timeout": "login_timeout",
    "trustedconnection": "trusted", "integratedsecurity": "trusted",
    "instance": "instance", "instancename": "instance", "port": "port", "portnumber": "port",
    "authentication": "authentication",
}
_IGNORED = {"driver", "app", "applicationname", "provider", "applicationintent", "multisubnetfailover",
            "packetsize", "persistsecurityinfo", "pooling", "multipleactiveresultsets"}


@dataclass(frozen=True)
class ConnectParams:
    """Where and how to log in, with the plaintext password: for drivers only, never logged."""

    host: str
    port: int | None  # None with a named instance: the SQL Browser service gives the port
    instance: str | None
    database: str | None
    user: str | None
    password: str | None
    authentication: Literal["sql", "windows"]
    encrypt: bool
    trust_server_certificate: bool
    login_timeout: int

    def describe(self) -> str:
        where = f"{self.host}\\{self.instance}" if self.instance else self.host
        if self.port is not None or not self.instance:
            where += f":{self.port or DEFAULT_PORT}"
        return f"sqlserver://{where}/{self.database or '(default database)'}"


@register_config("sqlserver")
class SqlServerConfig(ConnectionConfig):
    """A SQL Server database, given as fields *or* as one connection string.

    ```yaml
    connections:
      core_banking:
        type: sqlserver
        host: db1.bank.local
        database: BFSI_Test
        user: etl_reader
        password: ${CORE_PASSWORD}
        trust_server_certificate: true   # self-signed certificate on the server
        read_partitions: 4               # parallel range reads on an integer or date key
        pool_size: 2                     # idle discovery connections kept for reuse (0: none)
      ledger:
        type: sqlserver
        connection_string: ${LEDGER_ODBC}  # "Server=tcp:db2,1433;Database=GL;UID=...;PWD=...;Encrypt=yes"
      branch:
        type: sqlserver
        host: db3
        instance: BRANCH          # host\\BRANCH; the port comes from the SQL Browser service
        authentication: windows   # NTLM: needs the pymssql driver
        user: CORP\\svc_etl
        password: ${BRANCH_PASSWORD}
    ```

    ``authentication: windows`` logs in with a domain account (``DOMAIN\\user`` and its
    password) over NTLM. Only pymssql (FreeTDS) does that from Linux; mssql-python supports
    Windows accounts only through Kerberos, which FlowForge does not set up. ``encrypt`` defaults
    to on, as in ODBC Driver 18. pymssql cannot check the server certificate from these settings
    (FreeTDS checks it only when its own ``freetds.conf`` names a ``ca file``), so with pymssql an
    encrypted connection needs ``trust_server_certificate: true`` to say so explicitly; use
    ``driver: mssql-python`` for a verified certificate.
    """

    # A rejected connection string must not be echoed back inside the validation error.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    type: Literal["sqlserver"]
    connection_string: SecretStr | None = Field(
        None, validation_alias=AliasChoices("connection_string", "url"),
        description="A URL, ODBC or JDBC connection string; kept secret as a whole.")
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535, description=f"Default {DEFAULT_PORT} unless an instance is named.")
    instance: str | None = Field(None, description="Named instance (host\\INSTANCE), found via SQL Browser.")
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    authentication: Literal["sql", "windows"] = "sql"
    driver: Literal["auto", "mssql-python", "pymssql"] = "auto"
    encrypt: bool = True
    trust_server_certificate: bool = False
    login_timeout: int = Field(15, ge=1, le=600, description="Seconds to wait for a connection and login.")
    read_partitions: int = Field(1, ge=1, le=16, description="Parallel range reads on an integer or date key.")
    schema_: str = Field("dbo", alias="schema", description="Schema of unqualified table names.")
    pool_size: int = Field(DEFAULT_SIZE, ge=0, le=32, description=POOL_SIZE_HELP)

    @model_validator(mode="after")
    def _check(self) -> SqlServerConfig:
        given = [f for f in ("host", "port", "instance", "database", "user", "password") if f in self.model_fields_set]
        if self.connection_string is not None and given:
            raise ValueError(f"give either 'connection_string' or the fields {', '.join(given)}, not both")
        if self.connection_string is None and not self.host:
            raise ValueError("give either 'connection_string' or 'host' (with database, user, password)")
        params = self.params()  # parses the string: a malformed one fails here, at load time
        if params.authentication == "windows":
            if not params.user or not _WINDOWS_USER.match(params.user) or not params.password:
                raise ValueError("authentication 'windows' needs user as DOMAIN\\user and its password "
                                 "(NTLM); for a SQL login use authentication 'sql'")
            if self.driver == "mssql-python":
                raise ValueError("mssql-python cannot log in with DOMAIN\\user and a password on Linux "
                                 "(it supports Windows accounts only through Kerberos); use driver 'pymssql'")
        elif params.user and "\\" in params.user:
            raise ValueError(f"user {params.user!r} is a Windows account; set authentication: windows")
        return self

    def params(self) -> ConnectParams:
        """The resolved login parameters *with* the password; for drivers only, never log them."""
        if self.connection_string is None:
            return ConnectParams(
                host=self.host or "localhost", port=self.port if self.port or self.instance else DEFAULT_PORT,
                instance=self.instance, database=self.database, user=self.user,
                password=self.password.get_secret_value() if self.password else None,
                authentication=self.authentication, encrypt=self.encrypt,
                trust_server_certificate=self.trust_server_certificate, login_timeout=self.login_timeout)
        found = parse_connection_string(self.connection_string.get_secret_value())
        # Settings outside the string apply where the string is silent, and must not contradict it.
        for name in ("encrypt", "trust_server_certificate", "login_timeout", "authentication"):
            if name in self.model_fields_set and name in found and found[name] != getattr(self, name):
                raise ValueError(f"'{name}' is set both in the connection string and as a field, differently")
        trusted = found.pop("trusted", False)
        if trusted and found.get("authentication", "windows") != "windows":
            raise ValueError("Trusted_Connection contradicts the string's Authentication keyword")
        server = str(found.get("server") or "localhost")
        host, instance, port = split_server(server)
        port = found.get("port", port)
        instance = found.get("instance", instance)
        return ConnectParams(
            host=host, port=int(port) if port else (None if instance else DEFAULT_PORT), instance=instance,
            database=found.get("database"), user=found.get("user"), password=found.get("password"),
            authentication="windows" if trusted else found.get("authentication", self.authentication),
            encrypt=found.get("encrypt", self.encrypt),
            trust_server_certificate=found.get("trust_server_certificate", self.trust_server_certificate),
            login_timeout=int(found.get("login_timeout", self.login_timeout)))

    def describe(self) -> str:
        """``sqlserver://host:1433/db`` — no user, no password."""
        try:
            return self.params().describe()
        except ValueError:  # never fail, never echo the string
            return "sqlserver://(invalid connection string)"


# -- parsing connection strings ----------------------------------------------------------------

def split_server(server: str) -> tuple[str, str | None, int | None]:
    """``tcp:db1\\INST,1433`` → (``db1``, ``INST``, 1433); ``(local)`` and ``.`` mean localhost."""
    text = server.strip()
    text = re.sub(r"(?i)^(tcp|np|lpc|admin):", "", text)
    port: int | None = None
    if "," in text:
        text, raw_port = text.rsplit(",", 1)
        port = _int(raw_port, "port")
    host, _, instance = text.partition("\\")
    host = host.strip("[]")  # [::1]
    if host.lower() in ("", ".", "(local)", "(localdb)"):
        host = "localhost"
    return host, instance or None, port


def parse_connection_string(text: str) -> dict[str, Any]:
    """A URL, ODBC or JDBC string → the fields it sets (lower-case keys of ``_KEYS``)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered.startswith("jdbc:"):
        stripped, lowered = stripped[5:], lowered[5:]
    scheme = lowered.split("://", 1)[0] if "://" in lowered else ""
    if scheme.split("+", 1)[0] in ("mssql", "sqlserver"):
        rest = stripped.split("://", 1)[1]
        if ";" in rest and "@" not in rest.split(";", 1)[0]:  # JDBC: sqlserver://host:1433;databaseName=…
            authority, _, props = rest.partition(";")
            host, _, port = authority.partition(":")
            found = _keywords(_split_odbc(props))
            found.setdefault("server", f"{host},{port}" if port else host)
            return found
        return _parse_url(rest)
    if "://" in stripped:
        raise ValueError("connection_string must start with mssql:// or sqlserver:// (or be an ODBC string)")
    if "=" not in stripped:
        raise ValueError("connection_string is neither a URL nor an ODBC 'Key=Value;…' string")
    return _keywords(_split_odbc(stripped))


def _parse_url(rest: str) -> dict[str, Any]:
    authority, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in authority:
        authority, _, query = authority.partition("?")
    found: dict[str, Any] = {}
    if "@" in authority:
        credentials, _, authority = authority.rpartition("@")
        user, _, password = credentials.partition(":")
        found["user"] = unquote(user) or None
        if password:
            found["password"] = unquote(password)
    host = unquote(authority)
    port: str | None = None
    if host.startswith("["):  # IPv6 literal
        literal, _, after = host[1:].partition("]")
        host, port = literal, after.lstrip(":") or None
    elif ":" in host:
        host, port = host.rsplit(":", 1)
    found["server"] = f"{host},{port}" if port else host
    database = unquote(path.strip("/"))
    if database:
        found["database"] = database
    found.update(_keywords(parse_qsl(query, keep_blank_values=True)))
    return found


def _split_odbc(text: str) -> list[tuple[str, str]]:
    """``Key=Value;Key={va;lue}}x}`` → pairs; braces quote ``;`` and ``}}`` is a literal ``}``."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in "; \t\r\n":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError("connection_string has a part without '=' (expected Key=Value;…)")
        key = text[i:eq].strip()
        i = eq + 1
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == "{":
            value, i = [], i + 1
            while True:
                if i >= n:
                    raise ValueError(f"connection_string: unclosed '{{' in the value of {key!r}")
                if text[i] == "}":
                    if i + 1 < n and text[i + 1] == "}":
                        value.append("}")
                        i += 2
                        continue
                    i += 1
                    break
                value.append(text[i])
                i += 1
            pairs.append((key, "".join(value)))
            end = text.find(";", i)
            i = n if end < 0 else end + 1
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            pairs.append((key, text[i:end].strip()))
            i = end + 1
    return pairs


def _keywords(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    unknown = []
    for raw_key, value in pairs:
        key = raw_key.lower().replace(" ", "").replace("_", "")
        if key in _IGNORED:
            continue
        field = _KEYS.get(key)
        if field is None:
            unknown.append(raw_key)
            continue
        if field in ("encrypt", "trust_server_certificate", "trusted"):
            found[field] = _bool(value, raw_key, allow_sspi=field == "trusted")
        elif field in ("login_timeout", "port"):
            found[field] = _int(value, raw_key)
        elif field == "authentication":
            mode = value.lower().replace(" ", "")
            if mode in ("sqlpassword", "sql"):
                found[field] = "sql"
            elif mode in ("windows", "ntlm"):
                found[field] = "windows"
            else:
                raise ValueError(f"connection_string: Authentication={value} is not supported "
                                 "(use SqlPassword, or authentication: windows with DOMAIN\\user)")
        else:
            found[field] = value
    if unknown:
        raise ValueError(f"connection_string has keywords FlowForge does not know: {', '.join(unknown)}")
    return found


def _bool(value: str, key: str, allow_sspi: bool = False) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE or (allow_sspi and lowered == "sspi"):
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"connection_string: {key}={value!r} is not yes/no")


def _int(value: str, key: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"connection_string: {key} must be a whole number") from None
