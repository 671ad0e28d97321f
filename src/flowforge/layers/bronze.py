"""Bronze: land source batches append-only with audit columns.

The incremental watermark (or the set of files read) goes into the *same* Delta commit as
the rows, and is read back from the table's history on the next run; the metadata store
only mirrors it. A crash before the commit leaves the old watermark and no visible rows;
a crash after it leaves both new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors.base import ReadRequest
from flowforge.errors import ConfigError, FlowForgeError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.sub_microseconds import SubMicroseconds
from flowforge.quality.gate import commit_checked
from flowforge.spec.jobs import IngestJob, IngestTable
from flowforge.storage.delta import cast_batch, delta_compatible
from flowforge.streams import prefetch
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector, ReadPlan

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


def request_for(spec: IngestTable) -> ReadRequest:
    inc = spec.incremental
    return ReadRequest(table=spec.table, query=spec.query, files=spec.files, procedure=spec.procedure,
                       params=tuple(spec.params.items()), incremental_column=inc.column if inc else None,
                       lookback=inc.lookback_value() if inc else None, type_fallback=spec.type_fallback,
                       batch_size=spec.batch_size, read_options=spec.read)


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
        for spec in job.tables:
            check_capabilities(connector, spec)
        for spec in job.tables:
            results.append(_ingest_table(ctx, connector, spec))
    return JobResult(tuple(results))


def _ingest_table(ctx: JobContext, connector: Connector, spec: IngestTable) -> TableResult:
    found = ctx.store.progress("bronze", spec.target, WATERMARK)
    state = found[0] if found else None
    plan = connector.plan(request_for(spec), state)
    if plan.replaces:  # files read again with changed options: their own commit, then the new files
        first = _land(ctx, connector, spec, plan)
        plan = connector.plan(request_for(spec), plan.new_state)
        if not plan.has_data:
            return first
        second = _land(ctx, connector, spec, plan)
        return TableResult(spec.target, "bronze", first.rows_read + second.rows_read,
                           first.rows_written + second.rows_written,
                           bytes_written=first.bytes_written + second.bytes_written, version=second.version)
    if not plan.has_data:
        ctx.note(f"{spec.target}: no new data ({plan.description or 'watermark unchanged'})")
        return TableResult(spec.target, "bronze", 0, 0, note="up to date")
    return _land(ctx, connector, spec, plan)


def _replacing(ctx: JobContext, spec: IngestTable, plan: ReadPlan) -> tuple[str, Any]:
    """How the commit changes the table: append, or replace the rows of files read again (the whole
    table, schema included, when they are all it holds) in the same commit as the new rows."""
    if not plan.replaces:
        return "append", lambda rows, progress: ctx.store.append("bronze", spec.target, rows, progress)
    if plan.replaces_all:
        return "overwrite", lambda rows, progress: ctx.store.overwrite("bronze", spec.target, rows, progress)
    names = ", ".join("'" + n.replace("'", "''") + "'" for n in plan.replaces)
    predicate = f"_source_file IN ({names})"
    return "append", lambda rows, progress: ctx.store.replace("bronze", spec.target, rows, predicate, progress)


def _land(ctx: JobContext, connector: Connector, spec: IngestTable, plan: ReadPlan) -> TableResult:
    mode, write = _replacing(ctx, spec, plan)
    counter = _Counter()
    fine = SubMicroseconds(spec.sub_microseconds, plan.schema, spec.target)
    reader = _audited_stream(ctx, connector, plan, counter, fine)
    try:
        commit = commit_checked(ctx, spec.tests, layer="bronze", table=spec.target, data=reader,
                                progress={WATERMARK: plan.new_state, "batch_id": ctx.batch_id, "job": ctx.job.name,
                                          "run_id": ctx.run_id,
                                          # consumers see which sources this commit replaced (not appended)
                                          **({REPLACES: list(plan.replaces)} if plan.replaces else {})},
                                write=write, mode=mode)
    except FlowForgeError:
        if counter.failure is not None:  # delta-rs reports it as an opaque write error: raise the original
            raise counter.failure from None
        raise
    fault_point("bronze.committed")
    ctx.mirror.table_committed(table=spec.target, layer="bronze", job=ctx.job.name, commit=commit,
                               schema=reader.schema, progress=plan.new_state)
    where = f" where {spec.incremental.column} in {plan.bounds}" if spec.incremental and plan.bounds else ""
    what = plan.description or f"{spec.table or 'query'}{where}"
    done = "replaced the earlier rows of those files with" if plan.replaces else "appended"
    landed = counter.rows if plan.replaces else commit.rows_written
    ctx.note(f"{spec.target}: {done} {landed} rows from {what} (version {commit.version})")
    if (truncated := fine.note()) is not None:
        ctx.note(f"{spec.target}: {truncated}")
    # a replacing commit rewrites the files it shares with other sources: count only the rows read
    written = min(commit.rows_written, counter.rows) if plan.replaces else commit.rows_written
    return TableResult(spec.target, "bronze", counter.rows, written,
                       bytes_written=commit.bytes_written, version=commit.version)


class _Counter:
    rows = 0
    failure: FlowForgeError | None = None  # what stopped the stream, so nothing was committed


def _audited_stream(ctx: JobContext, connector: Connector, plan: ReadPlan, counter: _Counter,
                    fine: SubMicroseconds) -> pa.RecordBatchReader:
    """Source batches with the five audit columns, cast to types Delta stores (nanosecond
    timestamps as the table's ``sub_microseconds`` says)."""
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
            cache[key] = pa.array([value] * n, type_)
        return cache[key]

    def source() -> Iterator[tuple[pa.RecordBatch, str, dt.datetime | None]]:
        for part in connector.read(plan):
            for batch in part.batches:
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
