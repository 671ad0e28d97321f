"""Applying ``on_schema_change`` in the bronze and silver layers (the rules are in
``flowforge.layers.schema_drift``): the dropped marks and schema events kept on a Delta table as
table properties, the rewrite that widens a table, and the calls the two layers make around
their commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from flowforge.errors import SourceSchemaError
from flowforge.layers.schema_drift import (
    CHANGES,
    DROPPED,
    REWRITE,
    Change,
    Drift,
    Policy,
    arrow_type,
    conform,
    conform_stream,
    refusal,
    resolve,
    sql_name,
)
from flowforge.storage.delta import data_files

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.layers.base import JobContext

T = TypeVar("T")
_KEEP_EVENTS = 50


def dropped_columns(table: Any) -> dict[str, dict[str, Any]]:
    """The columns a Delta table has marked dropped (column → when, which run, a guessed new name)."""
    if table is None:
        return {}
    raw = table.metadata().configuration.get(DROPPED)
    found: dict[str, dict[str, Any]] = json.loads(raw) if raw else {}
    return found


def schema_events(table: Any) -> list[dict[str, Any]]:
    """The newest schema changes recorded on a Delta table, oldest first."""
    if table is None:
        return []
    raw = table.metadata().configuration.get(CHANGES)
    found: list[dict[str, Any]] = json.loads(raw) if raw else []
    return found


def record(ctx: JobContext, drift: Drift) -> None:
    """Log the changes in the run's log and keep them (and the dropped marks) on the table."""
    if drift.none:
        return
    for change in drift.changes:
        what = {"added": "added to the table", "dropped": "kept, marked dropped; new rows hold NULL",
                "restored": "no longer marked dropped", "widened": "table widened, every value kept",
                "as_text": "values land as their text"}.get(change.kind, "")
        ctx.note(f"{drift.table}: schema change: {change.describe()}" + (f" — {what}" if what else ""))
    table = ctx.store.open(drift.layer, drift.table)
    if table is None:
        return
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    events = schema_events(table) + [
        {"at": now, "run_id": ctx.run_id, "column": c.column, "change": c.kind,
         "old": sql_name(c.old) if c.old is not None else None, "new": sql_name(c.new) if c.new is not None else None,
         **({"renamed_to": c.renamed_to} if c.renamed_to else {})} for c in drift.changes]
    props = {CHANGES: json.dumps(events[-_KEEP_EVENTS:], sort_keys=True),
             DROPPED: json.dumps(drift.dropped, sort_keys=True)}
    from flowforge.storage.delta import _storage_errors  # a commit conflict is transient: the runner retries

    loc = ctx.store.location(drift.layer, drift.table)
    with _storage_errors("record the schema change of", loc, ctx.store.write_options(loc)):
        table.alter.set_table_properties(props, raise_if_not_exists=False)


def rewrite(ctx: JobContext, drift: Drift) -> None:
    """Cast every row of the table to the widened types, in one commit that adds no rows (consumers
    reading new versions skip it: see ``bronze_versions``)."""
    import pyarrow as pa

    table = ctx.store.open(drift.layer, drift.table)
    if table is None:
        return
    names = pa.schema(table.schema().to_arrow()).names
    target = pa.schema([f for f in drift.target if f.name in names])
    scanner = table.to_pyarrow_dataset().scanner(batch_size=65_536)
    where = f"{drift.layer} table {drift.table}"
    reader = conform_stream(scanner.to_reader(), target, where)
    widened = {c.column: [sql_name(c.old), sql_name(c.new)] for c in drift.changes if c.kind == "widened"}
    commit = ctx.store.overwrite(drift.layer, drift.table, reader,
                                 {REWRITE: {"from_version": table.version(), "widened": widened}})
    what = "widened types" if widened else "nullable columns"
    ctx.note(f"{drift.table}: rewrote {commit.rows_written} rows with the {what} (version {commit.version})")


# -- the two layers ------------------------------------------------------------------------

def cast_columns(reader: pa.RecordBatchReader, casts: Mapping[str, str], where: str) -> pa.RecordBatchReader:
    """An ingest table's ``casts``: source columns landed in the named types (checked, never truncated)."""
    import pyarrow as pa

    if not casts:
        return reader
    missing = [c for c in casts if c not in reader.schema.names]
    if missing:
        raise SourceSchemaError(f"{where}: casts name column(s) {', '.join(missing)}, which the source does not send.",
                                hint=f"Columns: {', '.join(reader.schema.names)}.")
    target = pa.schema([pa.field(f.name, arrow_type(casts[f.name]), True, f.metadata) if f.name in casts else f
                        for f in reader.schema])
    return conform_stream(reader, target, where)


def prepare(ctx: JobContext, layer: str, table: str, policy: Policy, reader: pa.RecordBatchReader, *,
            always_sent: Sequence[str] = (), how_to_cast: str = "casts",
            replacing: bool = False) -> tuple[pa.RecordBatchReader, Drift | None]:
    """The batch as the table will take it, after the table's ``on_schema_change`` has had its say
    (which may stop the job here, before anything is read), and the drift ``before_commit`` applies.
    ``replacing``: the batch replaces every row, so nothing needs rewriting to widen a column."""
    import dataclasses

    existing = ctx.store.open(layer, table)
    if existing is None:
        return reader, None
    drift = _drift(ctx, layer, table, policy, existing, reader.schema, always_sent, how_to_cast)
    if replacing:
        drift = dataclasses.replace(drift, rewrite=False)
    if drift.none and not drift.rewrite:
        return reader, None
    return conform_stream(reader, drift.target, f"{layer} table {table}"), drift


