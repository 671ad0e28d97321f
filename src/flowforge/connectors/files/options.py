"""Read options of files connections, layered: connection → ``patterns`` of the connection
(each pattern matching the file, in order) → ``read`` of the ingest table.

Every file is read with one resolved set (:class:`FileRead`). Its :func:`fingerprint` is
recorded per file with what was read, so a changed option (a delimiter, a column type, an
extra null token) makes the files it concerns be read again into a fresh bronze version.

```yaml
bank_exports:
  type: files
  path: data/bank
  delimiter: ";"
  null_values: ["?"]               # added to "", NULL and null
  patterns:
    "legacy/*.asc": {encoding: latin1, header: false}
    "orders*.csv": {delimiter: ",", columns: {amount: "decimal(12,2)"}}
```
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from flowforge.connectors.files.config import FilesConfig

DEFAULT_NULLS: tuple[str, ...] = ("", "NULL", "null")
DEFAULT_MAX_LINE = 4 << 20
TAB_NAMES = {"tab", "\\t", "\t"}


def check_delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() in TAB_NAMES:
        return "\t"
    if len(value) != 1 or value in "\r\n\"":
        raise ValueError(f"delimiter {value!r} must be one character (not a quote or a line break); "
                         "write 'tab' for a tab")
    return value


def check_quote(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() in ("", "none"):
        return ""
    if len(value) != 1 or value in "\r\n":
        raise ValueError(f"quote {value!r} must be one character, or 'none' to read quotes as text")
    return value


def check_encoding(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}; use for example utf-8, latin-1, cp1252 or utf-16") \
            from None


class ReadOptions(BaseModel):
    """Options that may be set per file pattern (connection ``patterns``) or per ingest table
    (``read``); a field left out keeps the connection's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str | None = None
    quote: str | None = None
    escape: str | None = None
    header: bool | None = None
    encoding: str | None = None
    null_values: tuple[str, ...] | None = None
    null_values_replace: bool | None = None
    columns: dict[str, str] | None = None
    infer_rows: int | None = Field(None, ge=1)
    max_line_size: int | None = Field(None, ge=1024)
    single_column: bool | None = None

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        return check_delimiter(value)

    @field_validator("quote", "escape")
    @classmethod
    def _quote(cls, value: str | None) -> str | None:
        return check_quote(value)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        return check_encoding(value)

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        from flowforge.connectors.files.types import arrow_type

        for name, type_ in (value or {}).items():
            try:
                arrow_type(type_)
            except ValueError as exc:
                raise ValueError(f"column '{name}': {exc}") from None
        return value


@dataclass(frozen=True)
class FileRead:
    """The options one file is read with (all resolved)."""

    format: str
    delimiter: str
    quote: str  # "" reads quotes as text
    escape: str
    header: bool
    encoding: str
    null_values: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    infer_rows: int = 10_000
    max_line_size: int = DEFAULT_MAX_LINE
    single_column: bool = False  # the file really has one column: no refusal when another delimiter splits it
    # declared types a file must have (from a pattern or the table); the connection's own
    # 'columns' apply to the files that have them, so one connection serves different files
    required: tuple[str, ...] = ()
    sources: tuple[str, ...] = ("connection",)  # where the options came from, for messages

    def shaping(self) -> dict[str, Any]:
        """What decides the rows a file reads as (not the limits or where the values came from)."""
        out = asdict(self)
        for key in ("max_line_size", "single_column", "required", "sources"):
            out.pop(key)
        out["null_values"] = sorted(self.null_values)
        if self.format != "csv":  # json and parquet read no CSV dialect
            for key in ("delimiter", "quote", "escape", "header", "null_values"):
                out.pop(key)
        if self.format == "parquet":
            out.pop("encoding")
            out.pop("infer_rows")
        return out


def fingerprint(read: FileRead) -> str:
    text = json.dumps(read.shaping(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changed_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """``delimiter ',' → ';'`` for the options that differ (or 'read options' when the old ones
    are not known)."""
    if not old:
        return "read options"
    parts = [f"{k} {_show(old.get(k))} → {_show(new.get(k))}" for k in sorted(set(old) | set(new))
             if old.get(k) != new.get(k)]
    return ", ".join(parts) or "read options"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value) if value is not None else "unset"


def resolve(config: FilesConfig, relative: str, table: ReadOptions | None) -> FileRead:
    """The options for the file at ``relative`` (its path inside the connection's folder)."""
    from flowforge.connectors.files.folders import glob_regex

    explicit = config.model_fields_set
    delimiter = config.delimiter
    if "delimiter" not in explicit and relative.lower().endswith(".tsv"):
        delimiter = "\t"
    values: dict[str, Any] = {
        "delimiter": delimiter, "quote": config.quote, "escape": config.escape, "header": config.header,
        "encoding": config.encoding, "infer_rows": config.infer_rows, "max_line_size": config.max_line_size,
        "single_column": config.single_column,
    }
    nulls = list(config.null_values)
    replace = config.null_values_replace
    columns = dict(config.columns)
    required: list[str] = []
    sources = ["connection"]
    layers: list[tuple[str, ReadOptions]] = [
        (f"pattern '{p}'", o) for p, o in config.patterns.items()
        if glob_regex(p).fullmatch(relative) or ("/" not in p and glob_regex(p).fullmatch(relative.rsplit("/")[-1]))]
    if table is not None:
        layers.append(("the job's 'read'", table))
    for where, opts in layers:
        given = opts.model_dump(exclude_none=True)
        if not given:
            continue
        sources.append(where)
        for key in values:
            if key in given:
                values[key] = given[key]
        if "null_values_replace" in given:
            replace = given["null_values_replace"]
        if "null_values" in given:
            nulls = list(given["null_values"])
        if "columns" in given:
            columns.update(given["columns"])
            required.extend(given["columns"])
    marks = {"delimiter": values["delimiter"], "quote": values["quote"], "escape": values["escape"]}
    clash = [k for k, v in marks.items() if v and list(marks.values()).count(v) > 1]
    if clash:
        from flowforge.errors import ConfigError

        raise ConfigError(f"files connection: {relative}: {' and '.join(clash)} are the same character "
                          f"{marks[clash[0]]!r} (from {', '.join(sources)})",
                          hint="Give the delimiter, the quote and the escape character different values.")
    effective = tuple(dict.fromkeys(nulls if replace else [*DEFAULT_NULLS, *nulls]))
    return FileRead(format=config.format, null_values=effective, columns=columns, required=tuple(required),
                    sources=tuple(sources), **values)
