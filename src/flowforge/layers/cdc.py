"""CDC: change events into bronze exactly once, then applied to silver (``cdc_apply``).

Bronze is append-only. The files (or offsets) a batch covers travel in the *same* Delta
commit as its events (``flowforge.cdc_state``), so the stored position is never ahead of
the data. A replayed or duplicated event is dropped by its ``_event_id``: within the batch,
and against bronze rows at positions at or after the batch's smallest position.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from flowforge.connectors.base import ReadRequest
from flowforge.errors import ConfigError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.bronze import audit_fields
from flowforge.spec.cdc import CdcJob
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector

CDC_STATE = "cdc_state"


@register_executor("cdc")
def run_cdc(ctx: JobContext) -> JobResult:
    from flowforge.layers.cdc_apply import apply_table

    job = ctx.job
    assert isinstance(job, CdcJob)
    with ctx.connector(job.connection) as connector:
        if not connector.capabilities.cdc:
            raise ConfigError(f"{connector.describe()} cannot do CDC (job {job.name}).",
                              hint="Use a connection of kind debezium, pg_logical, mysql_binlog, "
                                   "sqlserver_cdc or kafka.")
        results = [land_events(ctx, connector, job)]
    results += [apply_table(ctx, job, spec) for spec in job.tables]
    return JobResult(tuple(results))


def land_events(ctx: JobContext, connector: Connector, job: CdcJob) -> TableResult:
    found = ctx.store.progress("bronze", job.target, CDC_STATE)
    state = found[0] if found else None
    plan = connector.plan(ReadRequest(files=job.files, batch_size=job.batch_size), state)
    if not plan.has_data:
        ctx.note(f"{job.target}: no new change events ({plan.description or 'position unchanged'})")
        return TableResult(job.target, "bronze", 0, 0, note="up to date")
    events = _read_events(ctx, connector, plan)
    read = events.num_rows
    events = _new_only(ctx, job.target, events)
    commit = ctx.store.append("bronze", job.target, events,
                              {CDC_STATE: plan.new_state, "batch_id": ctx.batch_id, "job": ctx.job.name,
                               "run_id": ctx.run_id})
    fault_point("cdc.bronze.committed")
    ctx.mirror.table_committed(table=job.target, layer="bronze", job=ctx.job.name, commit=commit,
                               schema=events.schema, progress=plan.new_state)
    dropped = read - events.num_rows
    ctx.note(f"{job.target}: {events.num_rows} change events from {plan.description}"
             + (f", {dropped} duplicate(s) skipped" if dropped else "") + f" (version {commit.version})")
    return TableResult(job.target, "bronze", read, events.num_rows, bytes_written=commit.bytes_written,
                       version=commit.version)


def _read_events(ctx: JobContext, connector: Connector, plan: object) -> pa.Table:
    """All events of the plan with audit columns; ``seq:`` positions become arrival order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from flowforge.connectors.base import ReadPlan
    from flowforge.connectors.cdc.events import event_schema

    assert isinstance(plan, ReadPlan)
    schema = pa.schema(list(event_schema()) + audit_fields())
    now = dt.datetime.now(dt.UTC)
    stamp = f"seq:{int(now.timestamp() * 1_000_000):020d}:"
    system = f"{connector.kind}:{connector.name}"
    parts = []
    for index, part in enumerate(connector.read(plan)):
        prefix = f"{stamp}{index:08d}:"
        for batch in part.batches:
            n = batch.num_rows
            if not n:
                continue
            pos = batch.column("_source_position")
            is_seq = pc.starts_with(pos, "seq:")
            if pc.any(is_seq).as_py():
                seq = pc.utf8_lpad(pc.cast(batch.column("_seq"), pa.string()), 20, "0")
                pos = pc.if_else(is_seq, pc.binary_join_element_wise(prefix, seq, ""), pos)
            cols = [pos if f.name == "_source_position" else batch.column(f.name) for f in event_schema()]
            cols += [pa.array([ctx.batch_id] * n, pa.string()), pa.array([now] * n, pa.timestamp("us", tz="UTC")),
                     pa.array([system] * n, pa.string()), pa.array([part.name] * n, pa.string()),
                     pa.array([part.modified_time] * n, pa.timestamp("us", tz="UTC"))]
            parts.append(pa.RecordBatch.from_arrays(cols, schema=schema))
            fault_point("bronze.batch")
    return pa.Table.from_batches(parts, schema=schema)


def _new_only(ctx: JobContext, target: str, events: pa.Table) -> pa.Table:
    """Drop events whose ``_event_id`` repeats within the batch or is already in bronze."""
    from flowforge.engine.duckdb_engine import DuckDBEngine

    if events.num_rows == 0:
        return events
    bronze = ctx.store.open("bronze", target)
    engine = DuckDBEngine()
    out: pa.Table
    try:
        engine.register_arrow("__batch", events)
        sql = "SELECT * FROM __batch QUALIFY row_number() OVER (PARTITION BY _event_id ORDER BY _seq) = 1"
        if bronze is not None and bronze.file_uris():
            engine.register_files("__bronze", bronze.file_uris(), bronze.schema().to_arrow())
            # arrival-ordered ``seq:`` positions get a new stamp on replay: compare those in full
            low = engine.rows("SELECT coalesce(min(_source_position) FILTER (WHERE NOT "
                              "starts_with(_source_position, 'seq:')), '~') FROM __batch")[0][0]
            sql = (f"SELECT * FROM ({sql}) b WHERE NOT EXISTS (SELECT 1 FROM __bronze o WHERE "
                   f"(o._source_position >= $low OR starts_with(o._source_position, 'seq:')) "
                   f"AND o._event_id = b._event_id) ORDER BY _source_position, _seq")
            out = engine.query(sql.replace("$low", "'" + str(low).replace("'", "''") + "'"),
                               f"bronze table {target}")
        else:
            out = engine.query(sql + " ORDER BY _source_position, _seq", f"bronze table {target}")
        return out.cast(events.schema)
    finally:
        engine.close()
