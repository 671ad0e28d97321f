"""Gold: business tables as SQL over the lakehouse, run by DuckDB, rebuilt in full each run."""

from __future__ import annotations

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.errors import ConfigError, FlowForgeError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.checkpoints import Checked
from flowforge.quality.gate import commit_checked
from flowforge.spec.jobs import GoldJob, GoldTable
from flowforge.storage.delta import conform_reader, row_count


@register_executor("gold")
def run_gold(ctx: JobContext) -> JobResult:
    job = ctx.job
    assert isinstance(job, GoldJob)
    return JobResult(tuple(_gold_table(ctx, spec) for spec in job.tables))


def _gold_table(ctx: JobContext, spec: GoldTable) -> TableResult:
    if spec.strategy == "scd2":
        from flowforge.layers.scd2_batch import gold_scd2

        return gold_scd2(ctx, spec)
    engine = DuckDBEngine()
    try:
        versions: dict[str, int] = {}
        rows_in = 0
        for name in spec.references:
            found = ctx.store.find(name)
            if found is None:
                known = ", ".join(t for _, t in ctx.store.tables()) or "none yet"
                raise ConfigError(f"Gold table {spec.target}: its SQL reads '{name}', which is not in the "
                                  f"lakehouse (tables: {known}).",
                                  hint="Fix the table name, or run the job that writes it first.")
            _, dt = found
            engine.register_delta(name, dt)
            versions[name] = dt.version()
            rows_in += row_count(dt)
        ctx.checkpoint()
        reader = conform_reader(engine.reader(spec.sql, f"gold table {spec.target}"))
        checked = Checked(reader, ctx.checkpoint, "gold.batch")
        try:
            commit = commit_checked(ctx, spec.tests, layer="gold", table=spec.target, data=checked.reader(),
                                    progress={"sources": versions}, mode="overwrite",
                                    write=lambda rows, p: ctx.store.overwrite("gold", spec.target, rows, p))
        except FlowForgeError:
            checked.reraise()  # a cancel inside the stream reaches delta-rs as an opaque write error
            raise
    finally:
        engine.close()
    ctx.mirror.table_committed(table=spec.target, layer="gold", job=ctx.job.name, commit=commit,
                               schema=reader.schema, progress=None)
    ctx.note(f"{spec.target}: rebuilt with {commit.rows_written} rows from "
             f"{', '.join(f'{k}@v{v}' for k, v in versions.items())} (version {commit.version})")
    return TableResult(spec.target, "gold", rows_in, commit.rows_written,
                       bytes_written=commit.bytes_written, version=commit.version)

