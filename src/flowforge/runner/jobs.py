"""One job of a run, wherever it executes (the run's own process or a worker): take the leases of the
tables it writes, record the job run, call the layer executor with retries of transient errors, and
release the leases. A job that finds a table lease held by a dead process (a worker killed mid-job)
takes it over after the lease timeout and runs the job again: its tables never saw the dead
attempt's uncommitted rows, and what the dead attempt did commit carries its watermark.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import FlowForgeError, LeaseLost, RunCancelled, redact
from flowforge.layers.base import JobContext, JobResult, ProgressMirror, Refresh, executor_for
from flowforge.runner.leases import table_lease
from flowforge.runner.owner import process_id, worker_label

if TYPE_CHECKING:
    from flowforge.connectors.base import Connector
    from flowforge.metadata import MetadataStore
    from flowforge.metadata.leases import LeaseGrant
    from flowforge.runner.control import RunControl
    from flowforge.runner.leases import LeaseKeeper
    from flowforge.settings import Settings
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore

log = logging.getLogger("flowforge.runner")


@dataclass(frozen=True)
class JobEvent:
    """Emitted as a job starts and ends, for progress output (CLI lines, API streams)."""

    job: str
    kind: str
    status: str  # start | progress | success | failed | skipped | cancelled
    index: int
    total: int
    seconds: float = 0.0
    result: JobResult | None = None
    error: str | None = None
    progress: tuple[int, int] | None = None  # (done, total) of a 'progress' event
    tests: tuple[Any, ...] = ()  # flowforge.quality.evaluate.TestResult of the job's tables, in order


@dataclass
class JobEnv:
    """What executing a job needs from its process."""

    metadata: MetadataStore
    store: LakehouseStore
    connector: Callable[[str], Connector]
    mirror: ProgressMirror
    retries: int = 2
    backoff_seconds: float = 1.0
    settings: Settings | None = None


def execute_job(env: JobEnv, workflow: Workflow, name: str, *, run_id: int, batch_id: str, index: int, total: int,
                keeper: LeaseKeeper, control: RunControl, job_run_id: int | None = None,
                emit: Callable[[JobEvent], None] | None = None, refresh: Refresh | None = None) -> JobEvent:
    """Run job ``name`` of ``workflow`` for run ``run_id``; ``job_run_id`` is the queued job run a worker
    picks up (None: record a new one). ``emit`` hears the job's progress events."""
    job = workflow.job(name)
    leases = [table_lease(t) for t in job.outputs()]
    start = time.perf_counter()

    def waiting(grant: LeaseGrant) -> None:
        blocker = grant.blocker
        log.info("job %s waits for %s, held by run %s", name, blocker.name if blocker else "?",
                 blocker.run_id if blocker else "?")

    try:
        grant = keeper.acquire(leases, run_id=run_id, job=name, should_stop=control.checkpoint, on_wait=waiting)
    except (RunCancelled, LeaseLost) as exc:
        status = "cancelled" if isinstance(exc, RunCancelled) else "skipped"
        if job_run_id is None:
            env.metadata.skip_job_run(run_id, name, exc.message)
        else:
            env.metadata.finish_job_run(job_run_id, status="skipped", error=exc.message)
        return JobEvent(name, job.kind, status, index, total, error=exc.message)
    try:
        if job_run_id is not None:  # a redelivered job whose first delivery finished while we waited
            current = env.metadata.leases.job_run(job_run_id)
            if current is not None and current.status in ("success", "failed", "skipped", "cancelled"):
                return JobEvent(name, job.kind, current.status, index, total, error=current.error)
        worker = process_id()
        notes = [f"took over {lease.name.removeprefix('table:')} from {worker_label(lease.holder)} "
                 f"(last seen {lease.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC): running the job again"
                 for lease in grant.took_over if lease.heartbeat_at is not None]
        if job_run_id is None:
            job_run_id = env.metadata.start_job_run(run_id, name, worker=worker).id
        else:
            env.metadata.leases.start_job_run(job_run_id, worker)
        recorded = job_run_id
        ctx = JobContext(job=job, workflow=workflow.name, run_id=run_id, batch_id=batch_id, store=env.store,
                         mirror=env.mirror, connector=env.connector, log=log, checkpoint=control.checkpoint,
                         on_note=lambda lines: env.metadata.leases.write_log(recorded, "\n".join(lines)),
                         on_progress=_progress_emitter(emit, name, job.kind, index, total) if emit else None,
                         settings=env.settings, refresh=refresh or Refresh())
        for note in notes:
            ctx.note(note)
        from flowforge.lineage.openlineage import job_lineage  # OpenLineage events; a no-op unless configured

        lineage = job_lineage(env, workflow, job, run_id)
        lineage.start()
        try:
            event = _attempts(env, ctx, recorded, index, total, start)
        except BaseException as exc:
            lineage.interrupted(exc)
            raise
        lineage.finish(event)
        return event
    finally:
        keeper.release(leases)


