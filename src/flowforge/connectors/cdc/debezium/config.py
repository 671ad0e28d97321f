"""Config of the Debezium (JSON files) connector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flowforge.connectors.config import ConnectionConfig, register_config


@register_config("debezium")
class DebeziumConfig(ConnectionConfig):
    """Debezium JSON events in JSONL files (one event per line), with or without the schema
    envelope, in a local folder or under an ``s3://`` prefix (the seed's
    ``product/raw/batch=YYYYMMDDTHHMMSSZ.jsonl`` layout).

    ```yaml
    product_events:
      type: debezium
      path: s3://cord-raw/product/raw
      storage_options: {aws_endpoint: "http://127.0.0.1:9000", aws_allow_http: "true"}
    ```
    """

    type: Literal["debezium"] = "debezium"
    path: str
    storage_options: dict[str, str] = Field(default_factory=dict)
    batch_size: int = Field(50_000, ge=1)

    def describe(self) -> str:
        return f"Debezium JSON files in {self.path}"

    def local_path_fields(self) -> tuple[str, ...]:
        return () if "://" in self.path else ("path",)
