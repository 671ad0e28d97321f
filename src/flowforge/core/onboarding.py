"""Onboarding a whole database: every table of a connection as a bronze target, planned and run.

Example::

    plan = ctx.onboarding.plan(workflow)          # job name -> the tables it would land, and how
    summary = ctx.onboarding.ingest_all("shop", exclude=["tmp_*"])   # flowforge ingest --from shop --all
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.layers.discovery import FoundTable
    from flowforge.runner.executor import RunSummary
    from flowforge.runner.jobs import JobEvent
    from flowforge.spec.workflow import Workflow


class OnboardingService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def plan(self, workflow: Workflow) -> dict[str, list[FoundTable]]:
        """For each ingest job that finds its tables in the source (``tables: "*"``, ``include``), what
        it would land: source table, bronze target, primary key and delta column (editors)."""
        from flowforge.layers.discovery import discover
        from flowforge.spec.jobs import IngestJob

        self.ctx.require("editor")
        plans: dict[str, list[FoundTable]] = {}
        for job in workflow.jobs:
            if isinstance(job, IngestJob) and job.include:
                with self.ctx.connector(job.connection) as connector:
                    plans[job.name] = discover(job, connector)
        return plans

    def plan_of(self, name: str) -> dict[str, list[FoundTable]]:
        """``plan`` of a workflow of the project, by name (editors)."""
        from flowforge.errors import NotFoundError
        from flowforge.spec.workflow import Workflow

        self.ctx.require("editor")
        record = self.ctx.metadata.get_workflow(name)
        if record is None:
            raise NotFoundError(f"Workflow '{name}' does not exist.",
                                hint="List the workflows with 'flowforge workflows'.")
        return self.plan(Workflow.model_validate(record.spec))

    def ingest_all(self, source: str, *, include: Sequence[str] = (), exclude: Sequence[str] = (),
                   target_template: str = "bronze_{table}",
                   on_event: Callable[[JobEvent], None] | None = None) -> RunSummary:
        """Land every table of ``source`` (a connection name or URL) that ``include`` matches and
        ``exclude`` does not, each in its own bronze table; a second run loads incrementally where
        an update column was found (editors)."""
        import re

        from flowforge.spec.workflow import Workflow

        self.ctx.require("editor")
        connection = self.ctx.use_url(source) if "://" in source else source
        name = "ingest_all_" + re.sub(r"\W+", "_", connection).strip("_").lower()
        wf = Workflow.model_validate({"name": name, "jobs": [{
            "name": "ingest", "kind": "ingest", "connection": connection, "include": list(include or ["*"]),
            "exclude": list(exclude), "target_template": target_template}]})
        self.ctx.register_workflow(wf)
        return self.ctx.runner().run(wf, trigger="cli", actor=self.ctx.actor, on_event=on_event)
