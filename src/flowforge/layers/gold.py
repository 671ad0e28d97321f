"""Gold: business tables as SQL over the lakehouse, run by DuckDB, rebuilt in full.

A gold table whose inputs are at the versions its last commit recorded, and whose settings
(SQL, keys...) are those it was built with, is "up to date" and is not rebuilt unless the run is
forced (``--force``, ``--full-refresh``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.errors import ConfigError, FlowForgeError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.checkpoints import Checked
from flowforge.layers.fingerprint import FINGERPRINT, Fingerprint, decide, gold_fingerprint
from flowforge.quality.gate import commit_checked
from flowforge.spec.jobs import GoldJob, GoldTable
from flowforge.storage.delta import conform_reader, row_count

if TYPE_CHECKING:
    from deltalake import DeltaTable

SOURCES = "sources"  # commit metadata: the version of each table the SQL read


@register_executor("gold")
def run_gold(ctx: JobContext) -> JobResult:
    job = ctx.job
    assert isinstance(job, GoldJob)
    return JobResult(tuple(_gold_table(ctx, spec) for spec in job.tables))


def _gold_table(ctx: JobContext, spec: GoldTable) -> TableResult:
    if spec.strategy == "scd2":
        from flowforge.layers.scd2_batch import gold_scd2

        return gold_scd2(ctx, spec)
    sources = gold_sources(ctx, spec)
    versions = {name: dt.version() for name, dt in sources.items()}
    fingerprint = gold_fingerprint(spec)
    current = _up_to_date(ctx, spec, versions, fingerprint)
    if current is not None:
        return TableResult(spec.target, "gold", 0, 0, version=current, note="up to date")
    engine = DuckDBEngine()
    try:
        rows_in = 0
        for name, dt in sources.items():
            engine.register_delta(name, dt)
            rows_in += row_count(dt)
        ctx.checkpoint()
        reader = conform_reader(engine.reader(spec.sql, f"gold table {spec.target}"))
        checked = Checked(reader, ctx.checkpoint, "gold.batch")
        try:
            commit = commit_checked(ctx, spec.tests, layer="gold", table=spec.target, data=checked.reader(),
                                    progress={SOURCES: versions, FINGERPRINT: fingerprint.record()},
                                    mode="overwrite",
                                    write=lambda rows, p: ctx.store.overwrite("gold", spec.target, rows, p))
        except FlowForgeError:
            checked.reraise()  # a cancel inside the stream reaches delta-rs as an opaque write error
            raise
    finally:
        engine.close()
    ctx.mirror.table_committed(table=spec.target, layer="gold", job=ctx.job.name, commit=commit,
                               schema=reader.schema, progress=None)
    inputs = ", ".join(f"{k}@v{v}" for k, v in versions.items()) or "no lakehouse tables"
    rows = f"{commit.rows_written} row{'' if commit.rows_written == 1 else 's'}"
    ctx.note(f"{spec.target}: rebuilt with {rows} from {inputs} (version {commit.version})")
    return TableResult(spec.target, "gold", rows_in, commit.rows_written,
                       bytes_written=commit.bytes_written, version=commit.version)


def gold_sources(ctx: JobContext, spec: GoldTable) -> dict[str, DeltaTable]:
    """The lakehouse tables a gold table's SQL reads, by the name the SQL uses."""
    sources: dict[str, DeltaTable] = {}
    for name in spec.references:
        found = ctx.store.find(name)
        if found is None:
            known = ", ".join(t for _, t in ctx.store.tables()) or "none yet"
            raise ConfigError(f"Gold table {spec.target}: its SQL reads '{name}', which is not in the "
                              f"lakehouse (tables: {known}).",
                              hint="Fix the table name, or run the job that writes it first.")
        sources[name] = found[1]
    return sources


def _up_to_date(ctx: JobContext, spec: GoldTable, versions: dict[str, int], fingerprint: Fingerprint) -> int | None:
    """The table's version when nothing it is built from changed since its last commit, else None."""
    if ctx.refresh.forces(spec.target):
        return None
    dt = ctx.store.open("gold", spec.target)
    if dt is None:
        return None
    found = ctx.store.progress_many("gold", spec.target, (SOURCES,), dt, recent=(FINGERPRINT,))
    decision = decide(ctx, "gold", spec.target, fingerprint, found[FINGERPRINT][0] if FINGERPRINT in found else None)
    recorded = found.get(SOURCES)
    # a table without a recorded fingerprint (built before they existed) is rebuilt once to record one
    if decision.rebuild or FINGERPRINT not in found or recorded is None or recorded[0] != versions:
        return None
    version = dt.version()
    ctx.note(f"{spec.target}: up to date ({', '.join(f'{k}@v{v}' for k, v in versions.items())} unchanged, "
             f"version {version})")
    return version
