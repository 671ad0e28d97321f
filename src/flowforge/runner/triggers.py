"""When a trigger is due, and what it fires: pure decisions over a trigger's cursor and the clock.

Time triggers (cron, every) fire *slots*: the cursor holds the last slot fired or passed over.
With ``catchup`` the slots missed during downtime or a pause (later than the misfire grace) fire
``all`` (one at a time, oldest first), only the ``latest``, or ``none`` (only a slot on time fires).
``after`` fires on the named workflows' runs (cursor: the last run id seen of each); ``files`` on
new or changed files once quiet and debounced (cursor: the files seen). ``all`` fires once per
upstream run for a single ``after`` workflow; for several, and for files, one run covers what is new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.metadata.fires import FireIn
from flowforge.spec.triggers import AfterTrigger, CronTrigger, EveryTrigger, FilesTrigger, Trigger, duration_seconds

if TYPE_CHECKING:
    from flowforge.connectors.base import FileEntry
    from flowforge.metadata.fires import TriggerState

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Decision:
    cursor: dict[str, Any] | None
    fire: FireIn | None = None


# -- time triggers -----------------------------------------------------------------------------------
def next_slot(trigger: Trigger, after: dt.datetime) -> dt.datetime | None:
    """The first slot strictly after ``after``."""
    if isinstance(trigger, EveryTrigger):
        step = trigger.seconds
        return EPOCH + dt.timedelta(seconds=(math.floor((after - EPOCH).total_seconds() / step) + 1) * step)
    if isinstance(trigger, CronTrigger):
        found = trigger.schedule().next_fires(after, 1)
        return found[0] if found else None
    return None


def next_fires(trigger: Trigger, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    if isinstance(trigger, CronTrigger):
        return list(trigger.schedule().next_fires(after, count))
    out: list[dt.datetime] = []
    moment: dt.datetime | None = after
    while moment is not None and len(out) < count:
        moment = next_slot(trigger, moment)
        if moment is not None:
            out.append(moment)
    return out


def slots_between(trigger: Trigger, after: dt.datetime, until: dt.datetime, limit: int = 10_000) -> list[dt.datetime]:
    """Slots in ``(after, until]`` (a backfill's range), at most ``limit``."""
    if isinstance(trigger, CronTrigger):
        out = []
        for slot in trigger.schedule().fires_between(after, until):
            out.append(slot)
            if len(out) >= limit:
                break
        return out
    out, moment = [], next_slot(trigger, after)
    while moment is not None and moment <= until and len(out) < limit:
        out.append(moment)
        moment = next_slot(trigger, moment)
    return out


def _latest_slot(trigger: Trigger, after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
    if isinstance(trigger, EveryTrigger):
        step = trigger.seconds
        last = EPOCH + dt.timedelta(seconds=math.floor((until - EPOCH).total_seconds() / step) * step)
        return last if last > after else None
    if isinstance(trigger, CronTrigger):
        found: dt.datetime | None = trigger.schedule().latest_between(after, until)
        return found
    return None


def time_base(state: TriggerState) -> dt.datetime:
    """The instant after which slots are due: the cursor's slot, or when the trigger was armed."""
    slot = (state.cursor or {}).get("slot")
    return dt.datetime.fromisoformat(slot) if slot else state.armed_at


def decide_time(trigger: CronTrigger | EveryTrigger, state: TriggerState, now: dt.datetime,
                grace: float) -> Decision | None:
    base = time_base(state)
    first = next_slot(trigger, base)
    if first is None or first > now:
        return None
    if trigger.catchup == "all":
        return Decision({"slot": first.isoformat()}, FireIn("schedule", first.isoformat(), first))
    last = _latest_slot(trigger, base, now)
    assert last is not None  # ``first`` is in (base, now]
    cursor = {"slot": last.isoformat()}
    missed = "" if first == last else f"slots from {first:%Y-%m-%d %H:%M:%S} UTC before this one were missed " \
                                      f"(catchup: {trigger.catchup})"
    if trigger.catchup == "none" and (now - last).total_seconds() > grace:
        return Decision(cursor)  # missed, and 'none' does not catch up
    return Decision(cursor, FireIn("schedule", last.isoformat(), last, missed or None))


# -- after ----------------------------------------------------------------------------------------------
def decide_after(trigger: AfterTrigger, state: TriggerState, finished: dict[str, list[tuple[int, dt.datetime]]],
                 now: dt.datetime, grace: float) -> Decision | None:
    """``finished``: per upstream workflow, its qualifying runs after the cursor, oldest first."""
    if any(not finished.get(name) for name in trigger.after):
        return None
    if len(trigger.after) == 1 and trigger.catchup == "all":
        name = trigger.after[0]
        run_id, _ = finished[name][0]
        return Decision({"runs": {name: run_id}}, FireIn("after", f"{name}#{run_id}",
                                                         detail=f"after run {run_id} of {name}"))
    chosen = {name: finished[name][-1] for name in trigger.after}
    cursor = {"runs": {name: run_id for name, (run_id, _) in chosen.items()}}
    completed = max(ended for _, ended in chosen.values())
    if trigger.catchup == "none" and (now - completed).total_seconds() > grace:
        return Decision(cursor)
    key = ",".join(f"{name}#{run_id}" for name, (run_id, _) in sorted(chosen.items()))
    return Decision(cursor, FireIn("after", key, detail=f"after {key.replace('#', ' run ')}"))


# -- files --------------------------------------------------------------------------------------------------
def fingerprint(entry: FileEntry) -> str:
    return f"{entry.size}|{entry.modified.isoformat()}|{entry.etag or ''}"


def decide_files(trigger: FilesTrigger, state: TriggerState, listing: list[FileEntry], now: dt.datetime,
                 grace: float) -> Decision | None:
    cursor = state.cursor or {}
    seen: dict[str, str] = dict(cursor.get("seen", {}))
    quiet = duration_seconds(trigger.quiet)
    settled = {e.path: e for e in listing if (now - e.modified).total_seconds() >= quiet}
    new = {path: e for path, e in settled.items() if seen.get(path) != fingerprint(e)}
    current = {path: fingerprint(e) for path, e in settled.items()}
    since = cursor.get("since")
    if not new:
        return None if not since and seen.keys() <= current.keys() else Decision({"seen": current, "since": None})
    if trigger.catchup == "none":
        window = grace + quiet + duration_seconds(trigger.poll)
        missed = [p for p, e in new.items() if (now - e.modified).total_seconds() > window]
        if len(missed) == len(new):
            return Decision({"seen": current, "since": None})
    if since is None:
        since = now.isoformat()
        if duration_seconds(trigger.debounce) > 0:
            return Decision({"seen": seen, "since": since})
    if (now - dt.datetime.fromisoformat(since)).total_seconds() < duration_seconds(trigger.debounce):
        return None
    digest = hashlib.sha256("\n".join(f"{p}|{fingerprint(e)}" for p, e in sorted(new.items())).encode()).hexdigest()
    names = sorted(new)
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    shown = ", ".join(n.rsplit("/", 1)[-1] for n in names[:5]) + more
    return Decision({"seen": current, "since": None}, FireIn("files", f"files:{digest[:24]}",
                                                             detail=f"{len(names)} new file(s): {shown}"))


def list_files(connector: Any, pattern: str) -> list[FileEntry]:
    """The files a files connection has under ``pattern`` (none when its folder is empty)."""
    folder = getattr(connector, "folder", None)
    if folder is None:
        from flowforge.errors import ConfigError

        raise ConfigError(f"{connector.describe()} is not a files connection; a files trigger needs one.")
    entries: list[FileEntry] = folder.match(pattern)
    return entries
