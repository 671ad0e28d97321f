"""Config of the files connector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from flowforge.connectors.config import ConnectionConfig, register_config
from flowforge.connectors.files.options import (
    DEFAULT_MAX_LINE,
    ReadOptions,
    check_delimiter,
    check_encoding,
    check_quote,
)


@register_config("files")
class FilesConfig(ConnectionConfig):
    """A folder of CSV, newline-delimited JSON or Parquet files, on disk or in S3-compatible storage.

    ```yaml
    crm_files:
      type: files
      path: data
      format: csv
      columns: {lifetime_value: "decimal(12,2)"}
      patterns:
        "exports/*.asc": {delimiter: ";", encoding: latin-1, null_values: ["?"]}

    product_raw:
      type: files
      path: s3://cord-raw/product/raw
      format: json
      aws_endpoint: http://minio:9000
      aws_access_key_id: flowforge
      aws_secret_access_key: ${MINIO_SECRET}
      aws_allow_http: true
    ```

    Read options (``delimiter``, ``quote``, ``escape``, ``header``, ``encoding``, ``null_values``,
    ``null_values_replace``, ``columns``, ``infer_rows``, ``max_line_size``, ``single_column``) apply to every file;
    ``patterns`` sets them per file pattern, and an ingest table's ``read`` per table (see
    ``flowforge.connectors.files.options`` and the README's table of options).

    Credentials left out come from the ``AWS_*`` environment variables or the standard AWS
    chain; ``storage`` takes any other object_store key (``aws_session_token``, ``timeout``...).
    """

    type: Literal["files"] = "files"
    path: str
    format: Literal["csv", "parquet", "json"] = "csv"
    delimiter: str = ","
    quote: str = '"'
    escape: str = ""
    header: bool = True
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ()
    null_values_replace: bool = False
    columns: dict[str, str] = Field(default_factory=dict)
    infer_rows: int = Field(10_000, ge=1)
    max_line_size: int = Field(DEFAULT_MAX_LINE, ge=1024)
    single_column: bool = False
    patterns: dict[str, ReadOptions] = Field(default_factory=dict)
    aws_endpoint: str | None = None
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_allow_http: bool | None = None
    storage: dict[str, str | SecretStr] = Field(default_factory=dict)

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        return check_delimiter(value) or ","

    @field_validator("quote", "escape")
    @classmethod
    def _quote(cls, value: str) -> str:
        return check_quote(value) or ""

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        return check_encoding(value) or "utf-8"

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        return ReadOptions.model_validate({"columns": value}).columns or {}

    @field_validator("storage", mode="before")
    @classmethod
    def _storage_keys(cls, value: object) -> object:
        from flowforge.errors import FlowForgeError
        from flowforge.storage.options import SECRET_KEYS, normalize_options

        if not isinstance(value, dict):
            return value
        try:
            options = normalize_options(value, "storage")
        except FlowForgeError as exc:
            raise ValueError(exc.message) from None
        return {k: SecretStr(v) if k in SECRET_KEYS else v for k, v in options.items()}

    def storage_options(self) -> dict[str, str]:
        """The object_store options to reach ``path`` (secrets in clear: never log this)."""
        from flowforge.storage.options import normalize_options

        flat = {"aws_endpoint": self.aws_endpoint, "aws_region": self.aws_region,
                "aws_access_key_id": self.aws_access_key_id, "aws_secret_access_key": self.aws_secret_access_key,
                "aws_allow_http": self.aws_allow_http}
        return normalize_options({**self.storage, **{k: v for k, v in flat.items() if v is not None}})

    def describe(self) -> str:
        return f"{self.format} files in {self.path}"

    def local_path_fields(self) -> tuple[str, ...]:
        return () if "://" in self.path else ("path",)
