"""Schedules and triggers as the CLI, API and UI see them: each workflow's triggers with their next
fire times and last fires, editing a workflow's triggers, previewing an expression, and backfills.

Example::

    for item in ctx.schedules.overview():
        print(item.workflow, item.description, item.next_fires)
    ctx.schedules.backfill("daily", start, end)     # pending fires the scheduler runs (as an editor)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import TypeAdapter, ValidationError

from flowforge.errors import ConfigError, FlowForgeError, SpecError
from flowforge.spec.triggers import TIME_KINDS, AnyTrigger, Trigger

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.core.runs import RunInfo
    from flowforge.metadata.fires import FireIn, FireRecord

MAX_BACKFILL = 1000
_TRIGGER = TypeAdapter(AnyTrigger)


@dataclass(frozen=True)
class TriggerInfo:
    workflow: str
    status: str  # the workflow's: active | paused
    index: int  # position in the workflow's triggers (the older `schedule:` first)
    kind: str
    description: str
    catchup: str | None
    timezone: str | None
    next_fires: tuple[dt.datetime, ...]  # UTC; time triggers of active workflows
    last_fire: dt.datetime | None
    last_status: str | None
    spec: dict[str, Any]


@dataclass(frozen=True)
class FireInfo:
    id: int
    workflow: str
    kind: str
    slot_key: str
    slot: dt.datetime | None
    status: str
    claimed_at: dt.datetime
    run_id: int | None
    detail: str | None


@dataclass(frozen=True)
class BackfillResult:
    workflow: str
    queued: tuple[FireInfo, ...]
    already: tuple[dt.datetime, ...]  # slots that had fired before: not run again


class ScheduleService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def overview(self, workflow: str | None = None, count: int = 5,
                 now: dt.datetime | None = None) -> list[TriggerInfo]:
        """Every trigger of every workflow (or of one), with the next ``count`` fire times."""
        from flowforge.runner.triggers import next_fires
        from flowforge.spec.workflow import Workflow

        self.ctx.require("viewer")
        now = now or dt.datetime.now(dt.UTC)
        self.sync_files()
        names = [self.ctx.workflows.resolve(workflow)] if workflow else [w.name for w in self.ctx.workflows.list()
                                                                          if w.id is not None]
        out = []
        for name in names:
            record = self.ctx.metadata.get_workflow(name)
            if record is None:
                continue
            wf = Workflow.model_validate(record.spec)
            last = {f.trigger_key: f for f in reversed(self.ctx.metadata.fires.recent(record.id, 200))}
            for index, trigger in enumerate(wf.all_triggers()):
                fire = last.get(trigger.key())
                upcoming = tuple(next_fires(trigger, now, count)) if trigger.kind in TIME_KINDS else ()
                out.append(TriggerInfo(name, record.status, index, trigger.kind, trigger.describe(),
                                       getattr(trigger, "catchup", None), getattr(trigger, "timezone", None),
                                       upcoming, fire.slot or fire.claimed_at if fire else None,
                                       fire.status if fire else None, trigger.model_dump(mode="json")))
        return out

    def sync_files(self, seen: dict[str, float] | None = None) -> None:
        """Register workflow files that are new or changed since ``seen`` (path → mtime, updated), so
        edits to their triggers take effect; files that do not parse are left as they were registered."""
        import logging

        from flowforge.spec import load_workflow_file

        seen = {} if seen is None else seen
        for path in self.ctx.workflow_files():
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if seen.get(str(path)) == mtime:
                continue
            seen[str(path)] = mtime
            try:
                self.ctx.register_workflow(load_workflow_file(path), path)
            except FlowForgeError as exc:
                logging.getLogger("flowforge.scheduler").warning("workflow file %s is not registered: %s", path,
                                                                 exc.message)

    def preview(self, trigger: dict[str, Any], count: int = 5, now: dt.datetime | None = None) -> list[dt.datetime]:
        """The next fire times of a trigger being edited; SpecError saying what is wrong with it."""
        from flowforge.runner.triggers import next_fires

        self.ctx.require("viewer")
        parsed = self.parse(trigger)
        return next_fires(parsed, now or dt.datetime.now(dt.UTC), count) if parsed.kind in TIME_KINDS else []

    def parse(self, trigger: dict[str, Any]) -> Trigger:
        try:
            parsed: Trigger = _TRIGGER.validate_python(trigger)
        except ValidationError as exc:
            from flowforge.spec.loader import strip_tags
            from flowforge.spec.problems import describe

            raise SpecError(describe(exc, AnyTrigger, strip_tags),
                            hint="See the trigger examples in the schedule editor or spec/triggers.py.") from None
        return parsed

    def set_triggers(self, workflow: str, triggers: list[dict[str, Any]], *,
                     concurrency: str | None = None) -> list[TriggerInfo]:
        """Replace a workflow's triggers (the older ``schedule:`` becomes a cron trigger in UTC) and
        validate the result like any edit; the workflow file is rewritten (editors)."""
        self.ctx.require("editor")
        name = self.ctx.workflows.resolve(workflow)
        for item in triggers:
            self.parse(item)
        spec = yaml.safe_load(self.ctx.workflows.get(name).yaml)
        if not isinstance(spec, dict):
            raise SpecError("the workflow file is not a mapping", file=name)
        spec.pop("schedule", None)
        if triggers:
            spec["triggers"] = triggers
        else:
            spec.pop("triggers", None)
        if concurrency is not None:
            spec["concurrency"] = concurrency
        self.ctx.workflows.update(name, spec)
        self.ctx.validate(name)
        return self.overview(name)

    def fires(self, workflow: str | None = None, limit: int = 50) -> list[FireInfo]:
        self.ctx.require("viewer")
        record = self.ctx.metadata.get_workflow(self.ctx.workflows.resolve(workflow)) if workflow else None
        return [_fire(f) for f in self.ctx.metadata.fires.recent(record.id if record else None, limit)]

    # -- backfills ------------------------------------------------------------------------------------------
    def backfill(self, workflow: str, start: dt.datetime, end: dt.datetime, *, trigger: int | None = None,
                 now: dt.datetime | None = None) -> BackfillResult:
        """Queue a run for each slot of a time trigger in ``[start, end]``, oldest first; slots that fired
        already are not run again. The scheduler (``serve`` or ``flowforge scheduler``) runs them one after
        another; ``flowforge backfill`` runs them in its own process."""
        from flowforge.metadata.fires import FireIn
        from flowforge.runner.triggers import slots_between

        self.ctx.require("editor")
        name = self.ctx.workflows.resolve(workflow)
        chosen = self._time_trigger(name, trigger)
        now = now or dt.datetime.now(dt.UTC)
        start, end = _utc(start), _utc(end)
        if end < start:
            raise ConfigError(f"The backfill ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M}).")
        if end > now:
            raise ConfigError("A backfill covers past slots only; the scheduler fires the future ones.",
                              hint=f"End it at {now:%Y-%m-%d %H:%M} UTC or earlier.")
        slots = slots_between(chosen, start - dt.timedelta(microseconds=1), end, limit=MAX_BACKFILL + 1)
        if len(slots) > MAX_BACKFILL:
            raise ConfigError(f"The range holds more than {MAX_BACKFILL} slots of '{chosen.describe()}'.",
                              hint="Backfill a shorter range at a time.")
        if not slots:
            raise ConfigError(f"No slot of '{chosen.describe()}' falls between {start:%Y-%m-%d %H:%M} and "
                              f"{end:%Y-%m-%d %H:%M} UTC.")
        record = self.ctx.metadata.get_workflow(name)
        assert record is not None
        who = self.ctx.actor
        items: list[FireIn] = [FireIn("backfill", slot.isoformat(), slot, f"backfill by {who}") for slot in slots]
        added, skipped = self.ctx.metadata.fires.add_pending(record.id, chosen.key(), items, now)
        self.ctx.metadata.audit(self.ctx.actor, "workflow.backfill", "workflow", name,
                                after={"trigger": chosen.describe(), "from": start.isoformat(), "to": end.isoformat(),
                                       "queued": len(added), "already_fired": len(skipped)})
        return BackfillResult(name, tuple(_fire(f) for f in added), tuple(i.slot for i in skipped if i.slot))

    def run_fire(self, fire_id: int, on_event: Any = None) -> RunInfo | None:
        """Run one pending fire in this process (``flowforge backfill``); None if another took it."""
        from flowforge.core.runs import _info
        from flowforge.runner.owner import new_holder

        fire = self.ctx.metadata.fires.get(fire_id)
        if fire is None or not self.ctx.metadata.fires.take(fire.id, new_holder(), dt.datetime.now(dt.UTC)):
            return None
        summary = self.ctx.run(fire.workflow_name, trigger="backfill", slot=fire.slot, on_event=on_event,
                               on_start=lambda run_id: self.ctx.metadata.fires.link(fire.id, run_id))
        return _info(self.ctx.run_detail(summary.run_id))

    def _time_trigger(self, name: str, index: int | None) -> Trigger:
        from flowforge.spec.workflow import Workflow

        self.ctx.workflows.get(name)  # registers a workflow file not seen before
        record = self.ctx.metadata.get_workflow(name)
        assert record is not None
        triggers = list(Workflow.model_validate(record.spec).all_triggers())
        timed = [(i, t) for i, t in enumerate(triggers) if t.kind in TIME_KINDS]
        if index is not None:
            if not 0 <= index < len(triggers) or triggers[index].kind not in TIME_KINDS:
                raise ConfigError(f"Trigger {index} of workflow '{name}' is not a cron or every trigger.",
                                  hint=_listing(timed))
            return triggers[index]
        if len(timed) != 1:
            raise ConfigError(f"Workflow '{name}' has {len(timed) or 'no'} cron/every triggers; "
                              + ("say which one to backfill." if timed else "a backfill follows one."),
                              hint=_listing(timed) if timed else "Add a cron or every trigger first.")
        return timed[0][1]


def _listing(timed: list[tuple[int, Trigger]]) -> str:
    return "Time triggers: " + "; ".join(f"{i}: {t.describe()}" for i, t in timed)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _fire(f: FireRecord) -> FireInfo:
    return FireInfo(f.id, f.workflow_name, f.kind, f.slot_key, f.slot, f.status, f.claimed_at, f.run_id, f.detail)
