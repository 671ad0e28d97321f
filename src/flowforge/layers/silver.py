"""Silver: type, deduplicate and merge bronze rows, processing only unseen bronze versions.

The bronze version a silver table has consumed is recorded in the silver commit itself
(``flowforge.source_version``), so a crash between reading bronze and committing silver
simply reprocesses the same versions next time; merging on the key makes that idempotent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sandbox import check_type
from flowforge.engine.sql import quote
from flowforge.errors import CheckFailed, ConfigError, SourceSchemaError
from flowforge.layers import schema_drift_apply as schema_drift
from flowforge.layers import silver_merge
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.layers.fingerprint import FINGERPRINT, Decision, decide, rebuilt_since, silver_fingerprint
from flowforge.quality.gate import commit_checked
from flowforge.spec.jobs import AUDIT_COLUMNS, SilverJob, SilverTable
from flowforge.storage.delta import data_files
from flowforge.testing import fault_point

if TYPE_CHECKING:
    from deltalake import DeltaTable

SOURCE_VERSION = "source_version"
BRONZE_VIEW = "__bronze_new"


@register_executor("silver")
def run_silver(ctx: JobContext) -> JobResult:
    job = ctx.job
    assert isinstance(job, SilverJob)
    return JobResult(tuple(_silver_table(ctx, spec) for spec in job.tables))


def _silver_table(ctx: JobContext, spec: SilverTable) -> TableResult:
    ctx.checkpoint()
    if spec.strategy == "scd2":
        from flowforge.layers.scd2_batch import silver_scd2

        return silver_scd2(ctx, spec)
    found = ctx.store.find(spec.source)
    if found is None:
        raise ConfigError(f"Silver table {spec.target} reads {spec.source}, which does not exist yet.",
                          hint=f"Run the job that writes {spec.source} first.")
    _, bronze = found
    seen, decision = processed(ctx, spec, bronze)
    current = bronze.version()
    if seen == current:
        ctx.note(f"{spec.target}: {spec.source} has no new versions (at {current})")
        return TableResult(spec.target, "silver", 0, 0, note="up to date")
    if decision.rebuild:
        ctx.note(f"{spec.target}: rebuilding from all of {spec.source} (version {current}) in one overwrite commit")
    files = _new_files(ctx, bronze, seen)
    engine = DuckDBEngine()
    spill = silver_merge.prepare(engine, silver_merge.first_build(ctx, spec, decision.rebuild))  # streams
    try:
        engine.register_files(BRONZE_VIEW, files, bronze.schema().to_arrow(),
                              storage_options=ctx.store.storage_options)
        _check_columns(engine, spec)
        _check_keys(engine, spec)
        rows_in = int(engine.rows(f"SELECT count(*) FROM {quote(BRONZE_VIEW)}")[0][0])
        data = silver_merge.silver_rows(engine, spec, build_select(spec, BRONZE_VIEW), spill)
    except BaseException:
        silver_merge.discard(engine, spill)
        raise
    if spill is None:
        engine.close()
    drift = None
    if decision.rebuild:  # the table is rebuilt: its columns are what the batch has (values of dropped ones kept)
        data = schema_drift.rebuilt_batch(ctx, table=spec.target, source_table=bronze, data=data, keys=spec.keys)
    else:
        data, drift = schema_drift.silver_batch(ctx, table=spec.target, source_table=bronze,
                                                policy=spec.on_schema_change, data=data,
                                                keys=spec.keys if spec.strategy == "merge" else ())
    progress = {SOURCE_VERSION: {"table": spec.source, "version": current}, FINGERPRINT: decision.fingerprint.record()}
    fault_point("silver.before_commit")
    ctx.checkpoint()  # the last safe point before the commit
    merge = spec.strategy == "merge" and not decision.rebuild
    commit = commit_checked(ctx, spec.tests, layer="silver", table=spec.target, data=data, progress=progress,
                            mode="overwrite" if decision.rebuild else "merge" if merge else "append", keys=spec.keys,
                            write=lambda rows, p: ctx.store.overwrite("silver", spec.target, rows, p)
                            if decision.rebuild else schema_drift.committing(
                                ctx, drift, lambda: ctx.store.merge("silver", spec.target, rows, spec.keys, p) if merge
                                else ctx.store.append("silver", spec.target, rows, p)))
    fault_point("silver.committed")
    ctx.mirror.table_committed(table=spec.target, layer="silver", job=ctx.job.name, commit=commit,
                               schema=data.schema, progress=progress[SOURCE_VERSION])
    ctx.note(f"{spec.target}: {spec.strategy} of {getattr(data, 'num_rows', rows_in)} rows from {spec.source} versions "
             f"{'start' if seen is None else seen + 1}..{current}: {commit.rows_written} inserted, "
             f"{commit.rows_updated} updated (version {commit.version})")
    return TableResult(spec.target, "silver", rows_in, commit.rows_written, rows_updated=commit.rows_updated,
                       bytes_written=commit.bytes_written, version=commit.version)


def processed(ctx: JobContext, spec: SilverTable, bronze: DeltaTable) -> tuple[int | None, Decision]:
    """The bronze version the table has processed (None: start from the first), and whether its
    settings changed, a full refresh was asked for, or its bronze table was rebuilt by one since
    (then it is rebuilt from all of bronze)."""
    found = ctx.store.progress_many("silver", spec.target, (SOURCE_VERSION,), recent=(FINGERPRINT,))
    done = found.get(SOURCE_VERSION)
    decision = decide(ctx, "silver", spec.target, silver_fingerprint(spec),
                      found[FINGERPRINT][0] if FINGERPRINT in found else None)
    if decision.rebuild or not done or not isinstance(done[0], dict) or done[0].get("table") != spec.source:
        return None, decision
    seen = int(done[0]["version"])
    if seen < bronze.version() and rebuilt_since(bronze, seen):
        ctx.note(f"{spec.target}: {spec.source} was rebuilt by a full refresh since version {seen}")
        return None, replace(decision, rebuild=True)
    return seen, decision


def _new_files(ctx: JobContext, bronze: DeltaTable, seen: int | None) -> list[str]:
    """Files added to bronze after version ``seen`` (bronze is append-only), read from the Delta log
    so that a compaction of bronze is not mistaken for new rows."""
    from flowforge.layers.bronze_versions import new_data

    chunks = new_data(ctx.store, bronze, seen)
    if chunks is not None:
        return [f for chunk in chunks for f in chunk.files]
    current = data_files(bronze)
    if seen is None:
        return current
    old = ctx.store.open_version(bronze, seen)
    old_files = set(data_files(old)) if old is not None else set()
    if not old_files <= set(current):
        # files were rewritten (compaction): reprocess everything; merge keeps it idempotent
        ctx.note("bronze files were rewritten since the last run; reprocessing all of them")
        return current
    return [f for f in current if f not in old_files]


def _check_columns(engine: DuckDBEngine, spec: SilverTable) -> None:
    names = engine.columns(BRONZE_VIEW)
    wanted = [*spec.keys, *(spec.columns or ()), *spec.casts, *([spec.order_by] if spec.order_by else [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in names]
    if missing:
        raise SourceSchemaError(
            f"Silver table {spec.target}: column(s) {', '.join(missing)} not found in {spec.source}.",
            hint=f"Columns of {spec.source}: {', '.join(n for n in names if n not in AUDIT_COLUMNS)}.")


def _check_keys(engine: DuckDBEngine, spec: SilverTable) -> None:
    if not spec.keys:
        return
    cond = " OR ".join(f"{quote(k)} IS NULL" for k in spec.keys)
    nulls = int(engine.rows(f"SELECT count(*) FROM {quote(BRONZE_VIEW)} WHERE {cond}")[0][0])
    if nulls:
        raise CheckFailed(
            f"Silver table {spec.target}: {nulls} new row(s) of {spec.source} have a null key "
            f"({', '.join(spec.keys)}); nothing was merged.",
            hint="Fix the source rows, or filter them out with a query in the ingest job.")


def build_select(spec: SilverTable, source: str) -> str:
    """The DuckDB query that turns new bronze rows into silver rows."""
    if spec.columns:
        base = [quote(c) for c in spec.columns if c not in spec.casts]
    else:
        audit = ", ".join(quote(c) for c in (*AUDIT_COLUMNS, *spec.casts))
        base = [f"* EXCLUDE ({audit})"]
    casts = [f"CAST({quote(c)} AS {check_type(t)}) AS {quote(c)}" for c, t in spec.casts.items()]
    projection = ", ".join([*base, *casts, "_batch_id", "_ingestion_time"])
    sql = f"WITH typed AS (SELECT {projection} FROM {quote(source)})"
    last = "typed"
    if spec.keys:
        part = ", ".join(quote(k) for k in spec.keys)
        order = (f"{quote(spec.order_by)} DESC NULLS LAST, " if spec.order_by else "") + "_ingestion_time DESC"
        sql += (f", latest AS (SELECT * FROM typed QUALIFY row_number() OVER "
                f"(PARTITION BY {part} ORDER BY {order}) = 1)")
        last = "latest"
    select = []
    if spec.surrogate_key:
        key = " || '|' || ".join(f"coalesce(CAST({quote(k)} AS VARCHAR), '')" for k in spec.keys)
        select.append(f"md5({key}) AS {quote(spec.surrogate_key)}")
    select.append("* EXCLUDE (_batch_id, _ingestion_time)")
    select += [f"({expr}) AS {quote(name)}" for name, expr in spec.derived.items()]
    select += ["_batch_id", "CAST(now() AS TIMESTAMPTZ) AS _silver_updated_at"]
    return f"{sql} SELECT {', '.join(select)} FROM {last}"