def _attempts(env: JobEnv, ctx: JobContext, job_run_id: int, index: int, total: int, start: float) -> JobEvent:
    kind = ctx.job.kind
    attempt = 0
    while True:
        try:
            ctx.checkpoint()
            result = executor_for(kind)(ctx)
        except RunCancelled as exc:
            return _ended(env, ctx, job_run_id, index, total, start, "cancelled", exc.message, None)
        except FlowForgeError as exc:
            if exc.transient and attempt < env.retries:
                attempt += 1
                wait = env.backoff_seconds * 2 ** (attempt - 1)
                ctx.note(f"attempt {attempt} failed ({exc.message}); retrying in {wait:.0f}s")
                time.sleep(wait)
                continue
            return _ended(env, ctx, job_run_id, index, total, start, "failed", str(exc), None)
        except Exception as exc:  # a bug or an unmapped driver error: keep the traceback in the log
            detail = redact(traceback.format_exc())
            return _ended(env, ctx, job_run_id, index, total, start, "failed",
                          redact(f"{type(exc).__name__}: {exc}".splitlines()[0]), detail)
        except BaseException as exc:  # interrupted (Ctrl-C twice, SystemExit): record it, then let it end the process
            _ended(env, ctx, job_run_id, index, total, start, "failed", f"interrupted ({type(exc).__name__})", None)
            raise
        seconds = time.perf_counter() - start
        env.metadata.finish_job_run(job_run_id, status="success", rows_read=result.rows_read,
                                    rows_written=result.rows_written, bytes_written=result.bytes_written,
                                    log="\n".join(ctx.lines), **_checked_rows(ctx))
        return JobEvent(ctx.job.name, kind, "success", index, total, seconds, result, tests=tuple(ctx.results))


def _ended(env: JobEnv, ctx: JobContext, job_run_id: int, index: int, total: int, start: float, status: str,
           message: str, detail: str | None) -> JobEvent:
    ctx.on_note = None  # the final log is written below, with the status
    ctx.note(f"{status}: {message}")
    if detail:
        ctx.lines.append(detail)
    env.metadata.finish_job_run(job_run_id, status="cancelled" if status == "cancelled" else "failed",
                                error=message, log="\n".join(ctx.lines), **_checked_rows(ctx))
    return JobEvent(ctx.job.name, ctx.job.kind, status, index, total, time.perf_counter() - start, error=message,
                    tests=tuple(ctx.results))


def _checked_rows(ctx: JobContext) -> dict[str, Any]:
    """Rows the job's data tests dropped and quarantined (rows read = written + dropped + quarantined)."""
    return {"rows_dropped": sum(a.dropped for a in ctx.accounting),
            "rows_quarantined": sum(a.quarantined for a in ctx.accounting)}


def _progress_emitter(emit: Callable[[JobEvent], None], job: str, kind: str, index: int,
                      total: int) -> Callable[[int, int], None]:
    def progress(done: int, todo: int) -> None:
        emit(JobEvent(job, kind, "progress", index, total, progress=(done, todo)))

    return progress
