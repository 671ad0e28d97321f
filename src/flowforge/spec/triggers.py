"""Triggers: what starts a workflow besides a person. Declared under ``triggers:`` in the workflow
file; a workflow may have several. Which kind a trigger is follows from its one key.

```yaml
triggers:
  - cron: "0 6 * * 1-5"          # weekdays 06:00 on the Berlin wall clock (DST rules: runner/cron.py)
    timezone: Europe/Berlin
    catchup: latest              # missed fires after downtime or a pause: none | latest | all
  - every: 15m                   # every 15 minutes of UTC (30s, 15m, 2h, 1d)
  - after: [load_core_banking]   # when that workflow's run succeeds (all of them, if several)
    on_failure: false            # true: also when it fails
  - files: crm_files             # new or changed files in a files connection (local or s3://)
    pattern: "*.csv"
    quiet: 30s                   # a file counts once nothing changed it for this long
    debounce: 1m                 # after the first new file, wait this long for more, then fire once
    poll: 30s
  - continuous: true             # keep `run --follow` going (cdc jobs), restarted if it stops
concurrency: queue               # a run while another is in progress: queue (wait) | skip | fail
```

The older ``schedule: "0 2 * * *"`` field still works: it is a cron trigger in UTC.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from flowforge.spec.base import Identifier, SpecModel
from flowforge.spec.jobs import _DURATION, _UNITS

Catchup = Literal["none", "latest", "all"]
Concurrency = Literal["queue", "skip", "fail"]
TRIGGER_KEYS = ("cron", "every", "after", "files", "continuous")


def duration_seconds(value: str | float) -> float:
    """``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(value)
    if m is None:
        raise ValueError(f"'{value}' is not a duration like '30s', '15m', '2h' or '1d'")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _check_duration(value: str | float) -> str | float:
    if duration_seconds(value) < 0:
        raise ValueError("a duration cannot be negative")
    return value


class Trigger(SpecModel):
    kind: ClassVar[str] = ""
    identity: ClassVar[tuple[str, ...]] = ()  # the fields that make it another trigger when changed

    def key(self) -> str:
        """A stable identity: changing what it watches (the expression, zone, workflows, folder) makes a
        new trigger with its own cursor, armed anew; tuning it (catchup, quiet, poll) keeps the cursor."""
        text = json.dumps(self.model_dump(mode="json", include=set(self.identity)), sort_keys=True)
        return f"{self.kind}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def describe(self) -> str:
        raise NotImplementedError


class CronTrigger(Trigger):
    kind: ClassVar[str] = "cron"
    identity: ClassVar[tuple[str, ...]] = ("cron", "timezone")
    cron: str
    timezone: str = "UTC"
    catchup: Catchup = "latest"

    @field_validator("cron")
    @classmethod
    def _expression(cls, value: str) -> str:
        from flowforge.runner.cron import CronSchedule

        CronSchedule(value)  # ValueError with the reason
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from flowforge.runner.cron import zone

        zone(value)
        return value

    def schedule(self) -> Any:
        """The parsed :class:`flowforge.runner.cron.CronSchedule` (ValueError with the reason)."""
        from flowforge.runner.cron import CronSchedule

        return CronSchedule(self.cron, self.timezone)

    def describe(self) -> str:
        return f"cron {self.cron} ({self.timezone})"


class EveryTrigger(Trigger):
    """Slots are multiples of the interval since 1970-01-01 UTC, so every scheduler agrees on them."""

    kind: ClassVar[str] = "every"
    identity: ClassVar[tuple[str, ...]] = ("every",)
    every: str | float
    catchup: Catchup = "latest"

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | float) -> str | float:
        if duration_seconds(value) < 1:
            raise ValueError("'every' must be at least 1 second")
        return value

    @property
    def seconds(self) -> float:
        return duration_seconds(self.every)

    def describe(self) -> str:
        return f"every {self.every}" + ("s" if isinstance(self.every, int | float) else "")


class AfterTrigger(Trigger):
    kind: ClassVar[str] = "after"
    identity: ClassVar[tuple[str, ...]] = ("after", "on_failure")
    after: tuple[Identifier, ...] = Field(min_length=1)
    on_failure: bool = False
    catchup: Catchup = "latest"

    @field_validator("after", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    def describe(self) -> str:
        what = "succeeds" if not self.on_failure else "ends"
        return f"after {' and '.join(self.after)} {what}"


class FilesTrigger(Trigger):
    kind: ClassVar[str] = "files"
    identity: ClassVar[tuple[str, ...]] = ("files", "pattern")
    files: Identifier  # a files connection
    pattern: str = "*"
    quiet: str | float = "10s"
    debounce: str | float = "0s"
    poll: str | float = "30s"
    catchup: Catchup = "latest"

    _q = field_validator("quiet", "debounce", "poll")(_check_duration)

    @field_validator("pattern")
    @classmethod
    def _inside(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if value.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ValueError(f"pattern '{value}' must stay inside the connection's folder (no '/' start, no '..')")
        return value

    @field_validator("poll")
    @classmethod
    def _poll(cls, value: str | float) -> str | float:
        if duration_seconds(value) < 1:
            raise ValueError("'poll' must be at least 1 second")
        return value

    def describe(self) -> str:
        return f"files {self.pattern} in {self.files}"


class ContinuousTrigger(Trigger):
    kind: ClassVar[str] = "continuous"
    identity: ClassVar[tuple[str, ...]] = ("continuous",)
    continuous: Literal[True]
    interval: str | float | None = None  # seconds between micro-batches; default: the jobs' setting

    _i = field_validator("interval")(lambda v: v if v is None else _check_duration(v))

    def describe(self) -> str:
        return "continuous (cdc micro-batches)"


def _kind(value: Any) -> str | None:
    if isinstance(value, Trigger):
        return value.kind
    if isinstance(value, dict):
        found = [k for k in TRIGGER_KEYS if k in value]
        return found[0] if len(found) == 1 else None
    return None


AnyTrigger = Annotated[
    Annotated[CronTrigger, Tag("cron")] | Annotated[EveryTrigger, Tag("every")]
    | Annotated[AfterTrigger, Tag("after")] | Annotated[FilesTrigger, Tag("files")]
    | Annotated[ContinuousTrigger, Tag("continuous")],
    Discriminator(_kind, custom_error_type="trigger_kind",
                  custom_error_message="a trigger needs exactly one of: cron, every, after, files, continuous"),
]


def legacy_schedule(expression: str) -> CronTrigger:
    """The older ``schedule:`` string: a cron trigger in UTC."""
    return CronTrigger(cron=expression)


TIME_KINDS: tuple[str, ...] = ("cron", "every")
