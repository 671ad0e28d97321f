"""Config of the SQL Server CDC-tables source (pydantic and the standard library only)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from flowforge.connectors.config import register_config
from flowforge.connectors.sql.sqlserver.config import SqlServerConfig

_INSTANCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


@register_config("sqlserver_cdc")
class SqlServerCdcConfig(SqlServerConfig):
    """A SQL Server database whose tables have CDC enabled (``sys.sp_cdc_enable_table``).

    ```yaml
    connections:
      concord_cdc:
        type: sqlserver_cdc
        host: db1.corp.local
        database: ConcordDb
        user: cdc_reader            # db_owner, or a member of the capture instance's role
        password: ${CONCORD_PASSWORD}
        tables: [dbo.Product]
        capture_instances: {dbo.Product: dbo_Product}   # default: <schema>_<table>
        snapshot: true
    ```
    """

    type: Literal["sqlserver_cdc"]  # type: ignore[assignment]
    tables: tuple[str, ...] = Field(..., min_length=1, description="Captured tables, schema-qualified.")
    capture_instances: dict[str, str] = Field(default_factory=dict,
                                              description="table → capture instance (default schema_table).")
    snapshot: bool = Field(True, description="Read the current rows before the change tables.")
    snapshot_isolation: bool = Field(False, description="Read the snapshot in SNAPSHOT isolation "
                                     "(needs ALLOW_SNAPSHOT_ISOLATION ON).")

    @field_validator("capture_instances")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            if not _INSTANCE.match(name):
                raise ValueError(f"capture instance {name!r} is not a valid identifier")
        return value

    def capture_instance(self, schema: str, table: str) -> str:
        name = (self.capture_instances.get(f"{schema}.{table}") or self.capture_instances.get(table)
                or f"{schema}_{table}")
        if not _INSTANCE.match(name):
            raise ValueError(f"capture instance {name!r} is not a valid identifier; set capture_instances")
        return name
