"""Silver for CDC: apply change events to a table, SCD1 (latest state) or SCD2 (history).

Only bronze versions the silver table has not seen are read, in chunks of about
``commit_every`` events (``bronze_versions``); the version a chunk completes goes into its
silver commit (``flowforge.source_version``), so a crash anywhere reprocesses at most that
chunk and the positions make that idempotent: every silver row keeps the source position it
was built from (``_position``) and an event is applied to a row only when it is newer. Events
are ordered by source position, collapsed per key, and merged with one delta-rs merge, one
commit per chunk (``cdc_merge``): upserts, deletes (or ``_is_deleted`` with ``soft_delete``),
truncates (every older row removed, or closed in SCD2), key changes (``cdc_keys``), columns
added with a default (``cdc_defaults``), new snapshots (``cdc_resync``) and PostgreSQL
unchanged-TOAST values (kept from the previous version of the row).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.layers.base import JobContext, TableResult
from flowforge.layers.bronze_versions import Chunk, new_data
from flowforge.layers.cdc_defaults import FLAGS, backfill_silver, fill_typed, flag_notes, flags, widen
from flowforge.layers.cdc_keys import carry_moved_toast
from flowforge.layers.cdc_merge import Applied, arrow_schema, empty_commit, scd1_sql, write
from flowforge.layers.cdc_resync import RESYNC, add_deletes, newer
from flowforge.layers.cdc_scd2 import SILVER, late_rebuild, scd2_source_sql
from flowforge.layers.cdc_sql import (
    EVENTS,
    check_events,
    events_view,
    plan_columns,
    table_filter,
    typed_sql,
)
from flowforge.layers.silver import SOURCE_VERSION, _new_files
from flowforge.quality.gate import check_changes
from flowforge.storage.delta import data_files
from flowforge.testing import fault_point

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.spec.cdc import ApplyTable, CdcJob

BRONZE_NEW = "__bronze_new"
HIGH = "cdc_high"  # the newest source position applied to the silver table
PROGRESS = (SOURCE_VERSION, HIGH, FLAGS, RESYNC)  # what a silver CDC table's commits carry


def apply_table(ctx: JobContext, job: CdcJob, spec: ApplyTable) -> TableResult:
    bronze = ctx.store.open("bronze", job.target)
    if bronze is None:
        ctx.note(f"{spec.target}: no change events yet")
        return TableResult(spec.target, "silver", 0, 0, note="up to date")
    silver = ctx.store.open("silver", spec.target)
    known = ctx.store.progress_many("silver", spec.target, PROGRESS, silver) if silver is not None else {}
    done = known.get(SOURCE_VERSION)
    seen = int(done[0]["version"]) if done and done[0].get("table") == job.target else None
    chunks = new_data(ctx.store, bronze, seen, job.commit_every)
    if chunks is None:  # the log cannot tell: compare snapshots, one chunk
        files = _new_files(ctx, bronze, seen)
        chunks = [Chunk(bronze.version(), tuple(files), 0)] if files or seen is None else []
    if not chunks:
        ctx.note(f"{spec.target}: {job.target} has no new change events (at version {bronze.version()})")
        return TableResult(spec.target, "silver", 0, 0, note="up to date")
    events = inserted = updated = deleted = written = 0
    version = None
    for index, chunk in enumerate(chunks):
        if index:  # what the previous chunk committed
            silver = ctx.store.open("silver", spec.target)
            known = ctx.store.progress_many("silver", spec.target, PROGRESS, silver) if silver is not None else {}
        unapplied = {f for later in chunks[index:] for f in later.files}  # this chunk's files and later ones
        n, applied = _apply_chunk(ctx, job, spec, bronze, chunk, silver, {k: v[0] for k, v in known.items()},
                                  unapplied)
        ctx.note(f"{spec.target}: {spec.strategy} applied {n} change events from {job.target} versions "
                 f"{'start' if seen is None else seen + 1}..{chunk.upto}: {applied.inserted} inserted, "
                 f"{applied.updated} updated, {applied.deleted} deleted (version {applied.commit.version})")
        seen = chunk.upto
        events += n
        inserted, updated, deleted = inserted + applied.inserted, updated + applied.updated, deleted + applied.deleted
        written += applied.commit.bytes_written
        version = applied.commit.version
    return TableResult(spec.target, "silver", events, inserted, rows_updated=updated + deleted, bytes_written=written,
                       version=version)


def _apply_chunk(ctx: JobContext, job: CdcJob, spec: ApplyTable, bronze: DeltaTable, chunk: Chunk,
                 silver: DeltaTable | None, known: dict[str, Any], unapplied: set[str]) -> tuple[int, Applied]:
    engine = DuckDBEngine()
    try:
        engine.register_files(BRONZE_NEW, list(chunk.files), bronze.schema().to_arrow())
        found = events_view(engine, BRONZE_NEW, spec)
        n_events = int(engine.rows(f"SELECT count(*) FROM {EVENTS}")[0][0])
        existing = arrow_schema(silver) if silver is not None else None
        progress: dict[str, Any] = {SOURCE_VERSION: {"table": job.target, "version": chunk.upto}}
        high = str(known[HIGH]) if known.get(HIGH) is not None else None
        pending = newer(known.get(RESYNC), found)
        settle = pending is not None and chunk.settled
        # a new snapshot of an emptied table has no events, yet its rows must go
        plan = plan_columns(engine, spec, existing) if n_events or (settle and existing is not None) else None
        if plan is None:
            return 0, Applied(empty_commit(ctx, spec, silver, {**progress, RESYNC: pending}), 0, 0, 0)
        flagged = flags(known.get(FLAGS), plan, existing, reset=settle)
        progress[FLAGS] = flagged
        progress[RESYNC] = None if settle else pending
        for line in flag_notes(spec, flagged, ctx.workflow, job.name):
            ctx.note(line)
        if plan.widen and silver is not None:
            ctx.note(f"{spec.target}: " + widen(ctx, spec, plan, silver, dict(known)))
            silver = ctx.store.open("silver", spec.target)
            existing = arrow_schema(silver) if silver is not None else None
        engine.con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {typed_sql(plan)}")
        check_events(engine, spec, plan, "typed")
        fill_typed(engine, plan, EVENTS)
        old_view = None
        if high is not None and silver is not None:
            old = sorted(set(data_files(bronze)) - unapplied)  # the events silver already applied
            if old:
                engine.register_files("__bronze_old", old, bronze.schema().to_arrow())
                old_view = "__bronze_old"
        if silver is not None and existing is not None:
            for line in backfill_silver(ctx, spec, plan, engine, silver, existing, EVENTS):
                ctx.note(f"{spec.target}: {line}")
            engine.register_delta(SILVER, silver)
        carry_moved_toast(engine, plan, EVENTS, SILVER if silver is not None else None, spec.strategy == "scd2")
        if settle:
            assert pending is not None
            current = SILVER if silver is not None else None
            gone = add_deletes(engine, plan, pending, bronze, table_filter(spec), current, spec.strategy,
                               spec.soft_delete)
            if gone:
                ctx.note(f"{spec.target}: {gone} row(s) absent from the new snapshot at {pending['position']} "
                         f"{'closed as deleted' if spec.strategy == 'scd2' else 'removed'}")
                if plan.truncate:
                    plan = replace(plan, truncate=(plan.truncate[0] * 2, *plan.truncate[1:]))
        newest = engine.rows("SELECT max(_position) FROM typed")[0][0]
        progress[HIGH] = max(x for x in (high, newest) if x is not None) if (high or newest) else None
        if spec.strategy == "scd1":
            # keys with late events get their row recomputed from all of their events in bronze: a
            # newer delete, or a TOAST value a newer event took from the wrong predecessor, is settled
            found_late = (late_rebuild(engine, plan, high, old_view, table_filter(spec)) if silver is not None
                          else None)
            if found_late is None:
                sql = scd1_sql(plan, spec.soft_delete)
            else:
                full, rebuilt = found_late
                ctx.note(f"{spec.target}: {rebuilt} key(s) with late events recomputed from bronze")
                sql = (f"{scd1_sql(plan, spec.soft_delete, '__normal')} UNION ALL BY NAME "
                       f"{scd1_sql(full, spec.soft_delete, '__rebuild')}")
                plan = replace(plan, toasted=full.toasted)
            source = engine.query(sql, f"silver table {spec.target}")
        else:
            have = tuple(existing.names) if existing is not None else None
            sql, rebuilt = scd2_source_sql(engine, plan, have, high, old_view, table_filter(spec))
            if rebuilt:
                ctx.note(f"{spec.target}: history of {rebuilt} key(s) with late events rebuilt from bronze")
            source = engine.query(sql, f"silver table {spec.target}")
        if plan.truncate:
            ctx.note(f"{spec.target}: a TRUNCATE at {plan.truncate[1]} removes every older row")
        check_changes(ctx, spec.tests, table=spec.target, source=source, keys=plan.keys,
                      history=spec.strategy == "scd2")
        fault_point("cdc.silver.apply")
        applied = write(ctx, spec, plan, silver, source, progress)
    finally:
        engine.close()
    fault_point("cdc.silver.committed")
    final = silver if silver is not None else ctx.store.open("silver", spec.target)  # a merge updated ``silver``
    if final is not None:
        ctx.mirror.table_committed(table=spec.target, layer="silver", job=ctx.job.name, commit=applied.commit,
                                   schema=arrow_schema(final), progress=progress[SOURCE_VERSION])
    return n_events, applied


