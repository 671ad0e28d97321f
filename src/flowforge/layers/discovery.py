"""Every table of a database connection as a bronze target (``tables: "*"``, ``include``/``exclude``).

The connector's own introspection says which tables there are (``list_tables``), their primary
keys and column types (``columns``). A table with an obvious update column — a timestamp named
like ``updated_at`` — loads incrementally on it; any other loads in full. The plan is made again
at each run, so a table created in the source later is picked up by the next run.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.connectors.base import ReadRequest
from flowforge.errors import ConfigError

if TYPE_CHECKING:
    from flowforge.connectors.base import ColumnInfo, Connector, TableInfo
    from flowforge.spec.jobs import IngestJob, IngestTable

# names of "when was this row last changed" columns, most telling first (compared without case,
# underscores and dashes)
UPDATE_COLUMNS = ("updatedat", "modifiedat", "lastmodified", "lastmodifiedat", "lastupdated", "lastupdatedat",
                  "lastupdate", "modifieddate", "updateddate", "lastmodifieddate", "updatedon", "modifiedon",
                  "datemodified", "dateupdated", "changedat", "lastchanged", "updatetime", "modifytime",
                  "modificationdate", "modifiedtime", "updatedtime", "rowupdatedat")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # a table name (spec.base.Identifier)


@dataclass(frozen=True)
class FoundTable:
    """One source table and how it will land."""

    source: str                 # as the connector reads it (schema.table where there is a schema)
    target: str
    keys: tuple[str, ...]       # the declared primary key, if any
    delta_column: str | None    # the update column it loads incrementally on; None: a full load
    listed: bool = False        # given in ``tables`` by hand (its own settings apply)

    @property
    def load(self) -> str:
        return f"incremental on {self.delta_column}" if self.delta_column else "full load"


def _squash(name: str) -> str:
    return re.sub(r"[_\-\s]", "", name.lower())


def update_column(columns: list[ColumnInfo]) -> str | None:
    """The obvious update column: a timestamp whose name says so (the earliest in ``UPDATE_COLUMNS``)."""
    import pyarrow as pa

    stamps = {_squash(c.name): c.name for c in columns if pa.types.is_timestamp(c.arrow_type)}
    return next((stamps[n] for n in UPDATE_COLUMNS if n in stamps), None)


def _name(part: str) -> str:
    return re.sub(r"\W+", "_", part).strip("_").lower()


def _matches(patterns: tuple[str, ...], info: TableInfo) -> bool:
    names = [info.name.lower()] + ([f"{info.schema}.{info.name}".lower()] if info.schema else [])
    return any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns for n in names)


def _qualified(info: TableInfo) -> str:
    return f"{info.schema}.{info.name}" if info.schema else info.name


def discover(job: IngestJob, connector: Connector) -> list[FoundTable]:
    """The tables ``job`` lands: those it lists, then every table ``include`` matches and ``exclude``
    does not, each with its target, key and delta column."""
    found = [FoundTable(t.table or t.files or t.query or t.procedure or "", t.target, (),
                        t.incremental.column if t.incremental else None, listed=True) for t in job.tables]
    if not job.include:
        return found
    if not connector.capabilities.tables:
        raise ConfigError(f"{connector.describe()} has no tables to list (job {job.name}: include).",
                          hint="List the tables to land in 'tables'.")
    listed = {(t.table or "").lower() for t in job.tables}
    targets = {f.target: f.source for f in found}
    for info in connector.list_tables():
        if not _matches(job.include, info) or (job.exclude and _matches(job.exclude, info)):
            continue
        source = _qualified(info)
        if info.name.lower() in listed or source.lower() in listed:
            continue
        target = job.target_template.format(table=_name(info.name), schema=_name(info.schema or ""))
        if not _IDENT.match(target):
            raise ConfigError(f"Job {job.name}: table {source} would land as '{target}', which is not a table name.",
                              hint="Change target_template, or exclude the table.")
        if target in targets:
            raise ConfigError(f"Job {job.name}: tables {targets[target]} and {source} would both land as '{target}'.",
                              hint="Put {schema} in target_template (\"bronze_{schema}_{table}\"), or exclude one.")
        targets[target] = source
        columns = connector.columns(ReadRequest(table=source))
        keys = tuple(c.name for c in columns if c.primary_key)
        found.append(FoundTable(source, target, keys, update_column(columns)))
    return found


def ingest_tables(job: IngestJob, found: list[FoundTable]) -> tuple[IngestTable, ...]:
    """The job's tables with the found ones as ingest tables (they take the job's ``on_schema_change``)."""
    from flowforge.spec.jobs import IngestTable

    made = tuple(IngestTable.model_validate({
        "table": f.source, "target": f.target, "on_schema_change": job.on_schema_change,
        **({"incremental": f.delta_column} if f.delta_column else {})}) for f in found if not f.listed)
    return job.tables + made


def describe(found: list[FoundTable]) -> list[str]:
    """One line per table, for the run log and ``flowforge validate``."""
    return [f"{f.source} → {f.target}: "
            + ("as listed" if f.listed else f"key {', '.join(f.keys) if f.keys else 'none declared'}, {f.load}")
            for f in found]
