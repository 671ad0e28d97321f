"""The ``publish`` job kind: lakehouse tables into a PostgreSQL schema for BI (see ``flowforge.publish``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
        with _translated(describe, job.target_schema):
            publisher.ensure_schema()
        for spec in job.tables:
            with _translated(describe, f"{job.target_schema}.{spec.name}"):
                done = publisher.publish(spec)
            ctx.note(f"{job.target_schema}.{done.target}: {done.mode} from {spec.table} v{done.version}, "
                     f"{done.rows:,} rows ({done.note or f'{done.changed:,} written'})")
            results.append(TableResult(f"{job.target_schema}.{done.target}", "publish", done.rows, done.changed,
                                       version=done.version, note=done.mode))
    finally:
        conn.close()
    return JobResult(tuple(results))


@contextmanager
def _translated(describe: str, where: str) -> Iterator[None]:
    """Driver errors as FlowForge errors: a lock wait or a lost connection is worth a retry, the rest is not."""
    import psycopg

    from flowforge.errors import ConnectionFailed, StorageError

    try:
        yield
    except psycopg.OperationalError as exc:
        raise ConnectionFailed(f"{describe}: publishing {where} failed: {str(exc).strip().splitlines()[0]}",
                               hint="Nothing of this table was published; the run retries it.") from None
    except psycopg.Error as exc:
        raise StorageError(f"{describe}: publishing {where} failed: {str(exc).strip().splitlines()[0]}",
                           hint="Nothing of this table was published (its transaction was rolled back).") from None