def committing(ctx: JobContext, drift: Drift | None, commit: Callable[[], T]) -> T:
    """``commit()``, with ``before_commit`` first (the layers call it from their write)."""
    before_commit(ctx, drift)
    return commit()


def before_commit(ctx: JobContext, drift: Drift | None) -> None:
    """Once the batch has passed its tests, just before its commit: log and record the changes (the
    dropped marks first, so no reader sees NULLs it was not told about), and widen the table."""
    if drift is None:
        return
    record(ctx, drift)
    if drift.rewrite:
        rewrite(ctx, drift)


def _drift(ctx: JobContext, layer: str, table: str, policy: Policy, existing: Any, incoming: pa.Schema,
           always_sent: Sequence[str], how_to_cast: str, also_dropped: Mapping[str, dict[str, Any]] = {}) -> Drift:
    import pyarrow as pa

    before = dropped_columns(existing)
    drift = resolve(layer, table, policy, pa.schema(existing.schema().to_arrow()), incoming, dropped_before=before,
                    always_sent=always_sent, run_id=ctx.run_id, how_to_cast=how_to_cast)
    extra = {c: v for c, v in also_dropped.items() if c in drift.target.names and c not in drift.dropped}
    if extra:
        changes = drift.changes + tuple(Change(c, "dropped", old=drift.target.field(c).type) for c in extra)
        if policy == "fail":
            raise refusal(f"{layer} table {table}", policy, [c for c in changes if c.kind != "restored"],
                           how_to_cast)
        dropped = {**drift.dropped, **extra}
        drift = Drift(layer, table, changes, drift.target, drift.rewrite, dropped, marks_changed=True)
    return drift


def silver_batch(ctx: JobContext, *, table: str, source_table: Any, policy: Policy,
                 data: pa.Table | pa.RecordBatchReader,
                 keys: Sequence[str]) -> tuple[pa.Table | pa.RecordBatchReader, Drift | None]:
    """A silver batch as the silver table will take it, and the drift ``before_commit`` applies.
    Columns the bronze table marks dropped are marked dropped here too, and for keys silver already
    holds they keep the value silver has (a merge never overwrites it with the NULL the source no
    longer sends)."""
    import pyarrow as pa

    existing = ctx.store.open("silver", table)
    if existing is None:  # a first build (streamed, when large): its columns make the table
        return data, None
    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    upstream = {c: {**v, "upstream": True} for c, v in dropped_columns(source_table).items() if c in data.schema.names}
    drift = _drift(ctx, "silver", table, policy, existing, data.schema, (), "casts", upstream)
    carry = [c for c in drift.dropped if c in drift.target.names]
    if carry and keys and data.num_rows:
        data = _carry(ctx, table, data, carry, keys)
    batches = [conform(b, drift.target, f"silver table {table}") for b in data.to_batches()]
    return pa.Table.from_batches(batches, schema=drift.target), (None if drift.none and not drift.rewrite else drift)


def rebuilt_batch(ctx: JobContext, *, table: str, source_table: Any, data: pa.Table | pa.RecordBatchReader,
                  keys: Sequence[str]) -> pa.Table | pa.RecordBatchReader:
    """A batch (or a stream of them) that rebuilds a silver table: for columns the bronze table marks
    dropped, keys the table already holds keep its value (the newest bronze row of such a key holds
    NULL there). Only then is a stream read whole."""
    import pyarrow as pa

    existing = ctx.store.open("silver", table)
    held = pa.schema(existing.schema().to_arrow()).names if existing is not None else []
    columns = [c for c in dropped_columns(source_table) if c in data.schema.names and c in held]
    if not columns or not keys:
        return data
    schema = data.schema
    where = f"silver table {table}"

    def carried(part: pa.Table) -> list[pa.RecordBatch]:
        if not part.num_rows:
            return list(part.to_batches())
        return [conform(b, schema, where) for b in _carry(ctx, table, part, columns, keys).to_batches()]

    # a streamed rebuild is read whole first: the stream is drained by the Delta writer, inside
    # which the silver table cannot be opened again
    whole = data if isinstance(data, pa.Table) else data.read_all()
    return pa.Table.from_batches(carried(whole), schema=schema)


def _carry(ctx: JobContext, table: str, data: pa.Table, columns: Sequence[str], keys: Sequence[str]) -> pa.Table:
    """``data`` with the silver table's current values in ``columns`` where the batch has NULL there."""
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.engine.sql import quote

    existing = ctx.store.open("silver", table)
    if existing is None:
        return data
    engine = DuckDBEngine()
    try:
        engine.register_files("__silver_now", data_files(existing), pa.schema(existing.schema().to_arrow()),
                              storage_options=ctx.store.storage_options)
        engine.register_arrow("__silver_batch", data)
        picked = ", ".join(quote(c) for c in (*keys, *columns))
        on = " AND ".join(f"n.{quote(k)} = s.{quote(k)}" for k in keys)
        keep = ", ".join(f"coalesce(n.{quote(c)}, s.{quote(c)}) AS {quote(c)}" for c in columns)
        out = engine.arrow(f"SELECT n.* REPLACE ({keep}) FROM {quote('__silver_batch')} n "
                           f"LEFT JOIN (SELECT {picked} FROM {quote('__silver_now')}) s ON {on}")
    finally:
        engine.close()
    return out.select(data.schema.names)
