"""Silver for CDC: apply change events to a table, SCD1 (latest state) or SCD2 (history).

Only bronze versions the silver table has not seen are read; their number goes into the
silver commit (``flowforge.source_version``), so a crash anywhere reprocesses them and the
positions make that idempotent: every silver row keeps the source position it was built
from (``_position``) and an event is applied to a row only when it is newer. Events are
ordered by source position, collapsed per key, and merged with one delta-rs merge, one
commit: upserts, deletes (or ``_is_deleted`` with ``soft_delete``), truncates (every older
row removed, or closed in SCD2) and PostgreSQL unchanged-TOAST values (kept from the
previous version of the row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sql import quote
from flowforge.layers.base import JobContext, TableResult
from flowforge.layers.cdc_scd2 import SILVER, scd2_source_sql
from flowforge.layers.cdc_sql import (
    EVENTS,
    Plan,
    check_events,
    drop_superseded,
    events_view,
    plan_columns,
    table_filter,
    typed_sql,
)
from flowforge.layers.silver import SOURCE_VERSION, _new_files
from flowforge.quality.gate import check_changes
from flowforge.storage.delta import CommitResult, _encode, _storage_errors
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.spec.cdc import ApplyTable, CdcJob

BRONZE_NEW = "__bronze_new"
HIGH = "cdc_high"  # the newest source position applied to the silver table


def apply_table(ctx: JobContext, job: CdcJob, spec: ApplyTable) -> TableResult:
    bronze = ctx.store.open("bronze", job.target)
    if bronze is None:
        ctx.note(f"{spec.target}: no change events yet")
        return TableResult(spec.target, "silver", 0, 0, note="up to date")
    done = ctx.store.progress("silver", spec.target, SOURCE_VERSION)
    seen = int(done[0]["version"]) if done and done[0].get("table") == job.target else None
    current = bronze.version()
    if seen == current:
        ctx.note(f"{spec.target}: {job.target} has no new versions (at {current})")
        return TableResult(spec.target, "silver", 0, 0, note="up to date")
    files = _new_files(ctx, bronze, seen)
    silver = ctx.store.open("silver", spec.target)
    engine = DuckDBEngine()
    try:
        engine.register_files(BRONZE_NEW, files, bronze.schema().to_arrow())
        events_view(engine, BRONZE_NEW, spec)
        n_events = int(engine.rows(f"SELECT count(*) FROM {EVENTS}")[0][0])
        existing = _arrow_schema(silver) if silver is not None else None
        plan = plan_columns(engine, spec, existing) if n_events else None
        progress: dict[str, Any] = {SOURCE_VERSION: {"table": job.target, "version": current}}
        high_found = ctx.store.progress("silver", spec.target, HIGH)
        high = str(high_found[0]) if high_found else None
        if plan is None:
            commit = _empty_commit(ctx, spec, silver, progress)
        else:
            engine.con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {typed_sql(plan)}")
            check_events(engine, spec, plan, "typed")
            old_view = None
            if high is not None and silver is not None:
                old = sorted(set(bronze.file_uris()) - set(files))
                if old:
                    engine.register_files("__bronze_old", old, bronze.schema().to_arrow())
                    old_view = "__bronze_old"
            newest = engine.rows("SELECT max(_position) FROM typed")[0][0]
            progress[HIGH] = max(x for x in (high, newest) if x is not None) if (high or newest) else None
            if silver is not None:
                engine.register_delta(SILVER, silver)
            if spec.strategy == "scd1":
                if old_view is not None and high is not None:
                    stale = drop_superseded(engine, plan, old_view, high, table_filter(spec))
                    if stale:
                        ctx.note(f"{spec.target}: {stale} late event(s) skipped: a newer delete already applied")
                source = engine.query(_scd1_sql(plan, spec.soft_delete), f"silver table {spec.target}")
            else:
                have = tuple(existing.names) if existing is not None else None
                sql, rebuilt = scd2_source_sql(engine, plan, have, high, old_view, table_filter(spec))
                if rebuilt:
                    ctx.note(f"{spec.target}: history of {rebuilt} key(s) with late events rebuilt from bronze")
                source = engine.query(sql, f"silver table {spec.target}")
            check_changes(ctx, spec.tests, table=spec.target, source=source, keys=plan.keys,
                          history=spec.strategy == "scd2")
            fault_point("cdc.silver.apply")
            commit = _write(ctx, spec, plan, silver, source, progress)
    finally:
        engine.close()
    fault_point("cdc.silver.committed")
    final = ctx.store.open("silver", spec.target)
    if final is not None:
        ctx.mirror.table_committed(table=spec.target, layer="silver", job=ctx.job.name, commit=commit,
                                   schema=_arrow_schema(final), progress=progress[SOURCE_VERSION])
    ctx.note(f"{spec.target}: {spec.strategy} applied {n_events} change events from {job.target} versions "
             f"{'start' if seen is None else seen + 1}..{current}: {commit.rows_written} inserted, "
             f"{commit.rows_updated} updated (version {commit.version})")
    return TableResult(spec.target, "silver", n_events, commit.rows_written, rows_updated=commit.rows_updated,
                       bytes_written=commit.bytes_written, version=commit.version)


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


# -- SCD1 ------------------------------------------------------------------------------

def _live(plan: Plan) -> str:
    cut = f" AND _ord > {plan.truncate[0]}" if plan.truncate else ""
    return f"SELECT * FROM typed WHERE _op <> 't'{cut}"


def _resolved(plan: Plan) -> str:
    """Events with TOAST placeholders filled from earlier events of the same key in the batch."""
    if not plan.toasted:
        return _live(plan)
    part = ", ".join(quote(k) for k in plan.keys)
    extra = []
    for c in plan.toasted:
        t, v = quote("__t_" + c), quote(c)
        window = (f"last_value(CASE WHEN NOT {t} AND _op <> 'd' THEN struct_pack(v := {v}) END IGNORE NULLS) "
                  f"OVER (PARTITION BY {part} ORDER BY _ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
        extra.append(f"{window} AS {quote('__r_' + c)}")
    inner = f"SELECT *, {', '.join(extra)} FROM ({_live(plan)})"
    fixes = ", ".join(f"CASE WHEN {quote('__t_' + c)} THEN {quote('__r_' + c)}.v ELSE {quote(c)} END AS {quote(c)}, "
                      f"{quote('__t_' + c)} AND {quote('__r_' + c)} IS NULL AS {quote('__t_' + c)}"
                      for c in plan.toasted)
    drop = ", ".join(quote(x) for c in plan.toasted for x in (c, "__t_" + c, "__r_" + c))
    return f"SELECT * EXCLUDE ({drop}), {fixes} FROM ({inner})"


def _scd1_sql(plan: Plan, soft: bool) -> str:
    part = ", ".join(quote(k) for k in plan.keys)
    cols = ", ".join(quote(c) for c in plan.columns)
    flags = "".join(f", {quote('__t_' + c)}" for c in plan.toasted)
    deleted = ", _op = 'd' AS _is_deleted" if soft else ""
    return (f"SELECT {cols}, _op, _position, _source_ts{deleted}, _op = 'd' AS __del{flags}, "
            f"CAST(now() AS TIMESTAMPTZ) AS _silver_updated_at FROM ({_resolved(plan)}) "
            f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY _ord DESC) = 1")


# -- writing ---------------------------------------------------------------------------

def _write(ctx: JobContext, spec: ApplyTable, plan: Plan, silver: DeltaTable | None, source: pa.Table,
           progress: dict[str, Any]) -> CommitResult:
    from deltalake import CommitProperties

    loc = ctx.store.location("silver", spec.target)
    internal = [n for n in source.column_names if n.startswith("__")]
    if silver is None:
        if spec.strategy == "scd1" and not spec.soft_delete:
            import pyarrow.compute as pc

            source = source.filter(pc.invert(source.column("__del")))
        return ctx.store.overwrite("silver", spec.target, source.drop_columns(internal), progress)
    props = CommitProperties(custom_metadata=_encode(progress))
    match = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in plan.keys)
    out = [n for n in source.column_names if n not in internal]
    insert = {quote(c): f"s.{quote(c)}" for c in out}
    with _storage_errors("merge into", loc):
        if spec.strategy == "scd1":
            # equal positions: a distinct event (bronze dropped replays) or the same one again (idempotent)
            newer = "s._position >= t._position"
            update = dict(insert)
            for c in plan.toasted:
                update[quote(c)] = f"CASE WHEN s.{quote('__t_' + c)} THEN t.{quote(c)} ELSE s.{quote(c)} END"
            m = silver.merge(source, predicate=match, source_alias="s", target_alias="t", merge_schema=True,
                             commit_properties=props)
            if spec.soft_delete:
                gone = {"_is_deleted": "true", "_op": "s._op", "_position": "s._position",
                        "_source_ts": "s._source_ts", "_silver_updated_at": "s._silver_updated_at"}
                m = m.when_matched_update(gone, predicate=f"{newer} AND s.__del")
            else:
                m = m.when_matched_delete(predicate=f"{newer} AND s.__del")
            m = m.when_matched_update(update, predicate=f"{newer} AND NOT s.__del")
            m = m.when_not_matched_insert(insert, predicate=None if spec.soft_delete else "NOT s.__del")
            if plan.truncate:
                older = f"t._position <= '{plan.truncate[1]}'"
                if spec.soft_delete:
                    m = m.when_not_matched_by_source_update({"_is_deleted": "true", "_op": "'t'"}, predicate=older)
                else:
                    m = m.when_not_matched_by_source_delete(predicate=older)
        else:
            # closing rows match a key's current version; marker rows match every version of a
            # key whose history is rebuilt (they are deleted and the rebuilt versions inserted)
            m = silver.merge(source, predicate=f"((s.__close AND t.is_current) OR s.__marker) AND {match}",
                             source_alias="s", target_alias="t", merge_schema=True, commit_properties=props)
            m = m.when_matched_delete(predicate="s.__marker")
            m = m.when_matched_update({"valid_to": "s.valid_to", "_valid_to_position": "s._valid_to_position",
                                       "is_current": "false", "is_deleted": "s.is_deleted",
                                       "_silver_updated_at": "s._silver_updated_at"}, predicate="s.__close")
            m = m.when_not_matched_insert(insert, predicate="NOT s.__close AND NOT s.__marker")
            if plan.truncate:
                # truncate closes current rows of keys with no event in this batch too
                m = m.when_not_matched_by_source_update(
                    {"is_current": "false", "is_deleted": "true", "valid_to": _ts_literal(plan.truncate[2]),
                     "_valid_to_position": f"'{plan.truncate[1]}'"},
                    predicate=f"t.is_current AND t._position <= '{plan.truncate[1]}'")
        metrics = m.execute()
    silver.update_incremental()
    return CommitResult(version=silver.version(), rows_written=int(metrics["num_target_rows_inserted"]),
                        rows_updated=int(metrics["num_target_rows_updated"]) + int(metrics["num_target_rows_deleted"]),
                        bytes_written=int(source.nbytes))


def _ts_literal(ts: Any) -> str:
    if ts is None:
        return "NULL"
    return f"arrow_cast('{ts.isoformat()}', 'Timestamp(Microsecond, Some(\"UTC\"))')"


def _empty_commit(ctx: JobContext, spec: ApplyTable, silver: DeltaTable | None,
                  progress: dict[str, Any]) -> CommitResult:
    """No events for this table in the new bronze versions: record that they were seen."""
    if silver is None:
        return CommitResult(version=-1, rows_written=0, bytes_written=0)
    empty = _arrow_schema(silver).empty_table()
    return ctx.store.append("silver", spec.target, empty, progress)
