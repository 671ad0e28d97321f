"""CDC: change events into bronze exactly once, then applied to silver (``cdc_apply``).

Bronze is append-only. The position a batch covers travels in the *same* Delta commit as its
events (``flowforge.cdc_state``), so the stored position is never ahead of the data. A long
read is committed in chunks of about ``commit_every`` events, each with the position reached
(connectors mark the batches where the source can resume, even inside one huge transaction),
so memory stays bounded whatever the backlog. A replayed or duplicated event is dropped by its
``_event_id``: within the chunk, and against bronze rows at positions at or after the chunk's
smallest position.

A read that finds no change of the captured tables commits nothing, unless the source asks for
its position to move (a slot retaining WAL: ``ReadPlan.commit_without_events``); such a commit
carries ``flowforge.cdc_advance`` and no rows, and silver does not react to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors.base import ReadRequest
from flowforge.connectors.cdc.events import PositionLost
from flowforge.errors import ConfigError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.bronze import audit_fields
from flowforge.spec.cdc import CdcJob
from flowforge.storage.delta import data_files
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector, ReadPlan
    from flowforge.storage import LakehouseStore

CDC_STATE = "cdc_state"
ADVANCE = "cdc_advance"
MAX_POSITION = "cdc_max_position"  # the highest source position bronze holds (spares the replay check)
CHUNK_BYTES = 256 << 20  # commit a chunk before this much event data piles up, whatever its count


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


def stored_state(store: LakehouseStore, target: str, found: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The committed source position; None when there is none or the job was reset."""
    found = found if found is not None else store.progress_many("bronze", target, (CDC_STATE,))
    state = found[CDC_STATE][0] if CDC_STATE in found else None
    if not isinstance(state, dict) or "reset" in state:
        return None
    return state


def plan_read(ctx: JobContext, connector: Connector, job: CdcJob, state: dict[str, Any] | None) -> ReadPlan:
    try:
        return connector.plan(ReadRequest(files=job.files, batch_size=job.batch_size), state)
    except PositionLost as exc:
        raise PositionLost(exc.message, hint=f"Take a new snapshot with 'flowforge cdc reset {ctx.workflow} "
                                             f"{job.name}', then run the workflow again.") from None


def land_events(ctx: JobContext, connector: Connector, job: CdcJob) -> TableResult:
    found = ctx.store.progress_many("bronze", job.target, (CDC_STATE, MAX_POSITION))
    state = stored_state(ctx.store, job.target, found)
    plan = plan_read(ctx, connector, job, state)
    if not plan.has_data:
        ctx.note(f"{job.target}: no new change events ({plan.description or 'position unchanged'})")
        return TableResult(job.target, "bronze", 0, 0, note="up to date")
    # a new bronze table records its highest position from the start; an older one without it is
    # always checked against its files
    writer = _Chunks(ctx, job, plan, found[MAX_POSITION][0] if MAX_POSITION in found else None,
                     track=MAX_POSITION in found or not found)
    batches = _event_batches(ctx, connector, plan)
    pending = next(batches, None)
    for following in batches:  # one batch of lookahead: the last batch commits with the plan's state
        assert pending is not None
        writer.add(*pending)
        pending = following
    if pending is not None:
        writer.add(pending[0], None)
    if writer.rows or state is None or plan.commit_without_events:
        writer.commit(plan.new_state, advance=not writer.read and state is not None)
    if not writer.commits:
        ctx.note(f"{job.target}: no change of the captured tables ({plan.description}); nothing committed")
        return TableResult(job.target, "bronze", 0, 0, note="up to date")
    dropped = writer.read - writer.written
    what = (f"{writer.written} change events from {plan.description}" if writer.read else
            f"no change of the captured tables; position moved ({plan.description})")
    ctx.note(f"{job.target}: {what}" + (f", {dropped} duplicate(s) skipped" if dropped else "")
             + (f" in {len(writer.commits)} commits" if len(writer.commits) > 1 else "")
             + f" (version {writer.commits[-1]})")
    return TableResult(job.target, "bronze", writer.read, writer.written, bytes_written=writer.bytes,
                       version=writer.commits[-1])


