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

from flowforge.errors import FlowForgeError, NotFoundError, RunFailed, SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata import JobRunRecord, RunRecord
    from flowforge.runner.executor import JobEvent

log = logging.getLogger("flowforge.runs")

START_TIMEOUT_SECONDS: Final = 120.0


@dataclass(frozen=True)
class RunInfo:
    id: int
    workflow: str
    status: str  # running | success | failed | partial
    trigger: str
    actor: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows_read: int
    rows_written: int
    error: str | None


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


@dataclass(frozen=True)
class RunDetail:
    run: RunInfo
    jobs: tuple[JobRunInfo, ...]


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

    def trigger(self, workflow: str, job: str | None = None, trigger: str = "api", force: bool = False) -> int:
        """Start a run in a background thread (its own Context and metadata connection, acting as the
        same user) and return its id once recorded. Validation errors and a paused workflow are raised
        here, before anything runs."""
        from flowforge.core.context import Context

        principal = self.ctx.require("editor")
        name = self.ctx.workflows.resolve(workflow)
        wf = self.ctx.prepare_run(name, force=force)
        if job is not None and job not in {j.name for j in wf.jobs}:
            raise SpecError(f"Workflow '{name}' has no job '{job}'.",
                            hint=f"Jobs: {', '.join(j.name for j in wf.jobs)}.")
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
                    summary = bg.run(name, trigger=trigger, select=[job] if job else None, force=force,
                                     on_event=on_event, on_start=on_start)
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
        return _info(self._run(run_id))

    def history(self, workflow: str | None = None, status: str | None = None, since: datetime | None = None,
                limit: int = 50) -> list[RunInfo]:
        """Newest first."""
        self.ctx.require("viewer")
        name = None if workflow is None else self.ctx.workflows.resolve(workflow)
        return [_info(r) for r in self.ctx.metadata.list_runs(name, limit, status=status, since=since)]

    def detail(self, run_id: int) -> RunDetail:
        self.ctx.require("viewer")
        run = self._run(run_id)
        return RunDetail(_info(run), tuple(_job_info(j) for j in run.job_runs))

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
                    if status != "running" and (jr.job_name, status) not in sent:
                        sent.add((jr.job_name, status))
                        yield {"type": "job", "run_id": run_id, "job": jr.job_name, "status": status,
                               "index": index, "total": None, "seconds": _seconds(jr.started_at, jr.ended_at),
                               "rows_read": jr.rows_read, "rows_written": jr.rows_written, "error": jr.error}
            if run.status != "running":
                yield {"type": "run", "run_id": run_id, "workflow": run.workflow_name, "status": run.status,
                       "seconds": _seconds(run.started_at, run.ended_at), "error": run.error}
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(poll_seconds)
            run = self._run(run_id)

    def _run(self, run_id: int) -> RunRecord:
        run = self.ctx.metadata.get_run(run_id) if 0 < run_id < 2**63 else None
        if run is None:
            raise NotFoundError(f"Run {run_id} does not exist.", hint="List runs with GET /api/v1/runs.")
        return run

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
                   _seconds(run.started_at, run.ended_at), run.rows_read, run.rows_written, run.error)


def _job_info(jr: JobRunRecord) -> JobRunInfo:
    return JobRunInfo(jr.job_name, jr.status, jr.started_at, jr.ended_at, _seconds(jr.started_at, jr.ended_at),
                      jr.rows_read, jr.rows_written, jr.bytes_written, jr.error)
