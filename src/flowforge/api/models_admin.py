"""Bodies and answers of the connections, account, catalog-docs and SQL-console routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ConnectionUpdate(BaseModel):
    """A stored connection saved again. A secret left out keeps its stored value while the
    address (kind, host, port, path) stays the same; a changed address needs it again."""

    type: str
    options: dict[str, Any] = Field(default_factory=dict)
    password: SecretStr | None = None
    url: SecretStr | None = None
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        out = {**self.options, "type": self.type}
        for key, value in (("password", self.password), ("url", self.url), *self.secrets.items()):
            if value is not None and value.get_secret_value():
                out[key] = value.get_secret_value()
        return out


class ConnectionUse(BaseModel):
    workflow: str
    job: str


class TableDocs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=4000)
    columns: dict[str, str] = Field(default_factory=dict, description="column: comment (empty text removes it)")


class CatalogHit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    table: str
    layer: str
    column: str | None
    type: str | None
    matched: str
    text: str


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sql: str
    ran_at: datetime
    rows: int | None
    error: str | None
