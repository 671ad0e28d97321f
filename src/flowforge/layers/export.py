"""The ``export`` job kind: a dated staging snapshot as a step of a workflow (see ``flowforge.export``)."""

from __future__ import annotations

from flowforge.errors import ConfigError
from flowforge.export.service import ExportRequest, run_export
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.spec.export import ExportJob


@register_executor("export")
def run_export_job(ctx: JobContext) -> JobResult:
    job = ctx.job
    assert isinstance(job, ExportJob)
    if ctx.settings is None:
        raise ConfigError(f"Job {job.name}: an export needs the project settings to resolve '{job.to}'.")
    request = ExportRequest(source=job.source, to=job.to, tables=job.tables, format=job.format,
                            if_exists=job.if_exists, parallel=job.parallel)
    result = run_export(request, settings=ctx.settings, store=ctx.store, connector=ctx.connector)
    ctx.note(f"snapshot of {job.source} at {result.location} (attempt {result.attempt}, {result.consistency}): "
             f"{len(result.files)} files, {result.rows:,} rows in {result.seconds:.2f}s")
    return JobResult(tuple(TableResult(f.table, "export", f.rows, f.rows, bytes_written=f.bytes, note=f.file)
                           for f in result.files))
