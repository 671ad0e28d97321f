"""The catalog as people read it: readable SQL type names, locations relative to the lakehouse
root, table descriptions and column comments (editors write them, every user reads them), and a
search across table names, column names and that text.

Descriptions live in the metadata store, not in Delta table properties: writing them there needs
no write access to the lakehouse from the web server, makes no new table version, cannot collide
with a pipeline's commit, survives a full refresh that recreates the table, and is audited like
every other change.

Example::

    ctx.catalog.describe("gold_customer_360", "One row per customer", {"total_balance": "sum of accounts"})
    ctx.catalog.search("balance")   # tables and columns whose name or text mention it
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from flowforge.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.core.context import Context
    from flowforge.metadata.console import ConsoleStore
    from flowforge.storage.summaries import TableSummary

MAX_TEXT: Final = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str  # a SQL type name: BIGINT, DECIMAL(15,2), TIMESTAMP, VARCHAR...
    nullable: bool
    comment: str = ""


@dataclass(frozen=True)
class CatalogTable:
    name: str
    layer: str
    location: str  # relative to the lakehouse root (never a server path)
    rows: int
    version: int
    description: str = ""
    columns: tuple[CatalogColumn, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SearchHit:
    table: str
    layer: str
    column: str | None  # None: the table itself matched
    type: str | None
    matched: str  # "name", "description" or "comment"
    text: str


def sql_type(dtype: Any) -> str:
    """A SQL-ish name for an Arrow type (pyarrow or arro3): BIGINT, DECIMAL(15,2), TIMESTAMP, VARCHAR..."""
    import pyarrow as pa

    if not isinstance(dtype, pa.DataType):
        try:
            dtype = pa.field(dtype).type if hasattr(dtype, "__arrow_c_schema__") else dtype
        except (TypeError, ValueError):
            return str(dtype)
    if not isinstance(dtype, pa.DataType):
        return str(dtype)
    return _arrow_sql_type(dtype)


@functools.lru_cache(maxsize=1024)
def _arrow_sql_type(dtype: pa.DataType) -> str:
    """``sql_type`` of a pyarrow type (a catalog page asks it for every column of every table)."""
    import pyarrow as pa

    t = pa.types
    simple = [(t.is_boolean, "BOOLEAN"), (t.is_int8, "TINYINT"), (t.is_int16, "SMALLINT"), (t.is_int32, "INTEGER"),
              (t.is_int64, "BIGINT"), (t.is_uint8, "UTINYINT"), (t.is_uint16, "USMALLINT"),
              (t.is_uint32, "UINTEGER"), (t.is_uint64, "UBIGINT"), (t.is_float16, "HALF"), (t.is_float32, "REAL"),
              (t.is_float64, "DOUBLE"), (t.is_date, "DATE"), (t.is_time, "TIME"), (t.is_duration, "INTERVAL"),
              (t.is_null, "NULL")]
    for check, name in simple:
        if check(dtype):
            return name
    if t.is_string(dtype) or t.is_large_string(dtype) or _is(dtype, "is_string_view"):
        return "VARCHAR"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype) or _is(dtype, "is_binary_view"):
        return "BLOB"
    if t.is_decimal(dtype):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if t.is_timestamp(dtype):
        return "TIMESTAMP WITH TIME ZONE" if dtype.tz else "TIMESTAMP"
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype) or _is(dtype, "is_list_view"):
        return f"{sql_type(dtype.value_type)}[]"
    if t.is_map(dtype):
        return f"MAP({sql_type(dtype.key_type)}, {sql_type(dtype.item_type)})"
    if t.is_struct(dtype):
        return "STRUCT(" + ", ".join(f"{f.name} {sql_type(f.type)}" for f in dtype) + ")"
    if t.is_dictionary(dtype):
        return sql_type(dtype.value_type)
    return str(dtype).upper()


def _is(dtype: pa.DataType, check: str) -> bool:
    import pyarrow as pa

    fn = getattr(pa.types, check, None)
    return bool(fn(dtype)) if fn else False


def relative_location(root: str, location: str, project_dir: str | None = None) -> str:
    """Where a table lives, as a user should see it: relative to the lakehouse root; a table placed
    elsewhere shows its object-store URL or its path relative to the project, never a server path."""
    base = root.rstrip("/")
    if location.startswith(base + "/"):
        return location[len(base) + 1:]
    if "://" in location and not location.startswith("file://"):
        return location
    path = location.removeprefix("file://")
    if project_dir and path.startswith(project_dir.rstrip("/") + "/"):
        return path[len(project_dir.rstrip("/")) + 1:]
    return ".../" + "/".join(PurePosixPath(path).parts[-2:])


def check_text(text: str, what: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT or _CONTROL.search(text):
        raise ConfigError(f"The {what} is too long or holds control characters.",
                          hint=f"Write plain text of at most {MAX_TEXT} characters.")
    return text


class CatalogService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def _store(self) -> ConsoleStore:
        from flowforge.metadata.console import ConsoleStore

        return ConsoleStore(self.ctx.metadata)

    def tables(self, layer: str | None = None) -> list[CatalogTable]:
        """Every lakehouse table with readable types, relative location, description and comments."""
        from flowforge.storage.summaries import table_summaries

        self.ctx.require("viewer")
        docs = self._docs()
        return [self._entry(lay, name, summary, docs.get(name, {}))
                for lay, name, summary in table_summaries(self.ctx.store, layer)]

    def table(self, name: str) -> CatalogTable:
        from flowforge.storage.delta import LAYERS
        from flowforge.storage.summaries import table_summary

        self.ctx.require("viewer")
        for layer in LAYERS:
            summary = table_summary(self.ctx.store, layer, name)
            if summary is not None:
                return self._entry(layer, name, summary, self._docs(name).get(name, {}))
        raise NotFoundError(f"Table '{name}' is not in the lakehouse.", hint="See the catalog for its tables.")

    def _entry(self, layer: str, name: str, summary: TableSummary, docs: dict[str, str]) -> CatalogTable:
        cols = tuple(CatalogColumn(f.name, sql_type(f.type), f.nullable, docs.get(f.name, "")) for f in summary.schema)
        return CatalogTable(name, layer, self.location(layer, name), summary.rows, summary.version,
                            docs.get("", ""), cols)

    def location(self, layer: str, name: str) -> str:
        settings = self.ctx.settings
        return relative_location(self.ctx.store.root, self.ctx.store.location(layer, name), str(settings.project_dir))

    def docs(self, name: str) -> tuple[str, dict[str, str]]:
        """(description, {column: comment}) of a table."""
        self.ctx.require("viewer")
        mine = self._docs(name).get(name, {})
        return mine.get("", ""), {k: v for k, v in mine.items() if k}

    def describe(self, name: str, description: str | None = None,
                 comments: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """Set a table's description and/or column comments (editors); empty text removes one."""
        self.ctx.require("editor")
        found = self.ctx.store.find(name)
        if found is None:
            raise NotFoundError(f"Table '{name}' is not in the lakehouse.", hint="See the catalog for its tables.")
        columns = {f.name for f in found[1].schema().to_arrow()}  # type: ignore[attr-defined]
        for column in comments or {}:
            if column not in columns:
                raise NotFoundError(f"Table '{name}' has no column '{column[:80]}'.",
                                    hint=f"Columns: {', '.join(sorted(columns))}.")
        if description is not None:
            self._store.set_doc(name, "", check_text(description, "description"), self.ctx.actor)
        for column, text in (comments or {}).items():
            self._store.set_doc(name, column, check_text(text, f"comment of {column}"), self.ctx.actor)
        return self.docs(name)

    def search(self, text: str, limit: int = 200) -> list[SearchHit]:
        """Tables and columns whose name, description or comment contains ``text`` (any case)."""
        self.ctx.require("viewer")
        needle = text.strip().lower()
        if not needle:
            return []
        hits: list[SearchHit] = []
        for table in self.tables():
            if needle in table.name.lower():
                hits.append(SearchHit(table.name, table.layer, None, None, "name", table.name))
            elif needle in table.description.lower():
                hits.append(SearchHit(table.name, table.layer, None, None, "description", table.description))
            for col in table.columns:
                if needle in col.name.lower():
                    hits.append(SearchHit(table.name, table.layer, col.name, col.type, "name", col.name))
                elif needle in col.comment.lower():
                    hits.append(SearchHit(table.name, table.layer, col.name, col.type, "comment", col.comment))
        return hits[:limit]

    def _docs(self, name: str | None = None) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for doc in self._store.docs(name):
            out.setdefault(doc.table_name, {})[doc.column_name] = doc.text
        return out
