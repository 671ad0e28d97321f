"""The workflow: a named set of jobs wired together by the tables they read and write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, field_validator, model_validator

from flowforge.spec.alerts import AlertRule
from flowforge.spec.base import Identifier, SpecModel
from flowforge.spec.jobs import JOB_KINDS, GoldJob, IngestJob, JobSpec, SilverJob
from flowforge.spec.triggers import AnyTrigger, Concurrency, Trigger, legacy_schedule

if TYPE_CHECKING:
    JobUnion = IngestJob | SilverJob | GoldJob
else:
    # Built from the registry so a new job kind is one new model, nothing else.
    JobUnion = Annotated[Union[tuple(JOB_KINDS.values())], Field(discriminator="kind")]  # noqa: UP007

AnyJob = IngestJob | SilverJob | GoldJob


class Workflow(SpecModel):
    """A workflow file.

    ```yaml
    name: bfsi_customer_360
    description: Unified customer view from core banking and CRM
    team: analytics
    environment: dev
    tags: [bfsi]
    jobs:
      - name: ingest_core_banking
        kind: ingest
        connection: core_banking
        tables:
          - {table: customers, target: bronze_customers, incremental: modified_date}
    ```
    """

    name: Identifier
    description: str = ""
    team: str | None = None
    environment: str = "dev"
    tags: tuple[str, ...] = ()
    schedule: str | None = None  # older form of one cron trigger in UTC; see spec/triggers.py
    jobs: tuple[JobUnion, ...] = ()  # a new workflow has none until jobs are added
    triggers: tuple[AnyTrigger, ...] = ()
    concurrency: Concurrency = "queue"
    alerts: tuple[AlertRule, ...] = ()

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from flowforge.runner.cron import CronError, CronSchedule

            try:
                CronSchedule(value)
            except CronError as exc:
                raise ValueError(f"{exc}; write a cron expression such as '0 2 * * *' (02:00 UTC daily)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Workflow:
        names: set[str] = set()
        producers: dict[str, str] = {}
        for job in self.jobs:
            if job.name in names:
                raise ValueError(f"job name '{job.name}' is used twice")
            names.add(job.name)
            for target in job.outputs():
                if target in producers:
                    raise ValueError(
                        f"table '{target}' is written by both '{producers[target]}' and '{job.name}'"
                    )
                producers[target] = job.name
        for job in self.jobs:
            for dep in job.depends_on:
                if dep not in names:
                    raise ValueError(f"job '{job.name}' depends on unknown job '{dep}'")
        for trigger in self.triggers:
            if self.name in getattr(trigger, "after", ()):
                raise ValueError(f"workflow '{self.name}' cannot run after itself")
        return self

    def all_triggers(self) -> tuple[Trigger, ...]:
        """The ``triggers`` list, with the older ``schedule:`` string first as a UTC cron trigger."""
        legacy = (legacy_schedule(self.schedule),) if self.schedule else ()
        return (*legacy, *self.triggers)

    def job(self, name: str) -> JobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    def producers(self) -> dict[str, str]:
        """Table name → the job that writes it."""
        return {t: job.name for job in self.jobs for t in job.outputs()}

    def layer_of(self, table: str) -> str | None:
        for job in self.jobs:
            if table in job.outputs():
                return str(job.layer)
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)