class _Chunks:
    """Events collected and committed in bounded chunks, each with the position it reaches."""

    def __init__(self, ctx: JobContext, job: CdcJob, plan: ReadPlan, high: str | None, track: bool) -> None:
        self.ctx, self.job, self.plan = ctx, job, plan
        self.high = high  # the highest position in bronze, when its commits record it
        self.track = track
        self.batches: list[pa.RecordBatch] = []
        self.rows = self.nbytes = 0
        self.read = self.written = self.bytes = 0
        self.commits: list[int] = []

    def add(self, batch: pa.RecordBatch, resume: dict[str, Any] | None) -> None:
        self.batches.append(batch)
        self.rows += batch.num_rows
        self.read += batch.num_rows
        self.nbytes += batch.nbytes
        if resume is not None and (self.rows >= self.job.commit_every or self.nbytes >= CHUNK_BYTES):
            self.commit(resume)

    def commit(self, state: dict[str, Any] | None, *, advance: bool = False) -> None:
        import pyarrow as pa

        from flowforge.connectors.cdc.events import event_schema

        schema = pa.schema(list(event_schema()) + audit_fields())
        events = _new_only(self.ctx, self.job.target, pa.Table.from_batches(self.batches, schema=schema), self.high)
        self.batches, self.rows, self.nbytes = [], 0, 0
        progress: dict[str, Any] = {CDC_STATE: state, "batch_id": self.ctx.batch_id, "job": self.ctx.job.name,
                                    "run_id": self.ctx.run_id}
        highest = _highest(events)
        if self.track and highest is not None:
            self.high = max(self.high, highest) if self.high is not None else highest
        if self.track and self.high is not None:
            progress[MAX_POSITION] = self.high
        if advance:
            progress[ADVANCE] = True
        commit = self.ctx.store.append("bronze", self.job.target, events, progress)
        fault_point("cdc.bronze.committed")
        self.ctx.mirror.table_committed(table=self.job.target, layer="bronze", job=self.ctx.job.name, commit=commit,
                                        schema=events.schema, progress=state)
        self.commits.append(commit.version)
        self.written += events.num_rows
        self.bytes += commit.bytes_written


def _event_batches(ctx: JobContext, connector: Connector,
                   plan: ReadPlan) -> Iterator[tuple[pa.RecordBatch, dict[str, Any] | None]]:
    """Every batch of the plan with audit columns (``seq:`` positions become arrival order), and the
    source state a commit may record once it is in bronze (None: not a resumable point)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from flowforge.connectors.cdc.events import event_schema, resume_state

    schema = pa.schema(list(event_schema()) + audit_fields())
    now = dt.datetime.now(dt.UTC)
    stamp = f"seq:{int(now.timestamp() * 1_000_000):020d}:"
    system = f"{connector.kind}:{connector.name}"
    for index, part in enumerate(connector.read(plan)):
        prefix = f"{stamp}{index:08d}:"
        for batch in part.batches:
            n = batch.num_rows
            resume = resume_state(batch)
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
            fault_point("bronze.batch")
            yield pa.RecordBatch.from_arrays(cols, schema=schema), resume


def _highest(events: pa.Table) -> str | None:
    import pyarrow.compute as pc

    if not events.num_rows:
        return None
    value = pc.max(events.column("_source_position")).as_py()
    return None if value is None else str(value)


def _new_only(ctx: JobContext, target: str, events: pa.Table, high: str | None = None) -> pa.Table:
    """Drop events whose ``_event_id`` repeats within the chunk or is already in bronze. Nothing is
    scanned when the ids are distinct and every position lies above ``high``, the highest position
    bronze holds (a source read in order)."""
    import pyarrow.compute as pc

    from flowforge.engine.duckdb_engine import DuckDBEngine

    if events.num_rows == 0:
        return events
    positions = events.column("_source_position")
    if (high is not None and pc.count_distinct(events.column("_event_id")).as_py() == events.num_rows
            and not pc.any(pc.starts_with(positions, "seq:")).as_py() and str(pc.min(positions).as_py()) > high):
        return events
    bronze = ctx.store.open("bronze", target)
    engine = DuckDBEngine()
    out: pa.Table
    try:
        engine.register_arrow("__batch", events)
        sql = "SELECT * FROM __batch QUALIFY row_number() OVER (PARTITION BY _event_id ORDER BY _seq) = 1"
        files = data_files(bronze) if bronze is not None else []
        if bronze is not None and files:
            engine.register_files("__bronze", files, bronze.schema().to_arrow())
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


def commit_advance(store: LakehouseStore, target: str, state: dict[str, Any], job: str) -> int | None:
    """Commit a position without events (``--follow`` between micro-batches, when the source asks
    to release what it retains). Returns the bronze version, or None when there is no bronze yet."""
    bronze = store.open("bronze", target)
    if bronze is None:
        return None
    import pyarrow as pa

    empty = pa.schema(bronze.schema().to_arrow()).empty_table()
    return store.append("bronze", target, empty, {CDC_STATE: state, ADVANCE: True, "job": job}).version
