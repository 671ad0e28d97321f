"""Bronze: land source batches append-only with audit columns.

The incremental watermark (or the set of files read) goes into the *same* Delta commit as
the rows, and is read back from the table's history on the next run; the metadata store
only mirrors it. A crash before the commit leaves the old watermark and no visible rows;
a crash after it leaves both new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flowforge.arrowutil import constant
from flowforge.connectors.base import NothingNew, ReadRequest, RowsWatermark
from flowforge.errors import CheckFailed, ConfigError, FlowForgeError
from flowforge.layers import schema_drift_apply as schema_drift
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.sub_microseconds import SubMicroseconds
from flowforge.quality.gate import commit_checked
from flowforge.spec.jobs import AUDIT_COLUMNS, IngestJob, IngestTable
from flowforge.storage.delta import cast_batch, delta_compatible
from flowforge.streams import prefetch
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector, ReadPlan
    from flowforge.storage import CommitResult

WATERMARK = "watermark"
REPLACES = "replaces"


def audit_fields() -> list[pa.Field]:
    import pyarrow as pa

    return [
        pa.field("_batch_id", pa.string(), False),
        pa.field("_ingestion_time", pa.timestamp("us", tz="UTC"), False),
        pa.field("_source_system", pa.string(), False),
        pa.field("_source_file", pa.string(), True),
        pa.field("_file_modified_time", pa.timestamp("us", tz="UTC"), True),
    ]


def request_for(spec: IngestTable, watermark_from_rows: bool = False) -> ReadRequest:
    inc = spec.incremental
    return ReadRequest(table=spec.table, query=spec.query, files=spec.files, procedure=spec.procedure,
                       params=tuple(spec.params.items()), incremental_column=inc.column if inc else None,
                       lookback=inc.lookback_value() if inc else None, type_fallback=spec.type_fallback,
                       batch_size=spec.batch_size, read_options=spec.read,
                       watermark_from_rows=watermark_from_rows)


def _open_window(ctx: JobContext, spec: IngestTable, state: dict[str, Any] | None, disposition: str) -> bool:
    """Whether to let the connector read an open incremental window (one scan, no ``max()`` first)
    and take the watermark from the rows read: an append to a local table an earlier run left,
    whose commit then carries the rows and their watermark together (``append_streamed``)."""
    from flowforge.storage.options import is_remote

    return bool(spec.incremental and state and disposition == "append"
                and not is_remote(ctx.store.location("bronze", spec.target)))


def check_capabilities(connector: Connector, spec: IngestTable) -> None:
    """Say up front what a connector cannot do, before anything is read."""
    caps = connector.capabilities
    wanted = {"table": caps.tables, "query": caps.query, "procedure": caps.procedures, "files": caps.files}
    for what, able in wanted.items():
        if getattr(spec, what) and not able:
            raise ConfigError(f"{connector.describe()} cannot read a {what} (target {spec.target}).",
                              hint="Use a connection of a kind that supports it.")
    if spec.incremental and not caps.incremental:
        raise ConfigError(f"{connector.describe()} cannot load incrementally (target {spec.target}).")


@register_executor("ingest")
def run_ingest(ctx: JobContext) -> JobResult:
    job = ctx.job
    assert isinstance(job, IngestJob)
    results = []
    with ctx.connector(job.connection) as connector:  # a shared (pooled) connector stays open
        tables = job.tables
        if job.include:  # every matching table of the source (tables: "*")
            from flowforge.layers import discovery
            from flowforge.lineage.graph import source_node

            found = discovery.discover(job, connector)
            ctx.note(f"{len(found)} table(s) to land from {job.connection}:")
            for line in discovery.describe(found):
                ctx.note(f"  {line}")
            tables = discovery.ingest_tables(job, found)
            ctx.mirror.sources_found(job=job, pairs=[(source_node(job.connection, f.source), f.target)
                                                     for f in found])
        for spec in tables:
            check_capabilities(connector, spec)
        for spec in tables:
            results.append(_ingest_table(ctx, connector, spec))
    return JobResult(tuple(results))


def _ingest_table(ctx: JobContext, connector: Connector, spec: IngestTable) -> TableResult:
    from flowforge.layers.fingerprint import (
        FINGERPRINT,
        REBUILT,
        bronze_fingerprint,
        decide,
        ignored_for_files,
        refuse,
    )

    found = ctx.store.progress_many("bronze", spec.target, (WATERMARK,), recent=(FINGERPRINT,))
    disposition = spec.disposition
    decision = decide(ctx, "bronze", spec.target, bronze_fingerprint(spec, connector),
                      found[FINGERPRINT][0] if FINGERPRINT in found else None)
    if decision.changes and not decision.refresh and disposition != "replace" and not (
            spec.files and ignored_for_files(decision.changes)):
        done = "appended" if disposition == "append" else "merged"
        refuse(ctx, spec.target, decision, f"Its {done} rows were read with the old settings, and an incremental "
               "load cannot read them again.")
    # a full refresh or a replace reads everything; the watermark restarts in the commit that replaces the table
    fresh = decision.refresh or disposition == "replace"
    state = None if fresh else found[WATERMARK][0] if WATERMARK in found else None
    plan = connector.plan(request_for(spec, _open_window(ctx, spec, state, disposition)), state)
    progress = {FINGERPRINT: decision.fingerprint.record(), **({REBUILT: True} if decision.refresh else {})}
    mode = "overwrite" if fresh else disposition
    if plan.replaces:  # files read again with changed options: their own commit, then the new files
        first = _land(ctx, connector, spec, plan, progress, mode)
        plan = connector.plan(request_for(spec), plan.new_state)
        if not plan.has_data:
            return first
        second = _land(ctx, connector, spec, plan, progress, mode)
        return TableResult(spec.target, "bronze", first.rows_read + second.rows_read,
                           first.rows_written + second.rows_written,
                           bytes_written=first.bytes_written + second.bytes_written, version=second.version)
    if not plan.has_data:
        ctx.note(f"{spec.target}: no new data ({plan.description or 'watermark unchanged'})")
        return TableResult(spec.target, "bronze", 0, 0, note="up to date")
    return _land(ctx, connector, spec, plan, progress, mode)


def _replacing(ctx: JobContext, spec: IngestTable, plan: ReadPlan, mode: str) -> tuple[str, Any]:
    """How the commit changes the table: as the write disposition (or a full refresh) says, or
    replace the rows of files read again (the whole table, schema included, when they are all it
    holds) in the same commit as the new rows."""
    if not plan.replaces:
        return mode, _writer(ctx, spec, mode)
    if plan.replaces_all:
        return "overwrite", lambda rows, progress: ctx.store.overwrite("bronze", spec.target, rows, progress)
    names = ", ".join("'" + n.replace("'", "''") + "'" for n in plan.replaces)
    predicate = f"_source_file IN ({names})"
    return "append", lambda rows, progress: ctx.store.replace("bronze", spec.target, rows, predicate, progress)


def _land(ctx: JobContext, connector: Connector, spec: IngestTable, plan: ReadPlan, recorded: dict[str, Any],
          disposition: str) -> TableResult:
    """Read ``plan`` and commit it, with ``recorded`` (the fingerprint) in the same commit."""
    mode, write = _replacing(ctx, spec, plan, disposition)
    counter = _Counter()
    fine = SubMicroseconds(spec.sub_microseconds, plan.schema, spec.target)
    rows_watermark = RowsWatermark(plan) if plan.watermark_column is not None else None
    reader = _audited_stream(ctx, connector, plan, counter, fine, rows_watermark)
    reader = schema_drift.cast_columns(reader, spec.casts, f"bronze table {spec.target}")
    drift = None
    # a full refresh, or files read anew with other options, replace the table's columns on purpose;
    # otherwise (a replace of a full read included) the table's on_schema_change applies
    from flowforge.layers.fingerprint import REBUILT

    if not recorded.get(REBUILT) and not plan.replaces_all:
        reader, drift = schema_drift.prepare(ctx, "bronze", spec.target, spec.on_schema_change, reader,
                                             always_sent=AUDIT_COLUMNS, replacing=mode == "overwrite")
    if rows_watermark is not None:
        snapshot = None if drift is not None or mode != "append" else ctx.store.appends_streamed(
            "bronze", spec.target, reader.schema)
        if snapshot is None:
            # the commit cannot take its watermark after the rows (a schema change to commit first):
            # fix the window's upper bound before reading, as a plain plan does
            closed = connector.plan(dataclasses.replace(plan.request, watermark_from_rows=False), plan.new_state)
            if not closed.has_data:
                ctx.note(f"{spec.target}: no new data ({closed.description or 'watermark unchanged'})")
                return TableResult(spec.target, "bronze", 0, 0, note="up to date")
            return _land(ctx, connector, spec, closed, recorded, disposition)
        tracked, into = rows_watermark, snapshot

        def write(rows: Any, progress: dict[str, Any]) -> CommitResult:
            return ctx.store.append_streamed("bronze", spec.target, into, rows, progress,
                                             lambda: {WATERMARK: tracked.new_state()})

        reader = _unless_empty(reader)
        if reader is None:
            ctx.note(f"{spec.target}: no new data ({plan.description}: no rows)")
            return TableResult(spec.target, "bronze", 0, 0, note="up to date")
    try:
        commit = commit_checked(ctx, spec.tests, layer="bronze", table=spec.target, data=reader,
                                progress={WATERMARK: plan.new_state, "batch_id": ctx.batch_id, "job": ctx.job.name,
                                          "run_id": ctx.run_id, **recorded,
                                          # consumers see which sources this commit replaced (not appended)
                                          **({REPLACES: list(plan.replaces)} if plan.replaces else {})},
                                write=lambda rows, progress: schema_drift.committing(
                                    ctx, drift, lambda: write(rows, progress)), mode=mode, keys=spec.primary_key)
    except FlowForgeError:
        if counter.failure is not None:  # delta-rs reports it as an opaque write error: raise the original
            raise counter.failure from None
        raise
    except NothingNew as nothing:  # only rows of a lookback window, read again: nothing committed
        ctx.note(f"{spec.target}: no new data ({plan.description}: {nothing})")
        return TableResult(spec.target, "bronze", 0, 0, note="up to date")
    fault_point("bronze.committed")
    reached = rows_watermark.new_state() if rows_watermark is not None else plan.new_state
    ctx.mirror.table_committed(table=spec.target, layer="bronze", job=ctx.job.name, commit=commit,
                               schema=reader.schema, progress=reached)
    where = f" where {spec.incremental.column} in {plan.bounds}" if spec.incremental and plan.bounds else ""
    what = plan.description or f"{spec.table or 'query'}{where}"
    if plan.replaces:
        done = "replaced the earlier rows of those files with"
    else:
        done = {"overwrite": "replaced the table with", "merge": "merged"}.get(mode, "appended")
    landed = counter.rows if plan.replaces else commit.rows_written
    updated = f" ({commit.rows_updated} updated)" if mode == "merge" and not plan.replaces else ""
    ctx.note(f"{spec.target}: {done} {landed} rows{updated} from {what} (version {commit.version})")
    if (truncated := fine.note()) is not None:
        ctx.note(f"{spec.target}: {truncated}")
    # a replacing commit rewrites the files it shares with other sources: count only the rows read
    written = min(commit.rows_written, counter.rows) if plan.replaces else commit.rows_written
    return TableResult(spec.target, "bronze", counter.rows, written, rows_updated=commit.rows_updated,
                       bytes_written=commit.bytes_written, version=commit.version)


def _writer(ctx: JobContext, spec: IngestTable, mode: str) -> Callable[[Any, dict[str, Any]], CommitResult]:
    """How the checked rows reach the table: appended, swapped in by one overwrite commit, or
    upserted on the primary key (the last row read of each key wins)."""
    if mode == "overwrite":
        return lambda rows, progress: ctx.store.overwrite("bronze", spec.target, rows, progress)
    if mode == "merge":
        return lambda rows, progress: ctx.store.merge("bronze", spec.target, _last_per_key(rows, spec),
                                                      spec.primary_key, progress)
    return lambda rows, progress: ctx.store.append("bronze", spec.target, rows, progress)


def _last_per_key(rows: pa.Table | pa.RecordBatchReader, spec: IngestTable) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = rows if isinstance(rows, pa.Table) else rows.read_all()
    missing = [k for k in spec.primary_key if k not in table.column_names]
    if missing:
        raise ConfigError(f"Bronze table {spec.target}: primary_key column(s) {', '.join(missing)} are not in what "
                          f"the source returned.", hint=f"Columns: {', '.join(table.column_names)}.")
    nulls = sum(table.column(k).null_count for k in spec.primary_key)
    if nulls:
        raise CheckFailed(f"Bronze table {spec.target}: {nulls} row(s) have a null primary key "
                          f"({', '.join(spec.primary_key)}); nothing was merged.",
                          hint="Fix the source rows, or filter them out with a query.")
    index = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    last = index.group_by(list(spec.primary_key), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == table.num_rows:
        return table
    keep = last.column("__row_max").combine_chunks()
    return table.take(pc.take(keep, pc.sort_indices(keep)))


class _Counter:
    rows = 0
    failure: FlowForgeError | None = None  # what stopped the stream, so nothing was committed


def _unless_empty(reader: pa.RecordBatchReader) -> pa.RecordBatchReader | None:
    """The same stream, or None when it has no row (read up to its first row to know)."""
    import itertools

    import pyarrow as pa

    batches = iter(reader)
    first = next(batches, None)
    if first is None:
        return None
    return pa.RecordBatchReader.from_batches(reader.schema, itertools.chain([first], batches))


def _audited_stream(ctx: JobContext, connector: Connector, plan: ReadPlan, counter: _Counter,
                    fine: SubMicroseconds, rows_watermark: RowsWatermark | None = None) -> pa.RecordBatchReader:
    """Source batches with the five audit columns, cast to types Delta stores (nanosecond
    timestamps as the table's ``sub_microseconds`` says); ``rows_watermark`` sees every source batch."""
    import pyarrow as pa

    schema = fine.schema(delta_compatible(pa.schema(list(plan.schema) + audit_fields())))
    source_cols = len(plan.schema)
    now = dt.datetime.now(dt.UTC)
    system = f"{connector.kind}:{connector.name}"

    cache: dict[tuple[object, int], pa.Array] = {}

    def const(value: object, type_: pa.DataType, n: int) -> pa.Array:
        # batches mostly share one size, so each constant column is built once per part
        key = (value, n)
        if key not in cache:
            if len(cache) > 64:
                cache.clear()
            cache[key] = constant(value, type_, n)  # not pa.array: that imports pandas
        return cache[key]

    def source() -> Iterator[tuple[pa.RecordBatch, str, dt.datetime | None]]:
        for part in connector.read(plan):
            for batch in part.batches:
                if rows_watermark is not None:
                    rows_watermark.add(batch)
                yield batch, part.name, part.modified_time

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from audited()
        except FlowForgeError as exc:
            counter.failure = exc
            raise

    def audited() -> Iterator[pa.RecordBatch]:
        for batch, name, modified in prefetch(source()):
            ctx.checkpoint()  # a cancel stops the stream: the Delta write fails, nothing is committed
            n = batch.num_rows
            if n == 0:
                continue
            audit = [
                const(ctx.batch_id, pa.string(), n),
                const(now, pa.timestamp("us", tz="UTC"), n),
                const(system, pa.string(), n),
                const(name, pa.string(), n),
                const(modified, pa.timestamp("us", tz="UTC"), n),
            ]
            columns = fine.apply([batch.column(i) for i in range(source_cols)], name) + audit
            out = pa.RecordBatch.from_arrays(columns, names=schema.names)
            counter.rows += n
            yield cast_batch(out, schema)
            fault_point("bronze.batch")

    return pa.RecordBatchReader.from_batches(schema, batches())
