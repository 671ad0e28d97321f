"""Job kinds. Each kind is a spec model registered by name; the workflow's job union is
built from this registry, and ``layers`` registers one executor per kind."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from flowforge.connectors.files.options import ReadOptions
from flowforge.quality.spec import Tests
from flowforge.spec.base import Identifier, SpecModel, SqlExpression, SqlType
from flowforge.spec.scd2 import Scd2Fields

JOB_KINDS: dict[str, type[JobSpec]] = {}
J = TypeVar("J", bound="type[JobSpec]")

AUDIT_COLUMNS = ("_batch_id", "_ingestion_time", "_source_system", "_source_file", "_file_modified_time")


def register_job_kind(kind: str) -> Callable[[J], J]:
    def deco(cls: J) -> J:
        JOB_KINDS[kind] = cls
        return cls

    return deco


class JobSpec(SpecModel):
    kind: str
    name: Identifier
    description: str = ""
    depends_on: tuple[Identifier, ...] = ()

    layer: ClassVar[str] = ""

    def outputs(self) -> tuple[str, ...]:
        raise NotImplementedError  # abstract; every registered kind overrides it

    def inputs(self) -> tuple[str, ...]:
        return ()


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


class Incremental(SpecModel):
    """Read only rows whose ``column`` is above the last committed watermark.

    ``lookback`` re-reads a window below the watermark on each run with new rows ("15m", "2h",
    "1d" for timestamps; a number for numeric columns), so a row committed late by a long
    transaction with an older cursor value is still picked up; silver deduplicates it.
    """

    column: str
    lookback: str | float | None = None

    @field_validator("lookback")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if isinstance(value, str) and not _DURATION.match(value):
            raise ValueError(f"lookback '{value}' is not a duration like '30s', '15m', '2h' or '1d'")
        return value

    def lookback_value(self) -> Any:
        """A ``timedelta`` for durations, the number itself otherwise."""
        if isinstance(self.lookback, str):
            m = _DURATION.match(self.lookback)
            assert m is not None
            return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        return self.lookback


SubMicrosecondMode = Literal["error", "truncate", "string"]
# what a change in the source's columns does to an existing table (see flowforge.layers.schema_drift)
SchemaChangePolicy = Literal["evolve", "fail", "ignore"]
WriteDisposition = Literal["append", "replace", "merge"]


class IngestTable(SpecModel):
    """One source table, query or file pattern landing in one bronze table.

    ``type_fallback: string`` reads a column whose type has no exact Arrow mapping as text.
    ``sub_microseconds`` says what happens to timestamps with digits below the microsecond
    (SQL Server's datetime2(7) and datetimeoffset(7), nanosecond Parquet timestamps), which a
    Delta timestamp cannot hold: ``error`` (the default) stops the job before anything is
    committed, naming the column, row and value; ``truncate`` drops those digits toward the
    earlier instant (never rounding up) and counts them in the run log; ``string`` lands every
    nanosecond timestamp column as ISO-8601 text with nine fraction digits (zoned ones in UTC,
    ending in ``Z``). Whole microseconds land unchanged under ``error`` and ``truncate``.

    ``on_schema_change`` (``evolve``, ``fail`` or ``ignore``) says what a change in the source's
    columns does to the bronze table (see ``flowforge.layers.schema_drift``); ``casts`` lands a
    column in a named type (``{amount: "DECIMAL(12,2)"}``), e.g. to keep the table's type when the
    source's changed.

    ```yaml
    - table: dbo.AuditTrail
      target: bronze_audit_trail
      incremental: changed_at
      sub_microseconds: truncate
    - files: "trades/*.parquet"
      target: bronze_trades
      sub_microseconds: string
    - files: "exports/accounts_*.asc"
      target: bronze_accounts
      read: {delimiter: ";", encoding: latin-1, columns: {balance: "decimal(14,2)"}}
    ```

    ``write_disposition`` (dlt's words) says how a load changes the bronze table: ``append`` adds
    the rows read; ``replace`` swaps the whole table for them in one Delta commit (an overwrite:
    earlier versions stay readable by time travel until vacuumed); ``merge`` upserts them on
    ``primary_key``. The default is ``replace`` for a table, query or procedure read without
    ``incremental`` (reading it twice must not double bronze) and ``append`` otherwise (an
    incremental read, or files, each read once).

    ```yaml
    - {table: branches, target: bronze_branches}                      # replace (whole table each run)
    - {table: orders, target: bronze_orders, incremental: updated_at} # append
    - {table: customers, target: bronze_customers, incremental: modified_date,
       write_disposition: merge, primary_key: [customer_id]}
    ```

    ``read`` sets a files connection's read options for this table only (see the README's
    table of options); a changed option reads the files already landed again.
    """

    table: str | None = None
    query: str | None = None
    procedure: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    files: str | None = None
    target: Identifier
    incremental: Incremental | None = None
    type_fallback: Literal["string"] | None = None
    sub_microseconds: SubMicrosecondMode = "error"
    batch_size: int = Field(100_000, ge=1, le=10_000_000)
    write_disposition: WriteDisposition | None = None
    primary_key: tuple[str, ...] = ()
    read: ReadOptions | None = None
    on_schema_change: SchemaChangePolicy = "evolve"
    casts: dict[str, str] = Field(default_factory=dict)
    tests: Tests = ()

    @field_validator("casts")
    @classmethod
    def _cast_types(cls, value: dict[str, str]) -> dict[str, str]:
        from flowforge.layers.schema_drift import arrow_type

        for column, type_ in value.items():
            try:
                arrow_type(type_)
            except ValueError as exc:
                raise ValueError(f"casts.{column}: {exc}") from None
        return value

    @field_validator("incremental", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"column": value} if isinstance(value, str) else value

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_key(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @property
    def disposition(self) -> WriteDisposition:
        """``write_disposition`` as given, else ``replace`` for a full read and ``append`` for an
        incremental one (files are read once each: incremental by file)."""
        if self.write_disposition is not None:
            return self.write_disposition
        return "append" if self.incremental is not None or self.files else "replace"

    @model_validator(mode="after")
    def _one_source(self) -> IngestTable:
        given = [k for k in ("table", "query", "procedure", "files") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of 'table', 'query', 'procedure' or 'files'")
        if self.params and not self.procedure:
            raise ValueError("'params' are the arguments of a 'procedure'")
        if self.write_disposition == "merge" and not self.primary_key:
            raise ValueError("write_disposition 'merge' needs 'primary_key' (the column(s) to upsert on)")
        if self.write_disposition == "replace" and self.incremental is not None:
            raise ValueError("write_disposition 'replace' reads the whole source on every run: remove "
                             "'incremental', or use 'append' or 'merge'")
        if self.read is not None and not self.files:
            raise ValueError("'read' sets how 'files' are read (delimiter, columns...); give 'files'")
        return self


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@register_job_kind("ingest")
class IngestJob(JobSpec):
    """Land source tables in bronze, append-only, with audit columns.

    ```yaml
    - name: ingest_core_banking
      kind: ingest
      connection: core_banking
      tables:
        - {table: customers, target: bronze_customers, incremental: modified_date}
    ```

    ``tables: "*"``, or ``include:``/``exclude:`` glob patterns (matched against ``table`` and
    ``schema.table``), land every matching table of a database connection. Each gets the bronze
    table ``target_template`` names (``{table}``, ``{schema}``); its primary key and an obvious
    update column (a timestamp named ``updated_at``, ``modified_at``, ``last_modified``...) are
    found in the source, and a table without such a column is loaded in full. Tables listed in
    ``tables`` keep their own settings. ``flowforge validate`` shows what was found.

    ```yaml
    - name: ingest_shop
      kind: ingest
      connection: shop
      tables: "*"
      exclude: ["*_audit", "tmp_*"]
      target_template: "bronze_{table}"
      on_schema_change: evolve
    ```
    """

    kind: Literal["ingest"]
    layer: ClassVar[str] = "bronze"
    connection: Identifier
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tables: tuple[IngestTable, ...] = Field((), validate_default=True)
    target_template: str = "bronze_{table}"
    on_schema_change: SchemaChangePolicy = "evolve"  # for the tables found by include

    @model_validator(mode="before")
    @classmethod
    def _all_tables(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tables") == "*":
            data = {**data, "tables": (), "include": data.get("include") or ("*",)}
        return data

    @field_validator("target_template")
    @classmethod
    def _template(cls, value: str) -> str:
        names = _PLACEHOLDER.findall(value)
        if "table" not in names or any(n not in ("table", "schema") for n in names):
            raise ValueError(f"target_template '{value}' must hold {{table}} and may hold {{schema}}, nothing else")
        return value

    @field_validator("tables")
    @classmethod
    def _some_tables(cls, value: tuple[IngestTable, ...], info: ValidationInfo) -> tuple[IngestTable, ...]:
        if not value and not info.data.get("include"):
            raise ValueError("needs at least one entry, or 'include' patterns (tables: \"*\" lands every table)")
        return value

    @model_validator(mode="after")
    def _narrowed(self) -> IngestJob:
        if self.exclude and not self.include:
            raise ValueError("'exclude' narrows 'include' (or tables: \"*\"); give one of those too")
        return self

    def outputs(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.tables)

    def may_produce(self, table: str) -> bool:
        """Whether a table found by ``include`` could land as ``table`` (for the job graph)."""
        if not self.include:
            return False
        pattern = "".join(".+" if part in ("{table}", "{schema}") else re.escape(part)
                          for part in re.split(r"(\{table\}|\{schema\})", self.target_template))
        return re.fullmatch(pattern, table) is not None


class SilverTable(Scd2Fields):
    """Clean one bronze table into a silver table (``strategy: scd2``: see ``flowforge.spec.scd2``)."""

    target: Identifier
    source: Identifier
    strategy: Literal["merge", "append", "scd2"] = "merge"
    keys: tuple[str, ...] = ()
    order_by: str | None = None
    columns: tuple[str, ...] | None = None
    casts: dict[str, SqlType] = Field(default_factory=dict)
    derived: dict[Identifier, SqlExpression] = Field(default_factory=dict)
    surrogate_key: Identifier | None = None
    on_schema_change: SchemaChangePolicy = "evolve"
    tests: Tests = ()

    @model_validator(mode="after")
    def _keys(self) -> SilverTable:
        if self.strategy == "merge" and not self.keys:
            raise ValueError("strategy 'merge' needs 'keys' (the business key to upsert on)")
        if self.surrogate_key and not self.keys:
            raise ValueError("'surrogate_key' is derived from 'keys'; give 'keys'")
        if self.strategy == "scd2" and "on_schema_change" in self.model_fields_set:
            raise ValueError("'on_schema_change' applies to strategies merge and append; an scd2 table takes "
                             "added columns and keeps its types (set the policy on the ingest table instead)")
        return self


@register_job_kind("silver")
class SilverJob(JobSpec):
    """Type, deduplicate and merge bronze rows into silver, processing only new bronze versions.

    ```yaml
    - name: build_silver
      kind: silver
      tables:
        - target: silver_customer_master
          source: bronze_customers
          keys: [customer_id]
          order_by: modified_date
          derived:
            full_name: "first_name || ' ' || last_name"
          surrogate_key: customer_sk
    ```
    """

    kind: Literal["silver"]
    layer: ClassVar[str] = "silver"
    tables: tuple[SilverTable, ...] = Field(min_length=1)

    def outputs(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.tables)

    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.source for t in self.tables))


class GoldTable(Scd2Fields):
    """A business table: SQL over silver (and other lakehouse tables), rebuilt each run, or with
    ``strategy: scd2`` kept as versions of ``keys`` (see ``flowforge.spec.scd2``)."""

    target: Identifier
    sql: str
    strategy: Literal["replace", "scd2"] = "replace"
    keys: tuple[str, ...] = ()
    surrogate_key: Identifier | None = None
    tests: Tests = ()

    @field_validator("sql")
    @classmethod
    def _parses(cls, value: str) -> str:
        from flowforge.engine.sandbox import check_query

        check_query(value, "sql")  # UnsafeSQL (a ValueError) names the parse error or the refused construct
        return value

    @property
    def references(self) -> tuple[str, ...]:
        from flowforge.engine.sandbox import check_query

        return check_query(self.sql, "sql")


@register_job_kind("gold")
class GoldJob(JobSpec):
    """Materialize SQL over silver as a gold Delta table (full rebuild).

    ```yaml
    - name: build_customer_360
      kind: gold
      tables:
        - target: gold_customer_360
          sql: SELECT customer_id, count(*) AS accounts FROM silver_accounts GROUP BY 1
    ```
    """

    kind: Literal["gold"]
    layer: ClassVar[str] = "gold"
    tables: tuple[GoldTable, ...] = Field(min_length=1)

    def outputs(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.tables)

    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for t in self.tables for r in t.references))


import flowforge.spec.cdc  # noqa: E402,F401  (registers the 'cdc' job kind)
from flowforge.spec import embed as _embed  # noqa: E402,F401  (registers the 'embed' job kind)
from flowforge.spec import export, publish  # noqa: E402,F401  (register the 'export' and 'publish' job kinds)
