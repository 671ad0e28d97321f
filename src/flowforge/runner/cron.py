"""Cron expressions in a time zone, turned into UTC fire instants with explicit DST rules.

``croniter`` parses the expression and walks *wall-clock* times (naive, no zone); this module
maps each wall-clock time to the UTC instant(s) it means in the zone, the way Vixie cron does:

* **Fixed-hour jobs** (the hour field names hours: ``30 2 * * *``) fire once per wall-clock slot.
  A slot inside the spring-forward gap (02:30 on a day the clock jumps 02:00→03:00) fires at the
  end of the gap (03:00 local), once even when several slots fall in the gap; a slot in the
  repeated hour of a fall-back fires at its first occurrence only.
* **Hour-wildcard jobs** (``*`` or ``*/n`` in the hour field: ``*/15 * * * *``) follow absolute
  time: nothing fires for the wall-clock times that do not exist, and the repeated hour fires at
  both of its occurrences, so an every-15-minutes job stays every 15 minutes across both changes.

Example::

    schedule = CronSchedule("0 6 * * 1-5", "Europe/Berlin")
    schedule.next_fires(datetime.now(UTC), 5)     # the next five weekday 06:00s, in UTC
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

UTC: Final = dt.UTC
# No zone moves its clock by more than this in one change, so wall-clock candidates further than
# this before an instant cannot map after it.
_MAX_SHIFT: Final = dt.timedelta(hours=3)
_MACROS: Final = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                  "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                  "@hourly": "0 * * * *"}


class CronError(ValueError):
    """An expression or time zone that cannot be scheduled; the message says why."""


def zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin or "
                        "America/New_York)") from None


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    timezone: str = "UTC"
    _fields: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

        text = " ".join(self.expression.split())
        text = _MACROS.get(text.lower(), text)
        fields = text.split(" ")
        if len(fields) != 5:
            raise CronError(f"'{self.expression}' is not a cron expression: it needs 5 fields (minute hour "
                            "day-of-month month day-of-week) or a macro such as @daily; for seconds use 'every'")
        try:
            probe = croniter(text, dt.datetime(2000, 1, 1))
            probe.get_next(dt.datetime)
        except CroniterBadDateError:
            raise CronError(f"'{self.expression}' never fires (no such date)") from None
        except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
            raise CronError(f"'{self.expression}' is not a cron expression: {exc}") from None
        zone(self.timezone)
        object.__setattr__(self, "_fields", tuple(fields))

    @property
    def normalized(self) -> str:
        return " ".join(self._fields)

    @cached_property
    def _zone(self) -> dt.tzinfo:
        return zone(self.timezone)

    @property
    def hour_wildcard(self) -> bool:
        """True when the hour field is ``*`` or ``*/n``: the job follows absolute time across DST."""
        return self._fields[1].startswith("*")

    # -- fire instants ------------------------------------------------------------------------
    def fires_between(self, after: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
        """UTC instants ``t`` with ``after < t <= until``, in order (walked a window at a time)."""
        size = dt.timedelta(days=1)
        low = after
        while low < until:
            high = min(low + size, until)
            found = self._window(low, high)
            yield from found
            low = high
            size = size if found else min(size * 2, dt.timedelta(days=366))

    def next_fires(self, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
        """The next ``count`` UTC fire instants strictly after ``after`` (fewer if it fires less than
        that in 30 years, as 29 February on a Monday does)."""
        out: list[dt.datetime] = []
        for instant in self.fires_between(after, after + dt.timedelta(days=366 * 30)):
            out.append(instant)
            if len(out) == count:
                break
        return out

    def first_after(self, after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
        """The earliest fire instant in ``(after, until]``."""
        return next(self.fires_between(after, until), None)

    def latest_between(self, after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
        """The newest fire instant in ``(after, until]``, walking back from ``until``."""
        size = dt.timedelta(days=1)
        high = until
        while high > after:
            low = max(high - size, after)
            found = self._window(low, high)
            if found:
                return found[-1]
            high = low
            size = min(size * 2, dt.timedelta(days=366))
        return None

    def _window(self, low: dt.datetime, high: dt.datetime) -> list[dt.datetime]:
        """Sorted distinct instants in ``(low, high]``: wall-clock candidates a margin around it."""
        from croniter import croniter

        start = low.astimezone(self._zone).replace(tzinfo=None) - _MAX_SHIFT
        stop = high.astimezone(self._zone).replace(tzinfo=None) + _MAX_SHIFT
        walker = croniter(self.normalized, start)
        found: set[dt.datetime] = set()
        while True:
            local = walker.get_next(dt.datetime)
            if local > stop:
                break
            found.update(t for t in self._instants(local) if low < t <= high)
        return sorted(found)

    def _instants(self, local: dt.datetime) -> list[dt.datetime]:
        """The UTC instants a wall-clock time means, under the DST rules above."""
        tz = self._zone
        first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        exists = first.astimezone(tz).replace(tzinfo=None) == local
        if exists:  # the repeated hour of a fall-back: first < second
            return [first, second] if self.hour_wildcard else [first]
        if self.hour_wildcard:
            return []  # the clock skipped it; absolute time has no gap to fill
        return [_transition(tz, min(first, second), max(first, second))]


def _transition(tz: dt.tzinfo, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    """The instant in ``(low, high]`` where the zone's offset changes (the end of a gap)."""
    before = low.astimezone(tz).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)
