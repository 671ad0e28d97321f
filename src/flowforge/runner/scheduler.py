"""The scheduler: a tick loop over the metadata store that fires triggers exactly once.

Each tick it (1) registers workflow files that changed, (2) marks runs whose process died
``failed (abandoned)``, (3) for every active workflow and trigger decides what is due
(runner/triggers.py) and claims it by moving the trigger's cursor with compare-and-set and inserting
the fire in one transaction (metadata/fires.py), and (4) starts the runs of pending fires on its
thread pool (or hands their jobs to workers, with an executor). Several schedulers — threads,
processes, machines sharing one PostgreSQL metadata store — may tick at once: a slot fires once.
Paused workflows fire nothing and keep their cursors, so on resume missed slots follow ``catchup``.
Continuous triggers keep a ``--follow`` loop running; its workflow lease makes sure only one
scheduler runs it, and another takes over when that one dies.

It runs inside ``flowforge serve`` or alone as ``flowforge scheduler``. Between ticks it sleeps
until the next slot is due (at most ``scheduler.tick`` seconds), so a slot starts promptly.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.errors import FlowForgeError
from flowforge.runner.owner import new_holder
from flowforge.runner.triggers import (
    decide_after,
    decide_files,
    decide_time,
    list_files,
    next_slot,
    time_base,
)
from flowforge.spec.triggers import (
    AfterTrigger,
    ContinuousTrigger,
    CronTrigger,
    EveryTrigger,
    FilesTrigger,
    Trigger,
    duration_seconds,
)

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata.fires import FireRecord, TriggerState, WorkflowTriggers
    from flowforge.spec.workflow import Workflow

log = logging.getLogger("flowforge.scheduler")
Clock = Callable[[], dt.datetime]
FILE_SCAN_SECONDS = 5.0
FIRE_KIND = {"cron": "schedule", "every": "schedule", "after": "after", "files": "files"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Known:
    """A workflow's parsed triggers (with their keys), kept until its registration changes."""

    updated_at: dt.datetime
    workflow: Workflow | None
    error: str | None = None
    triggers: list[tuple[Trigger, str]] = field(default_factory=list)


@dataclass
class _Follow:
    thread: threading.Thread
    stop: threading.Event = field(default_factory=threading.Event)
    restart_at: float = 0.0


