"""Run one workflow: jobs in dependency order, each recorded as a job run.

A failed job marks everything downstream of it as skipped; independent jobs still run.
Only transient errors (a refused connection, a timeout) are retried, with backoff.

One run at a time per workflow: a run first takes the lease ``workflow:<name>`` in the metadata
store. When another run holds it, the workflow's ``concurrency`` decides: ``queue`` (the default)
records this run as ``queued`` and waits, ``skip`` and ``fail`` refuse it with a message naming the
running one. Each job takes the leases of the tables it writes (one writer per table, across
workflows too). A heartbeat keeps the run and its leases alive; a run whose process dies is marked
``failed (abandoned)`` by whoever next looks (the lease's next holder, ``flowforge runs``). Jobs run
in this process, or on workers when an executor (``executor:`` in flowforge.yml) dispatches them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from flowforge.core.dag import downstream_closure, job_order
from flowforge.errors import ConflictError, FlowForgeError, LeaseLost, RunCancelled, SpecError, redact
from flowforge.layers.base import Refresh
from flowforge.runner.control import RunControl
from flowforge.runner.jobs import JobEnv, JobEvent, execute_job
from flowforge.runner.leases import DEFAULT_TIMEOUT, LeaseKeeper, workflow_lease
from flowforge.runner.owner import worker_label

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.metadata import MetadataStore
    from flowforge.metadata.leases import LeaseGrant
    from flowforge.metadata.records import Layer, RunStatus
    from flowforge.settings import Settings
    from flowforge.spec.jobs import IngestJob
    from flowforge.spec.maintenance import MaintenancePolicy
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import CommitResult, LakehouseStore

__all__ = ["JobEvent", "MetadataMirror", "RunPlan", "RunSummary", "Runner", "WorkflowBusy"]
log = logging.getLogger("flowforge.runner")


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


class WorkflowBusy(ConflictError):
    """Another run of the workflow holds its lease and ``concurrency`` is ``skip`` or ``fail``."""

    def __init__(self, message: str, *, hint: str | None = None, skipped: bool = False,
                 running: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.skipped = skipped
        self.running = running


class MetadataMirror:
    """Mirrors each Delta commit into the metadata store (watermarks, assets)."""

    def __init__(self, metadata: MetadataStore, store: LakehouseStore, workflow: str,
                 run_id: int | None = None) -> None:
        self.metadata = metadata
        self.store = store
        self.workflow = workflow
        self.run_id = run_id

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

    def tests_checked(self, *, job: str, table: str, layer: str, results: Sequence[Any]) -> None:
        from flowforge.quality.results import record_results

        record_results(self.metadata, results, layer=layer, run_id=self.run_id, origin="run",
                       workflow=self.workflow, job=job)

    def sources_found(self, *, job: IngestJob, pairs: Sequence[tuple[str, str]]) -> None:
        from flowforge.metadata import LineageEdgeIn

        self.metadata.replace_discovered_lineage(self.workflow, [LineageEdgeIn(source=s, target=t) for s, t in pairs],
                                                 job.may_produce)

    def table_accounted(self, *, job: str, accounting: Any) -> None:
        from flowforge.quality.results import record_accounting

        if self.run_id is not None:
            record_accounting(self.metadata, accounting, run_id=self.run_id, job=job)


@dataclass
class RunPlan:
    """One run's jobs, as a dispatcher (in-process, or a distributed executor) receives them."""

    env: JobEnv
    workflow: Workflow
    run_id: int
    order: list[str]
    batch_id: str
    keeper: LeaseKeeper
    control: RunControl
    emit: Callable[[JobEvent], None]
    refresh: Refresh = field(default_factory=Refresh)  # --full-refresh / --force

    def skip(self, name: str, index: int, reason: str) -> JobEvent:
        self.env.metadata.skip_job_run(self.run_id, name, reason)
        event = JobEvent(name, self.workflow.job(name).kind, "skipped", index, len(self.order), error=reason)
        self.emit(event)
        return event

    def stop_reason(self) -> str | None:
        """Why no further job may start (a cancel, a lost lease), or None."""
        try:
            self.control.checkpoint()
        except (RunCancelled, LeaseLost) as exc:
            return "run cancelled" if isinstance(exc, RunCancelled) else exc.message
        return None


