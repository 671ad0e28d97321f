"""The merge that applies a batch of typed change events to a silver table: one commit, with the
batch's progress in the commit metadata.

An SCD1 batch is applied by the file-pruned merge (``delta_merge``): the rows its
keys match are read first (from the files that can hold them), each event is resolved against the
row it would replace (an older event than the row's is dropped, a TOAST placeholder keeps the row's
value, a soft delete keeps the row and flags it), and the resolved rows are merged as upserts and
deletes, rewriting only the touched files. Truncates, SCD2 and tables it does not apply to go
through one delta-rs merge with the same conditions.

SCD1 keeps the newest event per key (deletes remove the row or set ``_is_deleted``); SCD2's
source rows (``cdc_scd2``) insert versions and close current ones. Truncates remove (or close)
every older row the batch does not touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.storage.delta import CommitResult, _encode, _storage_errors

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.layers.base import JobContext
    from flowforge.layers.cdc_sql import Plan
    from flowforge.spec.cdc import ApplyTable


@dataclass(frozen=True)
class Applied:
    commit: CommitResult
    inserted: int
    updated: int
    deleted: int


def arrow_schema(table: DeltaTable) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


# -- SCD1 ------------------------------------------------------------------------------

def _live(plan: Plan, source: str) -> str:
    cut = f" AND _ord > {plan.truncate[0]}" if plan.truncate else ""
    return f"SELECT * FROM {source} WHERE _op <> 't'{cut}"


def _resolved(plan: Plan, source: str) -> str:
    """Events with TOAST placeholders filled from earlier events of the same key in the batch."""
    if not plan.toasted:
        return _live(plan, source)
    part = ", ".join(quote(k) for k in plan.keys)
    extra = []
    for c in plan.toasted:
        t, v = quote("__t_" + c), quote(c)
        window = (f"last_value(CASE WHEN NOT {t} AND _op <> 'd' THEN struct_pack(v := {v}) END IGNORE NULLS) "
                  f"OVER (PARTITION BY {part} ORDER BY _ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
        extra.append(f"{window} AS {quote('__r_' + c)}")
    inner = f"SELECT *, {', '.join(extra)} FROM ({_live(plan, source)})"
    fixes = ", ".join(f"CASE WHEN {quote('__t_' + c)} THEN {quote('__r_' + c)}.v ELSE {quote(c)} END AS {quote(c)}, "
                      f"{quote('__t_' + c)} AND {quote('__r_' + c)} IS NULL AS {quote('__t_' + c)}"
                      for c in plan.toasted)
    drop = ", ".join(quote(x) for c in plan.toasted for x in (c, "__t_" + c, "__r_" + c))
    return f"SELECT * EXCLUDE ({drop}), {fixes} FROM ({inner})"


def scd1_sql(plan: Plan, soft: bool, source: str = "typed") -> str:
    """The newest event per key, TOAST values resolved, as merge source rows."""
    part = ", ".join(quote(k) for k in plan.keys)
    cols = ", ".join(quote(c) for c in plan.columns)
    flags = "".join(f", {quote('__t_' + c)}" for c in plan.toasted)
    deleted = ", _op = 'd' AS _is_deleted" if soft else ""
    return (f"SELECT {cols}, _op, _position, _source_ts{deleted}, _op = 'd' AS __del{flags}, "
            f"CAST(now() AS TIMESTAMPTZ) AS _silver_updated_at FROM ({_resolved(plan, source)}) "
            f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY _ord DESC) = 1")


# -- writing ---------------------------------------------------------------------------

def write(ctx: JobContext, spec: ApplyTable, plan: Plan, silver: DeltaTable | None, source: pa.Table,
          progress: dict[str, Any]) -> Applied:
    from deltalake import CommitProperties

    loc = ctx.store.location("silver", spec.target)
    internal = [n for n in source.column_names if n.startswith("__")]
    if silver is None:
        if spec.strategy == "scd1" and not spec.soft_delete:
            import pyarrow.compute as pc

            source = source.filter(pc.invert(source.column("__del")))
        commit = ctx.store.overwrite("silver", spec.target, source.drop_columns(internal), progress)
        return Applied(commit, commit.rows_written, 0, 0)
    props = CommitProperties(custom_metadata=_encode(progress))
    by_files = _scd1_by_files(spec, plan, silver, source, props, ctx.store.write_options(loc))
    if by_files is not None:
        return by_files
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
            # a marker deletes a rebuilt key's versions; an absorbed version (same source transaction as
            # the new one) goes too
            m = m.when_matched_delete(predicate="s.__marker OR (s.__close AND s.__absorb)")
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
    inserted, updated = int(metrics["num_target_rows_inserted"]), int(metrics["num_target_rows_updated"])
    deleted = int(metrics["num_target_rows_deleted"])
    commit = CommitResult(version=silver.version(), rows_written=inserted, rows_updated=updated + deleted,
                          bytes_written=int(source.nbytes))
    return Applied(commit, inserted, updated, deleted)


# the columns a soft delete sets; the row's other columns stay as they were
_SOFT_DELETE_SETS = ("_is_deleted", "_op", "_position", "_source_ts", "_silver_updated_at")


def _scd1_by_files(spec: ApplyTable, plan: Plan, silver: DeltaTable, source: pa.Table, props: Any,
                   options: dict[str, str] | None = None) -> Applied | None:
    """An SCD1 batch without a truncate through the file-pruned merge (None where it does not apply)."""
    from flowforge.storage import delta_merge
    from flowforge.storage.delta import _hooks

    loc = silver.table_uri
    if spec.strategy != "scd1" or plan.truncate or not delta_merge.applies(silver, tuple(plan.keys)):
        return None
    rows = resolve_scd1(silver, plan, source, spec.soft_delete, options)
    if rows is None:
        return None
    with _storage_errors("merge into", loc, options):
        done = delta_merge.merge_by_files(silver, rows, tuple(plan.keys), commit_properties=props,
                                          hooks=_hooks(silver), delete_flag="__del", storage_options=options)
    if done is None:
        return None
    commit = CommitResult(version=done.version, rows_written=done.inserted, rows_updated=done.updated + done.deleted,
                          bytes_written=int(source.nbytes))
    return Applied(commit, done.inserted, done.updated, done.deleted)


def resolve_scd1(silver: DeltaTable, plan: Plan, source: pa.Table, soft: bool,
                 options: dict[str, str] | None = None) -> pa.Table | None:
    """The batch's rows as whole-row upserts (``__del`` false) and deletes (``__del`` true), each
    decided against the silver row of its key, as the delta-rs merge's conditions decide: an event
    older than the row (by ``_position``) leaves the row as it is; a TOAST placeholder keeps the
    row's value; a soft delete keeps the row's values but for the columns it sets; columns the
    batch lacks keep the row's values. None if a column of the batch does not cast to silver's type."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from flowforge.storage import delta_merge

    keys = list(plan.keys)
    internal = [n for n in source.column_names if n.startswith("__")]
    out = [n for n in source.column_names if n not in internal]
    target = arrow_schema(silver)
    missing = [c for c in target.names if c not in out]
    soft_deletes = soft and bool(pc.any(source.column("__del")).as_py())
    wanted = target.names if soft_deletes else ["_position", *plan.toasted, *missing]
    wanted = [c for c in dict.fromkeys(wanted) if c in target.names and c not in keys]
    old = delta_merge.matched_rows(silver, source.select(keys), tuple(keys), wanted, options)
    # each event's silver row (a key-only join, then one take per column)
    left = source.select(keys).append_column("__s", pa.array(np.arange(source.num_rows)))
    right = old.select(keys).append_column("__t", pa.array(np.arange(old.num_rows)))
    try:
        left = pa.table({**{k: left.column(k).cast(target.field(k).type) for k in keys}, "__s": left.column("__s")})
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    pairs = left.join(right, keys=keys, join_type="inner", use_threads=False)
    at = np.full(source.num_rows, -1, dtype=np.int64)
    at[pairs.column("__s").to_numpy()] = pairs.column("__t").to_numpy()
    found = at >= 0
    row = pa.array(np.where(found, at, 0)) if old.num_rows else None

    def theirs(c: str) -> pa.Array:
        if row is None:
            return pa.nulls(source.num_rows, target.field(c).type)
        return pc.if_else(pa.array(found), old.column(c).take(row), pa.scalar(None, target.field(c).type))

    def ours(c: str) -> pa.ChunkedArray:
        col = source.column(c)
        return col.cast(target.field(c).type) if c in target.names else col

    try:
        deleted = pc.fill_null(source.column("__del"), False)
        if "_position" in target.names and old.num_rows:
            newer = pc.fill_null(pc.greater_equal(ours("_position"), theirs("_position")), False)
            keep = pc.or_(pc.invert(pa.array(found)), newer)
        else:
            keep = pa.array(np.ones(source.num_rows, dtype=bool))
        cols: dict[str, Any] = {}
        for c in out:
            value: Any = ours(c)
            if c in plan.toasted and c in target.names:
                value = pc.if_else(pc.and_(pa.array(found), pc.fill_null(source.column("__t_" + c), False)),
                                   theirs(c), value)
            if soft_deletes and c in target.names and c not in _SOFT_DELETE_SETS and c not in keys:
                value = pc.if_else(pc.and_(pa.array(found), deleted), theirs(c), value)
            cols[c] = value
        for c in missing:
            cols[c] = theirs(c)
        cols["__del"] = pc.and_(deleted, pa.scalar(not soft))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pa.table(cols).filter(keep)


def _ts_literal(ts: Any) -> str:
    if ts is None:
        return "NULL"
    return f"arrow_cast('{ts.isoformat()}', 'Timestamp(Microsecond, Some(\"UTC\"))')"


def empty_commit(ctx: JobContext, spec: ApplyTable, silver: DeltaTable | None,
                 progress: dict[str, Any]) -> CommitResult:
    """No events for this table in the new bronze versions: record that they were seen."""
    if silver is None:
        return CommitResult(version=-1, rows_written=0, bytes_written=0)
    empty = arrow_schema(silver).empty_table()
    return ctx.store.append("silver", spec.target, empty, progress)
