"""Columns added to a source table while it is captured, and columns whose type widens.

``ALTER TABLE t ADD COLUMN rate numeric(10,3) DEFAULT 1.25`` changes every existing row (they
now read 1.250) without a single change event: PostgreSQL and InnoDB store the default once in
the catalog. The source connectors say so in the events' ``_schema`` (``{"type": ...,
"default": <value>}``, from ``pg_attribute.attmissingval``, the MySQL column default, or the
Debezium Connect schema), and silver applies it:

* events of this batch from before the column existed (their row image lacks it) get the value;
* when the column is new to the silver table, rows last changed before it appeared get the value
  in a commit of their own before the batch is merged (idempotent: a crash and rerun finds the
  column present and the rows already filled).

When the source cannot tell what older rows hold (a volatile default such as ``random()``
rewrote the table), the column is flagged on the silver table (``flowforge.cdc_flags``): every
run says so until ``flowforge cdc reset`` takes a new snapshot. Silver never differs silently.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.layers.base import JobContext
    from flowforge.layers.cdc_sql import Plan
    from flowforge.spec.cdc import ApplyTable

FLAGS = "cdc_flags"


def _path(column: str) -> str:
    return "'$.\"" + column.replace("'", "''").replace('"', '\\"') + "\"'"


def _typed_value(plan: Plan, column: str) -> str:
    from flowforge.layers.cdc_sql import family

    text = "json_extract_string(CAST(? AS JSON), '$')"
    return f"from_base64({text})" if family(plan.types[column]) == "binary" else f"CAST({text} AS {plan.types[column]})"


def first_position(engine: DuckDBEngine, events: str, column: str) -> str | None:
    """The first source position of this batch whose row image carries ``column``."""
    row = engine.rows(f"SELECT min(_source_position) FROM {events} "
                      f"WHERE json_exists(coalesce(_after, _before, '{{}}'), {_path(column)})")
    return None if not row or row[0][0] is None else str(row[0][0])


def fill_typed(engine: DuckDBEngine, plan: Plan, events: str) -> int:
    """Give events from before a column existed the value its default gave their rows."""
    if not plan.defaults:
        return 0
    # most declared defaults belong to columns every event carries: one query finds the others
    columns = list(plan.defaults)
    counts = engine.rows("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE _op IN ('c', 'r', 'u') AND NOT json_exists(coalesce(_after, '{{}}'), {_path(c)}))"
        for c in columns) + f" FROM {events}")[0]
    filled = 0
    for column, missing in zip(columns, counts, strict=True):
        if not missing:
            continue
        value = plan.defaults[column]
        first = first_position(engine, events, column)
        before = "" if first is None else f" AND _source_position < '{first.replace(chr(39), chr(39) * 2)}'"
        ords = (f"SELECT _ord FROM {events} WHERE _op IN ('c', 'r', 'u') "
                f"AND NOT json_exists(coalesce(_after, '{{}}'), {_path(column)}){before}")
        n = engine.con.execute(f"UPDATE typed SET {quote(column)} = {_typed_value(plan, column)} "
                               f"WHERE _ord IN ({ords})", [json.dumps(value)]).fetchone()
        filled += int(n[0]) if n else 0
    return filled


def backfill_silver(ctx: JobContext, spec: ApplyTable, plan: Plan, engine: DuckDBEngine, silver: DeltaTable,
                    existing: pa.Schema, events: str) -> list[str]:
    """Set new columns with a declared default on silver rows older than the column; one commit
    per column. Returns notes for the run log."""
    from flowforge.storage.delta import _storage_errors

    notes = []
    keys = [quote(k) for k in plan.keys]
    for column, value in plan.defaults.items():
        if column in existing.names:
            continue
        first = first_position(engine, events, column)
        engine.register_delta("__silver_fill", silver)
        where = [] if first is None else [f"_position < '{first.replace(chr(39), chr(39) * 2)}'"]
        if spec.strategy == "scd2":
            where.append("is_current")
        sql = (f"SELECT {', '.join(keys)}, {_typed_value(plan, column)} AS {quote(column)} FROM __silver_fill"
               + (f" WHERE {' AND '.join(where)}" if where else ""))
        source = engine.con.sql(sql, params=[json.dumps(value)]).to_arrow_table()
        if not source.num_rows:
            continue
        match = " AND ".join(f"t.{k} = s.{k}" for k in keys) + (" AND t.is_current" if spec.strategy == "scd2" else "")
        with _storage_errors("backfill", ctx.store.location("silver", spec.target)):
            metrics = (silver.merge(source, predicate=match, source_alias="s", target_alias="t", merge_schema=True)
                       .when_matched_update({quote(column): f"s.{quote(column)}"}).execute())
        silver.update_incremental()
        notes.append(f"column {column} was added in the source with a default: {metrics['num_target_rows_updated']} "
                     f"existing row(s) set to {value!r}")
    return notes


def flags(previous: Any, plan: Plan, existing: pa.Schema | None, reset: bool) -> dict[str, str]:
    """The table's flagged columns after this batch (a reset's new snapshot clears them)."""
    current: dict[str, str] = {} if reset or not isinstance(previous, dict) else dict(previous)
    if existing is not None:
        for column in plan.unknown_defaults:
            if column not in existing.names:
                current[column] = ("added in the source with a default FlowForge cannot read for existing rows "
                                   "(a volatile default or a table rewrite); rows not changed since hold NULL here")
    return current


def flag_notes(spec: ApplyTable, flagged: dict[str, str], workflow: str, job: str) -> list[str]:
    return [f"WARNING {spec.target}.{column}: {why}. Take a new snapshot with 'flowforge cdc reset {workflow} {job}'."
            for column, why in sorted(flagged.items())]


def widen(ctx: JobContext, spec: ApplyTable, plan: Plan, silver: DeltaTable, progress: dict[str, Any]) -> str:
    """Rewrite the silver table with the columns of ``plan.widen`` in their wider types (one commit
    carrying the table's current progress, so a crash before the merge only repeats the batch)."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        engine.register_delta("__silver_old", silver)
        casts = ", ".join(f"CAST({quote(c)} AS {plan.types[c]}) AS {quote(c)}" for c in plan.widen)
        reader = engine.reader(f"SELECT * REPLACE ({casts}) FROM __silver_old", f"silver table {spec.target}")
        ctx.store.overwrite("silver", spec.target, reader, progress)
    finally:
        engine.close()
    return f"column(s) {', '.join(plan.widen)} widened in the source: silver rewritten with " + ", ".join(
        f"{c} {plan.types[c]}" for c in plan.widen)
