"""SQLite connection config (pydantic only, so parsing specs stays fast)."""

from __future__ import annotations

from typing import Literal

from flowforge.connectors.config import ConnectionConfig, register_config


@register_config("sqlite")
class SqliteConfig(ConnectionConfig):
    """A local SQLite database file, opened read-only.

    ```yaml
    connections:
      shop:
        type: sqlite
        path: data/shop.db
    ```

    ``path`` is used as given; the caller resolves relative paths against the project.
    """

    type: Literal["sqlite"]
    path: str

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    def local_path_fields(self) -> tuple[str, ...]:
        return ("path",)
