"""Run one workflow: jobs in dependency order, each recorded as a job run.

A failed job marks everything downstream of it as skipped; independent jobs still run.
Only transient errors (a refused connection, a timeout) are retried, with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from flowforge.core.dag import downstream_closure, job_order
from flowforge.errors import FlowForgeError, SpecError, redact
from flowforge.layers.base import JobContext, JobResult, executor_for

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.metadata import MetadataStore, RunRecord
    from flowforge.metadata.records import Layer, RunStatus
    from flowforge.spec.maintenance import MaintenancePolicy
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import CommitResult, LakehouseStore

log = logging.getLogger("flowforge.runner")


@dataclass(frozen=True)
class JobEvent:
    """Emitted as a job starts and ends, for progress output (CLI lines, API streams)."""

    job: str
    kind: str
    status: str  # start | success | failed | skipped
    index: int
    total: int
    seconds: float = 0.0
    result: JobResult | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    workflow: str
    status: str
    events: tuple[JobEvent, ...]
    seconds: float

    @property
    def failed(self) -> list[JobEvent]:
        return [e for e in self.events if e.status == "failed"]


class MetadataMirror:
    """Mirrors each Delta commit into the metadata store (watermarks, assets)."""

    def __init__(self, metadata: MetadataStore, store: LakehouseStore, workflow: str) -> None:
        self.metadata = metadata
        self.store = store
        self.workflow = workflow

    def table_committed(self, *, table: str, layer: str, job: str, commit: CommitResult,
                        schema: pa.Schema, progress: dict[str, Any] | None) -> None:
        from flowforge.metadata import AssetIn
        from flowforge.storage.delta import row_count

        if progress is not None:
            self.metadata.set_watermark(table, job, progress, commit.version)
        dt_ = self.store.open(layer, table)
        rows = row_count(dt_) if dt_ is not None else 0
        columns = tuple({"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema)
        self.metadata.upsert_asset(AssetIn(
            table_name=table, layer=cast("Layer", layer), location=self.store.location(layer, table), schema=columns,
            row_count=rows, delta_version=commit.version, workflow_name=self.workflow))


@dataclass
class Runner:
    metadata: MetadataStore
    store: LakehouseStore
    connector: Callable[[str], Connector]
    retries: int = 2
    backoff_seconds: float = 1.0
    maintenance: MaintenancePolicy | None = None  # automatic maintenance of micro-batch tables

    def run(self, workflow: Workflow, *, trigger: str, actor: str,
            on_event: Callable[[JobEvent], None] | None = None,
            select: Sequence[str] | None = None,
            on_start: Callable[[int], None] | None = None) -> RunSummary:
        """Run every job, or only the jobs named in ``select`` (in dependency order).

        ``on_start`` receives the run id as soon as the run is recorded.
        """
        emit = on_event or (lambda e: None)
        start = time.perf_counter()
        order = job_order(workflow)
        if select is not None:
            unknown = sorted(set(select) - set(order))
            if unknown:
                raise SpecError(f"Workflow '{workflow.name}' has no job(s) {', '.join(unknown)}.",
                                hint=f"Jobs: {', '.join(order)}.")
            order = [name for name in order if name in set(select)]
        run = self.metadata.start_run(workflow.name, trigger, actor)
        if on_start is not None:
            on_start(run.id)
        batch_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{run.id}-{uuid.uuid4().hex[:6]}"
        try:
            return self._run_jobs(workflow, order, run, batch_id, actor, emit, start)
        except BaseException as exc:  # Ctrl-C twice, SystemExit, a bug: the run must not stay "running"
            why = f"interrupted ({type(exc).__name__})" if not isinstance(exc, Exception) else redact(
                f"{type(exc).__name__}: {exc}".splitlines()[0])
            self.metadata.finish_run(run.id, status="failed", error=why)
            raise

    def _run_jobs(self, workflow: Workflow, order: list[str], run: RunRecord, batch_id: str, actor: str,
                  emit: Callable[[JobEvent], None], start: float) -> RunSummary:
        mirror = MetadataMirror(self.metadata, self.store, workflow.name)
        events: list[JobEvent] = []
        blocked: dict[str, str] = {}
        for index, name in enumerate(order, start=1):
            job = workflow.job(name)
            if name in blocked:
                self.metadata.skip_job_run(run.id, name, blocked[name])
                event = JobEvent(name, job.kind, "skipped", index, len(order), error=blocked[name])
                events.append(event)
                emit(event)
                continue
            emit(JobEvent(name, job.kind, "start", index, len(order)))
            ctx = JobContext(job=job, workflow=workflow.name, run_id=run.id, batch_id=batch_id,
                             store=self.store, mirror=mirror, connector=self.connector, log=log)
            event = self._run_job(ctx, run.id, index, len(order))
            events.append(event)
            emit(event)
            if event.status == "failed":
                for later in downstream_closure(workflow, name):
                    blocked.setdefault(later, f"upstream job '{name}' failed")
        written = {(t.layer, t.table): t.version for e in events if e.result is not None for t in e.result.tables
                   if t.version is not None}
        self._maintain(workflow, [e.job for e in events if e.status == "success"], actor, written)
        failed = sum(e.status == "failed" for e in events)
        status: RunStatus = "success" if not failed else ("failed" if failed == len(order) or not any(
            e.status == "success" for e in events) else "partial")
        error = "; ".join(f"{e.job}: {e.error}" for e in events if e.status == "failed") or None
        self.metadata.finish_run(run.id, status=status, error=error)
        return RunSummary(run.id, workflow.name, status, tuple(events), time.perf_counter() - start)

    def _maintain(self, workflow: Workflow, succeeded: list[str], actor: str,
                  written: dict[tuple[str, str], int]) -> None:
        """Compact, checkpoint and vacuum micro-batch tables the policy says are due (never fails the run)."""
        from flowforge.layers.maintenance import maintain, micro_batch_tables, readers
        from flowforge.spec.maintenance import MaintenancePolicy

        if not succeeded or not written:
            return
        policy = self.maintenance or MaintenancePolicy.model_validate({})
        try:
            def kind(name: str) -> str:
                return self.connector(name).kind

            ran = workflow.model_copy(update={"jobs": tuple(j for j in workflow.jobs if j.name in succeeded)})
            for item in maintain(self.store, micro_batch_tables(ran, kind), policy, readers(workflow), written):
                self.metadata.audit(actor, f"table.{item.action}", "table", item.table,
                                    after={"layer": item.layer, "detail": item.detail, "workflow": workflow.name})
        except FlowForgeError as exc:
            log.warning("table maintenance after a run of %s failed: %s", workflow.name, exc)

    def _run_job(self, ctx: JobContext, run_id: int, index: int, total: int) -> JobEvent:
        kind = ctx.job.kind
        job_run = self.metadata.start_job_run(run_id, ctx.job.name)
        start = time.perf_counter()
        attempt = 0
        while True:
            try:
                result = executor_for(kind)(ctx)
            except FlowForgeError as exc:
                if exc.transient and attempt < self.retries:
                    attempt += 1
                    wait = self.backoff_seconds * 2 ** (attempt - 1)
                    ctx.note(f"attempt {attempt} failed ({exc.message}); retrying in {wait:.0f}s")
                    time.sleep(wait)
                    continue
                return self._failed(ctx, job_run.id, index, total, start, str(exc), None)
            except Exception as exc:  # a bug or an unmapped driver error: keep the traceback in the log
                detail = redact(traceback.format_exc())
                return self._failed(ctx, job_run.id, index, total, start,
                                    redact(f"{type(exc).__name__}: {exc}".splitlines()[0]), detail)
            except BaseException as exc:  # interrupted: record it, then let it end the process
                self._failed(ctx, job_run.id, index, total, start, f"interrupted ({type(exc).__name__})", None)
                raise
            seconds = time.perf_counter() - start
            self.metadata.finish_job_run(job_run.id, status="success", rows_read=result.rows_read,
                                         rows_written=result.rows_written, bytes_written=result.bytes_written,
                                         log="\n".join(ctx.lines))
            return JobEvent(ctx.job.name, kind, "success", index, total, seconds, result)

    def _failed(self, ctx: JobContext, job_run_id: int, index: int, total: int, start: float,
                message: str, detail: str | None) -> JobEvent:
        ctx.note(f"failed: {message}")
        if detail:
            ctx.lines.append(detail)
        self.metadata.finish_job_run(job_run_id, status="failed", error=message, log="\n".join(ctx.lines))
        return JobEvent(ctx.job.name, ctx.job.kind, "failed", index, total,
                        time.perf_counter() - start, error=message)