class Scheduler:
    """Example::

        with Context.open(project) as ctx:
            Scheduler(ctx).run(stop_event)
    """

    def __init__(self, ctx: Context, *, clock: Clock = utcnow, launch: Callable[[FireRecord], None] | None = None,
                 threads: int | None = None, tick: float | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.scheduler
        self.clock = clock
        self.owner = new_holder()
        self.tick_seconds = tick if tick is not None else self.settings.tick
        self.threads = threads or self.settings.threads
        self._launch = launch or self._execute
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="flowforge-fire")
        self._inflight = 0
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._known: dict[int, _Known] = {}
        self._due: dict[tuple[int, str, int], dt.datetime | None] = {}  # (workflow, trigger, version) → next slot
        self._polled: dict[tuple[int, str], float] = {}
        self._follows: dict[str, _Follow] = {}
        self._file_mtimes: dict[str, float] = {}
        self._scanned = 0.0
        self._local = threading.local()
        self._contexts: list[Context] = []
        self.claimed = 0  # fires this scheduler claimed (tests, benchmarks)

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        log.info("scheduler %s started (tick %.2fs, %d threads)", self.owner, self.tick_seconds, self.threads)
        try:
            while not stop.is_set():
                started = time.monotonic()
                wake = None
                try:
                    wake = self.tick()
                except FlowForgeError as exc:
                    log.error("scheduler tick failed: %s", exc.message)
                except Exception:
                    log.exception("scheduler tick failed")
                pause = self.tick_seconds - (time.monotonic() - started)
                if wake is not None:
                    pause = min(pause, (wake - self.clock()).total_seconds())
                self._wakeup.wait(max(0.01, pause))  # or sooner, when a thread frees for a pending fire
                self._wakeup.clear()
        finally:
            self.close()

    def close(self) -> None:
        for follow in self._follows.values():
            follow.stop.set()
        for follow in self._follows.values():
            follow.thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        for ctx in self._contexts:
            ctx.close()

    def tick(self) -> dt.datetime | None:
        """One look at every trigger; returns when the next time slot is due (to sleep until then)."""
        now = self.clock()
        if time.monotonic() - self._scanned >= FILE_SCAN_SECONDS:
            self._scanned = time.monotonic()
            self._register_files()
        self.ctx.reap()
        fires = self.ctx.metadata.fires
        states = fires.states()
        busy = fires.busy_workflows()
        wake: dt.datetime | None = None
        running_follows: set[str] = set()
        for wf_row in fires.workflows():
            known = self._workflow(wf_row)
            if known.workflow is None or wf_row.status != "active":
                continue
            for trigger, key in known.triggers:
                if isinstance(trigger, ContinuousTrigger):
                    running_follows.add(wf_row.name)
                    self._keep_following(wf_row.name)
                    continue
                state = states.get((wf_row.id, key)) or fires.arm(wf_row.id, key, trigger.kind,
                                                                  self._initial_cursor(trigger), now)
                if wf_row.id in busy:  # a fire waits to start (or a run is queued): the next one waits too
                    due_at = self._next_due(wf_row, trigger, state)
                    if due_at is not None and due_at > now:  # a freed thread wakes the loop sooner
                        wake = due_at if wake is None else min(wake, due_at)
                    continue
                due = self._decide(wf_row, trigger, state, now)
                if isinstance(due, dt.datetime):
                    wake = due if wake is None else min(wake, due)
                    continue
                if due is None:
                    continue
                _, fire = fires.advance(state, due.cursor, due.fire, self.owner, now)
                if fire is not None:
                    self.claimed += 1
                    busy.add(wf_row.id)
                    log.info("claimed %s of workflow %s (%s)", fire.slot_key, wf_row.name, trigger.describe())
        self._stop_follows(keep=running_follows)
        self._start_pending(now)
        return wake

    # -- deciding ---------------------------------------------------------------------------------------
    def _decide(self, wf_row: WorkflowTriggers, trigger: Trigger, state: TriggerState,
                now: dt.datetime) -> Any:
        """A Decision, None (nothing), or the datetime a time trigger is next due."""
        grace = self.settings.misfire_grace
        if isinstance(trigger, CronTrigger | EveryTrigger):
            due_at = self._next_due(wf_row, trigger, state)
            if due_at is None:
                return None
            if due_at > now:
                return due_at
            return decide_time(trigger, state, now, grace)
        if isinstance(trigger, AfterTrigger):
            return self._decide_after(trigger, state, now, grace)
        if isinstance(trigger, FilesTrigger):
            return self._decide_files(wf_row, trigger, state, now, grace)
        return None

    def _next_due(self, wf_row: WorkflowTriggers, trigger: Trigger, state: TriggerState) -> dt.datetime | None:
        """When a time trigger's next slot is due (cached per cursor version); None for other kinds."""
        if not isinstance(trigger, CronTrigger | EveryTrigger):
            return None
        cache = (wf_row.id, state.trigger_key, state.version)
        if cache not in self._due:
            if len(self._due) > 100_000:
                self._due.clear()
            self._due[cache] = next_slot(trigger, time_base(state))
        return self._due[cache]

    def _decide_after(self, trigger: AfterTrigger, state: TriggerState, now: dt.datetime, grace: float) -> Any:
        fires = self.ctx.metadata.fires
        statuses = ("success", "failed", "partial") if trigger.on_failure else ("success",)
        seen = dict((state.cursor or {}).get("runs", {}))
        finished = {}
        for name in trigger.after:
            record = self.ctx.metadata.get_workflow(name)
            finished[name] = fires.finished_runs(record.id, int(seen.get(name, 0)), statuses) if record else []
        return decide_after(trigger, state, finished, now, grace)

    def _decide_files(self, wf_row: WorkflowTriggers, trigger: FilesTrigger, state: TriggerState,
                      now: dt.datetime, grace: float) -> Any:
        key = (wf_row.id, state.trigger_key)
        since = (state.cursor or {}).get("since")
        settling = since is not None and (now - dt.datetime.fromisoformat(since)).total_seconds() >= \
            duration_seconds(trigger.debounce)
        if time.monotonic() - self._polled.get(key, -1e9) < duration_seconds(trigger.poll) and not settling:
            return None
        self._polled[key] = time.monotonic()
        try:
            with self.ctx.connector(trigger.files) as connector:
                listing = list_files(connector, trigger.pattern)
        except FlowForgeError as exc:
            log.warning("files trigger of %s: %s", wf_row.name, exc.message)
            return None
        return decide_files(trigger, state, listing, now, grace)

    def _initial_cursor(self, trigger: Trigger) -> dict[str, Any] | None:
        if isinstance(trigger, AfterTrigger):  # runs that ended before the trigger existed do not count
            runs = {}
            for name in trigger.after:
                record = self.ctx.metadata.get_workflow(name)
                runs[name] = self.ctx.metadata.fires.last_run_id(record.id) if record else 0
            return {"runs": runs}
        return None

    def _workflow(self, row: WorkflowTriggers) -> _Known:
        from pydantic import ValidationError

        from flowforge.spec.workflow import Workflow

        known = self._known.get(row.id)
        if known is None or known.updated_at != row.updated_at:
            spec = self.ctx.metadata.fires.specs([row.id]).get(row.id, {})
            try:
                wf = Workflow.model_validate(spec)
                known = _Known(row.updated_at, wf, triggers=[(t, t.key()) for t in wf.all_triggers()])
            except ValidationError as exc:
                known = _Known(row.updated_at, None, str(exc).splitlines()[0])
                log.warning("workflow %s is not valid; its triggers are ignored: %s", row.name, known.error)
            self._known[row.id] = known
        return known

    def _register_files(self) -> None:
        """Register workflow files that are new or changed, so edits to their triggers take effect."""
        self.ctx.schedules.sync_files(self._file_mtimes)

    # -- starting runs ------------------------------------------------------------------------------------
    def _start_pending(self, now: dt.datetime) -> None:
        fires = self.ctx.metadata.fires
        with self._lock:
            free = self.threads - self._inflight
        if free <= 0:
            return
        stale = now - dt.timedelta(seconds=self.settings.lease_timeout)
        queued = fires.queued_workflows()
        started: set[int] = set()
        for fire in fires.pending(limit=free * 4):
            if free <= 0:
                break
            if fire.workflow_id in queued or fire.workflow_id in started:
                continue
            if not fires.take(fire.id, self.owner, stale, now):
                continue
            started.add(fire.workflow_id)
            free -= 1
            with self._lock:
                self._inflight += 1
            self._pool.submit(self._run_fire, fire)

    def _run_fire(self, fire: FireRecord) -> None:
        try:
            self._launch(fire)
        except Exception:
            log.exception("fire %s of workflow %s failed to start", fire.slot_key, fire.workflow_name)
        finally:
            with self._lock:
                self._inflight -= 1
            self._wakeup.set()

    def _context(self) -> Context:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            from flowforge.core.context import Context

            ctx = self._local.ctx = Context(self.ctx.settings.model_copy(update={"actor": "flowforge scheduler"}))
            with self._lock:
                self._contexts.append(ctx)
        return ctx

    def _execute(self, fire: FireRecord) -> None:
        """Run the workflow for ``fire`` in this thread (jobs on workers when an executor is set)."""
        from flowforge.runner.executor import WorkflowBusy

        ctx = self._context()
        try:
            ctx.run(fire.workflow_name, trigger="backfill" if fire.kind == "backfill" else fire.kind, slot=fire.slot,
                    on_start=lambda run_id: ctx.metadata.fires.link(fire.id, run_id))
        except WorkflowBusy as exc:
            ctx.metadata.fires.finish(fire.id, "skipped" if exc.skipped else "refused", exc.message)
        except FlowForgeError as exc:  # paused since it was claimed, invalid now, a connection gone...
            ctx.metadata.fires.finish(fire.id, "refused", exc.message)
            log.warning("fire %s of %s refused: %s", fire.slot_key, fire.workflow_name, exc.message)

    # -- continuous triggers ----------------------------------------------------------------------------------
    def _keep_following(self, name: str) -> None:
        current = self._follows.get(name)
        if current is not None and (current.thread.is_alive() or time.monotonic() < current.restart_at):
            return
        follow = _Follow(threading.Thread(target=self._follow, args=(name,), name=f"flowforge-follow-{name}",
                                          daemon=True))
        self._follows[name] = follow
        follow.thread.start()

    def _follow(self, name: str) -> None:
        from flowforge.core.context import Context

        follow = self._follows[name]
        try:
            with Context(self.ctx.settings.model_copy(update={"actor": "flowforge scheduler"})) as ctx:
                ctx.follow(name, stop=follow.stop)
        except FlowForgeError as exc:
            log.warning("continuous run of %s stopped: %s", name, exc.message)
        except Exception:
            log.exception("continuous run of %s stopped", name)
        follow.restart_at = time.monotonic() + max(5.0, self.tick_seconds)

    def _stop_follows(self, keep: set[str]) -> None:
        for name, follow in list(self._follows.items()):
            if name not in keep:
                follow.stop.set()
                if not follow.thread.is_alive():
                    del self._follows[name]
