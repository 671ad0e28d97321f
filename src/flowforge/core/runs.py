"""Runs as the API and UI see them: trigger in the background, status, history, per-job
detail, logs, and live progress.

Progress travels on an in-process event bus fed by the runner's ``on_event``; a subscriber
gets the events so far, then each new one until the run ends. A run started by another
process (the CLI, the scheduler) is followed by polling the metadata store instead.

Example::

    run_id = ctx.run_service.trigger("bfsi_customer_360")   # ctx acting as an editor
    for event in ctx.run_service.subscribe(run_id):
        print(event["type"], event.get("job"), event["status"])
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from flowforge.errors import ConflictError, FlowForgeError, NotFoundError, RunFailed, SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata import JobRunRecord, RunRecord
    from flowforge.metadata.alerts import RunAlertRecord
    from flowforge.runner.executor import JobEvent

log = logging.getLogger("flowforge.runs")

START_TIMEOUT_SECONDS: Final = 120.0


@dataclass(frozen=True)
class RunInfo:
    id: int
    workflow: str
    status: str  # queued | running | success | failed | partial | cancelled
    trigger: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows_read: int
    rows_written: int
    error: str | None
    status_label: str = ""  # 'failed (abandoned)' when its process died
    reason: str | None = None
    slot: datetime | None = None
    parent_run_id: int | None = None
    cancel_requested: bool = False
    last_seen: datetime | None = None
    jobs_selected: tuple[str, ...] | None = None

    @property
    def live(self) -> bool:
        """Queued or running: what it shows changes with time alone (heartbeats, or its process dying)."""
        return self.status in ("queued", "running")


@dataclass(frozen=True)
class JobRunInfo:
    job: str
    status: str  # running | success | failed | skipped
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows_read: int
    rows_written: int
    bytes_written: int
    error: str | None
    worker: str | None = None  # host pid that ran it


@dataclass(frozen=True)
class AlertInfo:
    channel: str
    event: str
    status: str  # sending | sent | failed
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class RunDetail:
    run: RunInfo
    jobs: tuple[JobRunInfo, ...]
    alerts: tuple[AlertInfo, ...] = ()


@dataclass(frozen=True)
class JobLog:
    job: str
    status: str
    log: str


@dataclass
class _Channel:
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, event: dict[str, Any], final: bool = False) -> None:
        with self.cond:
            self.events.append(event)
            self.done = self.done or final
            self.cond.notify_all()

    def follow(self, timeout: float | None) -> Iterator[dict[str, Any]]:
        index, deadline = 0, None if timeout is None else time.monotonic() + timeout
        while True:
            with self.cond:
                while index >= len(self.events) and not self.done:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self.cond.wait(timeout=min(left, 5.0) if left is not None else 5.0)
                new, index, done = self.events[index:], len(self.events), self.done
            yield from new
            if done and index >= len(self.events):
                return


class EventBus:
    """Events of the runs started in this process, kept for the newest ``keep`` runs."""

    def __init__(self, keep: int = 200) -> None:
        self._channels: OrderedDict[tuple[str, int], _Channel] = OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def open(self, key: tuple[str, int]) -> _Channel:
        with self._lock:
            channel = self._channels[key] = _Channel()
            while len(self._channels) > self._keep:
                self._channels.popitem(last=False)
            return channel

    def get(self, key: tuple[str, int]) -> _Channel | None:
        with self._lock:
            return self._channels.get(key)


BUS: Final = EventBus()


class RunService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def trigger(self, workflow: str, job: str | None = None, trigger: str = "api", force: bool = False, *,
                jobs: list[str] | None = None, parent_run_id: int | None = None, full_refresh: bool = False,
                tables: list[str] | None = None) -> int:
        """Start a run in a background thread (its own Context and metadata connection, acting as the
        same user) and return its id once recorded (``queued`` if another run of the workflow holds it).
        Validation errors, a paused workflow and a busy one with ``concurrency: skip|fail`` are raised
        here, before anything runs."""
        from flowforge.core.context import Context

        principal = self.ctx.require("editor")
        name = self.ctx.workflows.resolve(workflow)
        wf = self.ctx.prepare_run(name, force=force)
        select = [job] if job else jobs
        unknown = sorted(set(select or ()) - {j.name for j in wf.jobs})
        if unknown:
            raise SpecError(f"Workflow '{name}' has no job '{unknown[0]}'.",
                            hint=f"Jobs: {', '.join(j.name for j in wf.jobs)}.")
        from flowforge.runner.refresh import plan_refresh

        plan_refresh(wf, full_refresh=full_refresh, tables=tables, jobs=select)  # bad table names fail here
        settings = self.ctx.settings
        started = threading.Event()
        box: dict[str, Any] = {}

        def on_start(run_id: int) -> None:
            box["run_id"] = run_id
            box["channel"] = channel = BUS.open(self._key(run_id))
            channel.publish({"type": "run", "run_id": run_id, "workflow": name, "status": "running"})
            started.set()

        def on_event(event: JobEvent) -> None:
            box["channel"].publish(event_dict(box["run_id"], event))

        def work() -> None:
            try:
                with Context(settings, principal=principal) as bg:
                    summary = bg.run(name, trigger=trigger, select=select, force=force, on_event=on_event,
                                     full_refresh=full_refresh, tables=tables,
                                     on_start=on_start, parent_run_id=parent_run_id)
                final: dict[str, Any] = {"status": summary.status, "seconds": round(summary.seconds, 3)}
            except BaseException as exc:  # reported to the caller or the stream, never lost
                log.exception("run of workflow '%s' failed before finishing", name)
                box["error"] = exc
                final = {"status": "failed", "error": str(exc)}
            if "channel" in box:
                box["channel"].publish({"type": "run", "run_id": box["run_id"], "workflow": name, **final},
                                       final=True)
            started.set()

        threading.Thread(target=work, name=f"flowforge-run-{name}", daemon=True).start()
        started.wait(START_TIMEOUT_SECONDS)
        if "run_id" in box:
            return int(box["run_id"])
        error = box.get("error")
        if isinstance(error, FlowForgeError):
            raise error
        raise RunFailed(f"The run of workflow '{name}' did not start: {error or 'timed out'}.")

    def status(self, run_id: int) -> RunInfo:
        self.ctx.require("viewer")
        return _info(self._page(run_id)[0])

    def history(self, workflow: str | None = None, status: str | None = None, since: datetime | None = None,
                limit: int = 50, *, trigger: str | None = None, until: datetime | None = None) -> list[RunInfo]:
        """Newest first; a run whose process is gone shows as failed (abandoned), never as running."""
        self.ctx.require("viewer")
        self.ctx.reap()
        name = None if workflow is None else self.ctx.workflows.resolve(workflow)
        return [_info(r) for r in self.ctx.metadata.list_runs(name, limit, status=status, since=since, with_jobs=False,
                                                               trigger=trigger, until=until)]

    def detail(self, run_id: int) -> RunDetail:
        self.ctx.require("viewer")
        run, alerts = self._page(run_id)
        return RunDetail(_info(run), tuple(_job_info(j) for j in run.job_runs),
                         tuple(AlertInfo(a.channel, a.event, a.status, a.detail, a.at) for a in alerts))

    # -- run control ---------------------------------------------------------------------------------
    def cancel(self, run_id: int) -> RunInfo:
        """Ask a queued or running run to stop at its next safe point (between jobs, between a stream's
        batches, before a commit); it ends ``cancelled`` and leaves its tables as they were (editors)."""
        from flowforge.runner.control import cancel_here

        self.ctx.require("editor")
        run = self._run(run_id)
        if not self.ctx.metadata.leases.request_cancel(run_id, self.ctx.actor):
            raise ConflictError(f"Run {run_id} is not running (it is {run.status_label}).",
                                hint="Only queued and running runs can be cancelled.")
        cancel_here(run_id)
        return _info(self._run(run_id))

    def rerun(self, run_id: int, *, from_failure: bool = False) -> int:
        """A new run of the same jobs as ``run_id`` (or, ``from_failure``, of its failed, cancelled and
        skipped jobs and what depends on them); returns its id (editors)."""
        self.ctx.require("editor")
        name, select = self.rerun_plan(run_id, from_failure)
        return self.trigger(name, trigger="rerun", jobs=select, parent_run_id=run_id)

    def rerun_plan(self, run_id: int, from_failure: bool) -> tuple[str, list[str] | None]:
        """(workflow, jobs to run; None for all) of a rerun."""
        from flowforge.core.dag import downstream_closure, job_order

        self.ctx.require("viewer")
        run = self._run(run_id)
        if run.status in ("queued", "running"):
            raise ConflictError(f"Run {run_id} is still {run.status}.", hint="Rerun it once it has ended.")
        if not from_failure:
            return run.workflow_name, run.selection
        wf = self.ctx.load_workflow(run.workflow_name)
        ran = set(run.selection or job_order(wf))
        bad = {j.job_name for j in run.job_runs if j.status in ("failed", "cancelled", "skipped")}
        bad |= ran - {j.job_name for j in run.job_runs}  # never started (the run was abandoned)
        if not bad:
            raise ConflictError(f"Run {run_id} has no failed job to rerun from (it is {run.status_label}).",
                                hint=f"Rerun it whole: flowforge rerun {run_id}.")
        todo = set(bad)
        for name in bad:
            todo |= downstream_closure(wf, name)
        return run.workflow_name, [n for n in job_order(wf) if n in todo & ran]

    def logs(self, run_id: int) -> list[JobLog]:
        self.ctx.require("viewer")
        return [JobLog(j.job_name, j.status, j.log or "") for j in self._run(run_id).job_runs]

    def subscribe(self, run_id: int, *, poll_seconds: float = 0.5,
                  timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """The run's events so far, then each new one until it ends (or ``timeout`` seconds pass)."""
        self.ctx.require("viewer")
        channel = BUS.get(self._key(run_id))
        if channel is not None:
            return channel.follow(timeout)
        self._run(run_id)  # unknown ids fail here, not inside the stream
        return self._poll(run_id, poll_seconds, timeout)

    def _poll(self, run_id: int, poll_seconds: float, timeout: float | None) -> Iterator[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        sent: set[tuple[str, str]] = set()
        run = self._run(run_id)
        yield {"type": "run", "run_id": run_id, "workflow": run.workflow_name, "status": "running"}
        while True:
            for index, jr in enumerate(run.job_runs, start=1):
                for status in ("start", jr.status):
                    if status not in ("running", "queued") and (jr.job_name, status) not in sent:
                        sent.add((jr.job_name, status))
                        yield {"type": "job", "run_id": run_id, "job": jr.job_name, "status": status,
                               "index": index, "total": None, "seconds": _seconds(jr.started_at, jr.ended_at),
                               "rows_read": jr.rows_read, "rows_written": jr.rows_written, "error": jr.error}
            if run.status not in ("queued", "running"):
                yield {"type": "run", "run_id": run_id, "workflow": run.workflow_name, "status": run.status,
                       "seconds": _seconds(run.started_at, run.ended_at), "error": run.error}
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(poll_seconds)
            self.ctx.reap()  # a run whose process died ends the stream as failed (abandoned)
            run = self._run(run_id)

    def _run(self, run_id: int) -> RunRecord:
        run = self.ctx.metadata.get_run(run_id) if 0 < run_id < 2**63 else None
        if run is None:
            raise NotFoundError(f"Run {run_id} does not exist.", hint="List runs with GET /api/v1/runs.")
        return run

    def _page(self, run_id: int) -> tuple[RunRecord, tuple[RunAlertRecord, ...]]:
        """The run with its job runs (no logs) and alerts, in one read. Only a queued or running run can
        have lost its process; such a one is marked abandoned first (with its alerts), as every run read does."""
        from flowforge.metadata.leases import LIVE

        found = self.ctx.metadata.pages.run(run_id) if 0 < run_id < 2**63 else None
        if found is not None and found[0].status in LIVE and run_id in self.ctx.reap():
            found = self.ctx.metadata.pages.run(run_id)
        if found is None:
            raise NotFoundError(f"Run {run_id} does not exist.", hint="List runs with GET /api/v1/runs.")
        return found

    def _key(self, run_id: int) -> tuple[str, int]:
        return (self.ctx.settings.metadata_database_url, run_id)


def event_dict(run_id: int, event: JobEvent) -> dict[str, Any]:
    """A JobEvent as JSON-ready data (no result objects)."""
    result = event.result
    return {"type": "job", "run_id": run_id, "job": event.job, "kind": event.kind, "status": event.status,
            "index": event.index, "total": event.total, "seconds": round(event.seconds, 3),
            "rows_read": result.rows_read if result else None,
            "rows_written": result.rows_written if result else None, "error": event.error}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _info(run: RunRecord) -> RunInfo:
    return RunInfo(run.id, run.workflow_name, run.status, run.trigger, run.actor, run.started_at, run.ended_at,
                   _seconds(run.started_at, run.ended_at), run.rows_read, run.rows_written, run.error,
                   status_label=run.status_label, reason=run.reason, slot=run.slot, parent_run_id=run.parent_run_id,
                   cancel_requested=run.cancel_requested, last_seen=run.heartbeat_at,
                   jobs_selected=tuple(run.selection) if run.selection is not None else None)


def _job_info(jr: JobRunRecord) -> JobRunInfo:
    from flowforge.runner.owner import worker_label

    return JobRunInfo(jr.job_name, jr.status, jr.started_at, jr.ended_at, _seconds(jr.started_at, jr.ended_at),
                      jr.rows_read, jr.rows_written, jr.bytes_written, jr.error,
                      worker_label(jr.worker) if jr.worker else None)
