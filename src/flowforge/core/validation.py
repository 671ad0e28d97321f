"""Checking a workflow before it runs: the job graph, the tables it reads, its connections' capabilities,
its triggers and its alert channels — everything the spec alone cannot check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.errors import SpecError

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.spec.workflow import Workflow


def validate_workflow(ctx: Context, name_or_path: str) -> Workflow:
    """Parse the file and check every reference that can be checked without running (editors)."""
    ctx.require("editor")
    wf = ctx.load_workflow(name_or_path)
    from flowforge.core.dag import job_order
    from flowforge.layers.bronze import check_capabilities

    try:
        job_order(wf)
    except SpecError as exc:
        raise SpecError(exc.message, file=str(ctx.workflow_path(name_or_path)), hint=exc.hint) from None
    from flowforge.spec.jobs import IngestJob

    produced = set(wf.producers())
    outside = {t for job in wf.jobs for t in job.inputs() if t not in produced}
    existing = {t for _, t in ctx.store.tables()} if outside else set()  # listing costs; scheduled runs
    for job in wf.jobs:
        if isinstance(job, IngestJob):
            connector = ctx.connector(job.connection)
            for spec in job.tables:
                check_capabilities(connector, spec)
        for table in job.inputs():
            found = any(getattr(j, "may_produce", lambda _: False)(table) for j in wf.jobs)
            if table not in produced and table not in existing and not found:
                raise SpecError(
                    f"job '{job.name}' reads table '{table}', which no job writes and the lakehouse "
                    f"does not have", file=str(ctx.workflow_path(name_or_path)),
                    hint=f"Tables written here: {', '.join(sorted(produced))}.")
    check_triggers(ctx, wf, str(ctx.workflow_path(name_or_path)))
    return wf


def check_triggers(ctx: Context, wf: Workflow, file: str) -> None:
    """What the spec alone cannot check: named workflows, files connections, cdc jobs, alert channels."""
    from flowforge.spec.triggers import AfterTrigger, ContinuousTrigger, FilesTrigger

    for trigger in wf.all_triggers():
        if isinstance(trigger, AfterTrigger):
            known = {p.stem for p in ctx.workflow_files()} | ctx.metadata.workflow_names()
            missing = [n for n in trigger.after if n not in known]
            if missing:
                raise SpecError(f"trigger '{trigger.describe()}' names unknown workflow(s) {', '.join(missing)}",
                                file=file, hint=f"Workflows: {', '.join(sorted(known)) or 'none'}.")
        elif isinstance(trigger, FilesTrigger):
            kind = ctx.connection_config(trigger.files).type
            if kind != "files":
                raise SpecError(f"trigger '{trigger.describe()}': connection '{trigger.files}' is a {kind} "
                                "connection; a files trigger watches a files connection", file=file)
        elif isinstance(trigger, ContinuousTrigger):
            from flowforge.runner.follow import cdc_jobs

            cdc_jobs(wf)
    channels = set(ctx.alerts.channel_names()) if wf.alerts else set()
    for rule in wf.alerts:
        missing = [n for n in rule.notify if n not in channels]
        if missing:
            raise SpecError(f"alerts: unknown channel(s) {', '.join(missing)}", file=file,
                            hint=f"Channels: {', '.join(sorted(channels)) or 'none'} "
                                 "(alert_channels in flowforge.yml, or 'flowforge alerts add').")
