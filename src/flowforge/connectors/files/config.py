"""Config of the files connector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flowforge.connectors.config import ConnectionConfig, register_config


@register_config("files")
class FilesConfig(ConnectionConfig):
    """A folder of files.

    ```yaml
    crm_files:
      type: files
      path: data
      format: csv
      columns: {lifetime_value: "decimal(12,2)"}
    ```
    """

    type: Literal["files"] = "files"
    path: str
    format: Literal["csv", "parquet"] = "csv"
    delimiter: str = Field(",", min_length=1, max_length=1)
    header: bool = True
    encoding: str = "utf8"
    null_values: tuple[str, ...] = ("", "NULL", "null")
    columns: dict[str, str] = Field(default_factory=dict)
    infer_rows: int = Field(10_000, ge=1)

    def describe(self) -> str:
        return f"{self.format} files in {self.path}"
