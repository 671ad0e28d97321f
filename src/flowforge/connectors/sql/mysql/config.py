"""MySQL / MariaDB connection config (pydantic and the standard library only, so parsing specs stays fast)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from flowforge.connectors.config import ConnectionConfig, register_config
from flowforge.connectors.sql.pool import DEFAULT_SIZE, POOL_SIZE_HELP

URL_SCHEMES = ("mysql", "mariadb")
SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
# Connection options a URL query or ``options`` may carry; everything else is refused, so a
# typo ("ssl_mod") fails at load time instead of silently connecting without TLS.
OPTION_KEYS = ("ssl_mode", "ssl_ca", "ssl_cert", "ssl_key", "read_timeout", "write_timeout")


@register_config("mysql")
class MysqlConfig(ConnectionConfig):
    """A MySQL or MariaDB database, given as a URL *or* as separate fields.

    ```yaml
    connections:
      shop:
        type: mysql
        host: db1.internal
        database: shop
        user: etl
        password: ${MYSQL_PASSWORD}
        options: {ssl_mode: required, ssl_ca: /etc/ssl/certs/db-ca.pem}
        read_partitions: 2     # parallel range reads on an integer primary key
        pool_size: 2           # idle discovery connections kept for reuse (0: none)
    ```

    ``url: mysql://etl:...@db1.internal:3306/shop?ssl_mode=required`` works too; ``mariadb://``
    and SQLAlchemy-style ``mysql+pymysql://`` prefixes are accepted. ``driver`` picks the
    streaming driver: ``auto`` uses connectorx (Arrow decoded in Rust, about 2x faster than
    mysqlclient) when it is installed and no TLS or timeout option is set, then mysqlclient
    (about 2.5x faster than PyMySQL), then PyMySQL.
    """

    # A rejected URL must not be echoed back inside the validation error: it may hold a password.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["mysql"]
    url: SecretStr | None = None
    host: str = "localhost"
    port: int = Field(3306, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    options: dict[str, str] = Field(default_factory=dict)
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for a connection.")
    read_partitions: int = Field(1, ge=1, le=16, description="Parallel range reads on an integer key.")
    pool_size: int = Field(DEFAULT_SIZE, ge=0, le=32, description=POOL_SIZE_HELP)
    retries: int = Field(3, ge=0, le=10, description="Retries of a transient failure before rows flow.")
    driver: Literal["auto", "connectorx", "mysqlclient", "pymysql"] = "auto"

    @field_validator("url", mode="before")
    @classmethod
    def _check_scheme(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            scheme = text.split("://", 1)[0] if "://" in text else ""
            if scheme.split("+", 1)[0].lower() not in URL_SCHEMES:
                raise ValueError("url must start with mysql:// or mariadb:// (mysql+pymysql:// is accepted)")
        return value

    @field_validator("options")
    @classmethod
    def _known_options(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(OPTION_KEYS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; known: {', '.join(OPTION_KEYS)}")
        mode = value.get("ssl_mode")
        if mode is not None and mode.lower() not in SSL_MODES:
            raise ValueError(f"ssl_mode must be one of {', '.join(SSL_MODES)}")
        return value

    @model_validator(mode="after")
    def _url_xor_database(self) -> MysqlConfig:
        if (self.url is None) == (self.database is None):
            raise ValueError("give either 'url' or 'database' (with host, port, user, password), not both")
        if self.url is not None:
            parts = self._parts()
            if not unquote(parts.path.lstrip("/")):
                raise ValueError("the url must name a database: mysql://user@host:3306/<database>")
            try:
                parts.port  # noqa: B018 - raises on a malformed port
            except ValueError as exc:
                raise ValueError("the url has an invalid port") from exc
            self._known_options(dict(parse_qsl(parts.query)))
        return self

    def _parts(self) -> Any:
        assert self.url is not None
        return urlsplit(self.url.get_secret_value())

    def connect_args(self) -> dict[str, Any]:
        """Host, port, database, user, password and options, *with* the password: for drivers
        only; never log it."""
        if self.url is None:
            args: dict[str, Any] = {
                "host": self.host, "port": self.port, "database": self.database, "user": self.user or "",
                "password": self.password.get_secret_value() if self.password else "",
            }
            options = dict(self.options)
        else:
            parts = self._parts()
            args = {
                "host": parts.hostname or "localhost", "port": parts.port or 3306,
                "database": unquote(parts.path.lstrip("/")), "user": unquote(parts.username or ""),
                "password": unquote(parts.password or ""),
            }
            options = {**dict(parse_qsl(parts.query)), **self.options}
        args["options"] = options
        return args

    def describe(self) -> str:
        """``mysql://host:3306/dbname`` — no user, no password."""
        args = self.connect_args()
        host = f"[{args['host']}]" if ":" in args["host"] else args["host"]
        return f"mysql://{host}:{args['port']}/{args['database']}"
