"""Config of the MySQL/MariaDB binlog CDC source (pydantic and the standard library only)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr

from flowforge.connectors.config import ConnectionConfig, register_config


@register_config("mysql_binlog")
class MysqlBinlogConfig(ConnectionConfig):
    """A MySQL or MariaDB server read through its row-based binlog.

    The server needs ``log_bin``, ``binlog_format=ROW``, ``binlog_row_image=FULL`` and
    ``binlog_row_metadata=FULL`` (column names travel in the binlog). The user needs
    ``REPLICATION SLAVE``, ``REPLICATION CLIENT`` and ``SELECT`` (and ``RELOAD`` on MySQL, for the
    brief ``FLUSH TABLES WITH READ LOCK`` of the first snapshot; MariaDB needs no lock).

    ```yaml
    connections:
      shop_binlog:
        type: mysql_binlog
        host: db1.internal
        user: cdc
        password: ${MYSQL_PASSWORD}
        tables: [shop.orders, shop.customers]
        server_id: 65001            # unique among the server's replicas
    ```
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["mysql_binlog"]
    host: str = "localhost"
    port: int = Field(3306, ge=1, le=65535)
    user: str = "root"
    password: SecretStr | None = None
    tables: tuple[str, ...] = Field(..., min_length=1, description="database.table names to capture.")
    server_id: int = Field(65001, ge=1, le=4294967295, description="Replica id this reader announces.")
    snapshot: bool = Field(True, description="Read the current rows before the binlog.")
    idle_advance_bytes: int = Field(
        4 << 20, ge=0, description="Binlog (bytes) written by other databases before the position is committed "
                                   "without events, so later reads start past it.")
    batch_bytes: int = Field(64 << 20, ge=1 << 20, description="Row images (bytes) per decoded batch at most.")
    connect_timeout: int = Field(10, ge=1)

    def describe(self) -> str:
        return f"mysql://{self.host}:{self.port}"

    def settings(self) -> dict[str, object]:
        """PyMySQL connection settings *with* the password; for drivers only."""
        return {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password.get_secret_value() if self.password else "",
                "connect_timeout": self.connect_timeout, "charset": "utf8mb4"}
