"""PostgreSQL connection config (pydantic and the standard library only, so parsing specs stays fast)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from flowforge.connectors.config import ConnectionConfig, register_config
from flowforge.connectors.sql.pool import DEFAULT_SIZE, POOL_SIZE_HELP


@register_config("postgres")
class PostgresConfig(ConnectionConfig):
    """A PostgreSQL database, given as a libpq URL *or* as separate fields.

    ```yaml
    connections:
      warehouse:
        type: postgres
        host: db1.internal
        database: shop
        user: etl
        password: ${PG_PASSWORD}
        schema: sales          # default schema for unqualified table names
        read_partitions: 2     # parallel range reads on an integer primary key
        pool_size: 2           # idle discovery connections kept for reuse (0: none)
    ```

    ``url: postgresql://etl:...@db1.internal:5432/shop?sslmode=require`` works too (a SQLAlchemy
    style ``postgresql+psycopg://`` prefix is accepted). ``options`` are extra libpq parameters
    such as ``application_name`` or ``connect_timeout``.
    """

    # A rejected URL must not be echoed back inside the validation error: it may hold a password.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    type: Literal["postgres"]
    url: SecretStr | None = None
    host: str = "localhost"
    port: int = 5432
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    sslmode: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    schema_: str = Field("public", alias="schema")
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for a connection.")
    read_partitions: int = Field(1, ge=1, le=16, description="Parallel range reads on an integer key.")
    pool_size: int = Field(DEFAULT_SIZE, ge=0, le=32, description=POOL_SIZE_HELP)

    @field_validator("url", mode="before")
    @classmethod
    def _strip_driver(cls, value: object) -> object:
        # SQLAlchemy URLs name a driver (postgresql+psycopg://); libpq does not accept that.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and "://" in text:
            scheme, rest = text.split("://", 1)
            if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
                return f"postgresql://{rest}"
            raise ValueError("url must start with postgresql:// (or postgres://)")
        return value

    @model_validator(mode="after")
    def _url_xor_database(self) -> PostgresConfig:
        if (self.url is None) == (self.database is None):
            raise ValueError("give either 'url' or 'database' (with host, port, user, password), not both")
        return self

    def libpq_url(self) -> str:
        """The connection URL *with* the password, for drivers only; never log it."""
        if self.url is not None:
            return self.url.get_secret_value()
        auth = quote(self.user or "", safe="")
        if self.password is not None:
            auth += ":" + quote(self.password.get_secret_value(), safe="")
        netloc = f"{auth}@" if auth else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"postgresql://{netloc}{host}:{self.port}/{quote(self.database or '', safe='')}"
        return f"{url}?sslmode={quote(self.sslmode)}" if self.sslmode else url

    def describe(self) -> str:
        """``postgresql://host:5432/dbname`` — no user, no password."""
        if self.url is None:
            return f"postgresql://{self.host}:{self.port}/{self.database}"
        parts = urlsplit(self.url.get_secret_value())
        try:
            host, port = parts.hostname or "localhost", parts.port or 5432
        except ValueError:  # a malformed port must not make describe() fail or leak the URL
            host, port = parts.hostname or "localhost", 5432
        database = unquote(parts.path.lstrip("/")) or "(default database)"
        return f"postgresql://{host}:{port}/{database}"
