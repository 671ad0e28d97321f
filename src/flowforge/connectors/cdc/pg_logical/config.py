"""Config of the PostgreSQL logical-decoding CDC source (pydantic and the standard library only)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from flowforge.connectors.config import register_config
from flowforge.connectors.sql.postgres.config import PostgresConfig

_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")


@register_config("pg_logical")
class PgLogicalConfig(PostgresConfig):
    """A PostgreSQL database read through a logical replication slot (server needs ``wal_level=logical``).

    ```yaml
    connections:
      shop_cdc:
        type: pg_logical
        host: db1.internal
        database: shop
        user: replicator          # needs REPLICATION (or superuser) and SELECT on the tables
        password: ${PG_PASSWORD}
        slot: flowforge_shop      # created on the first run, one slot per CDC job
        tables: [public.orders, public.customers]
        snapshot: true            # read the tables' current rows first (op 'r')
        idle_advance_bytes: 16777216   # while none of the tables changes, release WAL past this much
    ```

    The publication ``flowforge_<slot>`` is created for ``tables`` unless ``publication`` names an
    existing one.
    """

    type: Literal["pg_logical"]  # type: ignore[assignment]
    slot: str = Field("flowforge", description="Replication slot name (lower case, digits, _).")
    tables: tuple[str, ...] = Field(..., min_length=1, description="Tables to capture, schema-qualified.")
    publication: str | None = Field(None, description="An existing publication; default flowforge_<slot>.")
    snapshot: bool = Field(True, description="Read the current rows before streaming changes.")
    idle_advance_bytes: int = Field(
        16 << 20, ge=0, description="WAL (bytes) the slot may retain while no captured table changes before "
                                    "the position is committed without events, so the server can recycle it.")
    batch_bytes: int = Field(64 << 20, ge=1 << 20, description="Row images (bytes) per decoded batch at most.")

    @field_validator("slot")
    @classmethod
    def _slot_name(cls, value: str) -> str:
        if not _SLOT.match(value):
            raise ValueError("slot names use lower-case letters, digits and '_' (at most 63)")
        return value

    @property
    def publication_name(self) -> str:
        return self.publication or f"flowforge_{self.slot}"

    def describe(self) -> str:
        return f"{super().describe()} slot {self.slot}"