def run_in_process(plan: RunPlan) -> list[JobEvent]:
    """Jobs one after another in this process."""
    events: list[JobEvent] = []
    blocked: dict[str, str] = {}
    for index, name in enumerate(plan.order, start=1):
        reason = blocked.get(name) or plan.stop_reason()
        if reason is not None:
            events.append(plan.skip(name, index, reason))
            continue
        plan.emit(JobEvent(name, plan.workflow.job(name).kind, "start", index, len(plan.order)))
        event = execute_job(plan.env, plan.workflow, name, run_id=plan.run_id, batch_id=plan.batch_id, index=index,
                            total=len(plan.order), keeper=plan.keeper, control=plan.control, emit=plan.emit,
                            refresh=plan.refresh)
        events.append(event)
        plan.emit(event)
        if event.status == "failed":
            for later in downstream_closure(plan.workflow, name):
                blocked.setdefault(later, f"upstream job '{name}' failed")
    return events


Dispatch = Callable[[RunPlan], list[JobEvent]]


@dataclass
class Runner:
    metadata: MetadataStore
    store: LakehouseStore
    connector: Callable[[str], Connector]
    retries: int = 2
    backoff_seconds: float = 1.0
    settings: Settings | None = None  # the project's (job kinds that resolve paths against it need it)
    lease_timeout: float = DEFAULT_TIMEOUT
    keeper: LeaseKeeper | None = None  # shared by a --follow loop; else one per run
    dispatch: Dispatch | None = None  # None: jobs run in this process
    after_run: Callable[[int], object] | None = None  # alerts, once the run is recorded as ended
    notice: Callable[[str], None] | None = None  # told when a --follow loop waits for another run
    maintenance: MaintenancePolicy | None = None  # automatic maintenance of micro-batch tables

    def run(self, workflow: Workflow, *, trigger: str, actor: str,
            on_event: Callable[[JobEvent], None] | None = None,
            select: Sequence[str] | None = None,
            on_start: Callable[[int], None] | None = None,
            slot: dt.datetime | None = None, parent_run_id: int | None = None,
            on_wait: Callable[[str], None] | None = None, refresh: Refresh | None = None) -> RunSummary:
        """Run every job, or only the jobs named in ``select`` (in dependency order); ``refresh`` says
        which tables to rebuild from their sources (see runner/refresh.py).

        ``on_start`` receives the run id as soon as the run is recorded (queued or running);
        ``on_wait`` a message when it has to wait for another run of the workflow.
        """
        start = time.perf_counter()
        order = job_order(workflow)
        if select is not None:
            unknown = sorted(set(select) - set(order))
            if unknown:
                raise SpecError(f"Workflow '{workflow.name}' has no job(s) {', '.join(unknown)}.",
                                hint=f"Jobs: {', '.join(order)}.")
            order = [name for name in order if name in set(select)]
        keeper = self.keeper or LeaseKeeper(self.metadata, timeout=self.lease_timeout)
        try:
            return self._run(workflow, keeper, order, start, trigger=trigger, actor=actor,
                             emit=on_event or (lambda e: None), selection=order if select is not None else None,
                             on_start=on_start, slot=slot, parent_run_id=parent_run_id, on_wait=on_wait,
                             refresh=refresh or Refresh())
        finally:
            if self.keeper is None:
                keeper.close()

    def _run(self, workflow: Workflow, keeper: LeaseKeeper, order: list[str], start: float, *, trigger: str,
             actor: str, emit: Callable[[JobEvent], None], selection: list[str] | None,
             on_start: Callable[[int], None] | None, slot: dt.datetime | None, parent_run_id: int | None,
             on_wait: Callable[[str], None] | None, refresh: Refresh) -> RunSummary:
        lease = workflow_lease(workflow.name)
        grant = keeper.try_acquire([lease], abandon=True)
        if not grant.acquired and workflow.concurrency != "queue":
            raise self._busy(workflow, grant)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=keeper.timeout)
        run = self.metadata.start_run(workflow.name, trigger, actor, status="running" if grant.acquired else "queued",
                                      owner=keeper.holder, expires_at=expires, slot=slot,
                                      parent_run_id=parent_run_id, selection=selection)
        keeper.keep_alive(run.id)
        control = RunControl(self.metadata, run.id, keeper)
        held = grant.acquired
        try:
            if on_start is not None:
                on_start(run.id)
            if held:
                keeper.bind(lease, run.id)
            else:
                if on_wait is not None:
                    on_wait(self._busy(workflow, grant).message + f" Run {run.id} is queued behind it.")
                keeper.acquire([lease], run_id=run.id, abandon=True, should_stop=control.checkpoint)
                held = True
                self.metadata.leases.set_running(run.id)
            env = JobEnv(self.metadata, self.store, self.connector, MetadataMirror(self.metadata, self.store,
                         workflow.name, run.id), self.retries, self.backoff_seconds, self.settings)
            batch_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{run.id}-{uuid.uuid4().hex[:6]}"
            plan = RunPlan(env, workflow, run.id, order, batch_id, keeper, control, emit, refresh)
            events = (self.dispatch or run_in_process)(plan)
            self._maintain(workflow, events, actor)
            status, error = _outcome(events, control)
            self.metadata.finish_run(run.id, status=status, error=error)
        except RunCancelled as exc:  # while queued
            events, status = [], "cancelled"
            self.metadata.finish_run(run.id, status="cancelled", error=exc.message)
        except BaseException as exc:  # the metadata store went away, Ctrl-C...: do not leave it 'running'
            why = f"interrupted ({type(exc).__name__})" if not isinstance(exc, Exception) else redact(
                f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
            try:
                self.metadata.finish_run(run.id, status="failed", error=why)
            except Exception:  # the store is what failed: the run is reaped as abandoned later
                log.exception("could not record the end of run %s", run.id)
            raise
        finally:
            keeper.forget(run.id)
            control.close()
            if held:
                keeper.release([lease])
        if self.after_run is not None:
            try:
                self.after_run(run.id)
            except Exception:  # alerts never change a run's outcome
                log.exception("alerts after run %s failed", run.id)
        return RunSummary(run.id, workflow.name, status, tuple(events), time.perf_counter() - start)

    def _maintain(self, workflow: Workflow, events: list[JobEvent], actor: str) -> None:
        """Compact, checkpoint and vacuum micro-batch tables the policy says are due (never fails the run)."""
        from flowforge.layers.maintenance import maintain, micro_batch_tables, readers
        from flowforge.spec.maintenance import MaintenancePolicy

        succeeded = [e.job for e in events if e.status == "success"]
        written = {(t.layer, t.table): t.version for e in events if e.result is not None for t in e.result.tables
                   if t.version is not None}
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

    @contextmanager
    def holding(self, workflow: Workflow, stop: threading.Event | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[Runner]:
        """Hold the workflow's lease for a whole loop (``--follow``); runs made with the Runner this
        yields take it re-entrantly. Waits, or refuses, as the workflow's ``concurrency`` says."""
        keeper = LeaseKeeper(self.metadata, timeout=self.lease_timeout)
        lease = workflow_lease(workflow.name)

        def stopping() -> None:
            if stop is not None and stop.is_set():
                raise RunCancelled(f"Stopped while waiting for the lease of workflow '{workflow.name}'.")

        try:
            grant = keeper.try_acquire([lease], abandon=True)
            if not grant.acquired:
                if workflow.concurrency != "queue":
                    raise self._busy(workflow, grant)
                on_wait = on_wait or self.notice
                if on_wait is not None:
                    on_wait(self._busy(workflow, grant).message + " Waiting for it.")
                keeper.acquire([lease], abandon=True, should_stop=stopping)
            yield replace(self, keeper=keeper)
        finally:
            keeper.close()

    def _busy(self, workflow: Workflow, grant: LeaseGrant) -> WorkflowBusy:
        blocker = grant.blocker
        running = blocker.run_id if blocker else None
        other = self.metadata.get_run(running) if running is not None else None
        what = (f"run {other.id} ({other.trigger}, by {other.actor}, started {other.started_at:%Y-%m-%d %H:%M:%S} "
                f"UTC, on {worker_label(other.owner)})" if other else
                f"another process ({worker_label(blocker.holder if blocker else None)})")
        skipped = workflow.concurrency == "skip"
        verb = "skipped" if skipped else "refused"
        hint = f"Wait for it, cancel it with 'flowforge cancel {running}', " if running else "Wait for it, "
        return WorkflowBusy(f"Workflow '{workflow.name}' is already running: {what}; this run is {verb} "
                            f"(concurrency: {workflow.concurrency}).",
                            hint=hint + "or set 'concurrency: queue' to wait.", skipped=skipped, running=running)


def _outcome(events: list[JobEvent], control: RunControl) -> tuple[RunStatus, str | None]:
    error = "; ".join(f"{e.job}: {e.error}" for e in events if e.status == "failed") or None
    if control.cancelled() or any(e.status == "cancelled" for e in events):
        return "cancelled", error or "cancelled"
    failed = sum(e.status == "failed" for e in events)
    skipped_all = events and all(e.status == "skipped" for e in events)
    if not failed and skipped_all:
        reasons = {e.error for e in events}
        return "failed", "; ".join(sorted(r for r in reasons if r))
    if not failed:
        return "success", None
    ran = [e for e in events if e.status != "skipped"]
    return ("failed" if failed == len(ran) or not any(e.status == "success" for e in events) else "partial"), error
