"""The ``publish`` job kind: lakehouse tables into a PostgreSQL schema for BI (see ``flowforge.publish``)."""

from __future__ import annotations

from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.spec.publish import PublishJob


@register_executor("publish")
def run_publish(ctx: JobContext) -> JobResult:
    from flowforge.publish.postgres import Publisher, connect

    job = ctx.job
    assert isinstance(job, PublishJob)
    with ctx.connector(job.connection) as connector:
        config, describe = connector.config, connector.describe()
    conn = connect(config, describe)
    results = []
    try:
        publisher = Publisher(conn, job.target_schema, ctx.store)
        publisher.ensure_schema()
        for spec in job.tables:
            done = publisher.publish(spec)
            ctx.note(f"{job.target_schema}.{done.target}: {done.mode} from {spec.table} v{done.version}, "
                     f"{done.rows:,} rows ({done.note or f'{done.changed:,} written'})")
            results.append(TableResult(f"{job.target_schema}.{done.target}", "publish", done.rows, done.changed,
                                       version=done.version, note=done.mode))
    finally:
        conn.close()
    return JobResult(tuple(results))
