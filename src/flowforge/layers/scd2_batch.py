"""SCD2 for batch sources (``strategy: scd2`` on silver and gold tables).

Every run rebuilds the history of the keys it touches and merges only the difference, in one
Delta commit:

1. *Events*: the new rows (``__at`` = when the change happened), plus the stored versions of the
   touched keys as events at their ``valid_from``, plus a delete event wherever a stored version
   ends without a successor (a closed key) and, with ``close_deleted``, for keys missing from the
   live set. One event per key and instant survives (a new row wins over a stored one, the
   latest-ingested new row over earlier ones), so replaying an input changes nothing.
2. *Walk*: in time order per key, an event opens a version when it is the first, follows a
   delete, or its tracked values differ from the previous event's; a delete ends the open version.
   Other events update the open version's untracked columns (type 1).
3. *Versions*: each version runs from its first event to the next version's start or delete;
   the last one without a delete is current. Never two current rows, never a gap or an overlap
   between consecutive versions.
4. *Diff*: versions new or changed against the stored ones are upserted on (keys, valid_from),
   stored versions that no longer exist are deleted.

A stored version keeps its first row (``valid_from``) and its newest (``_changed_at``). A late row,
older than rows already applied, is placed by its time; when it falls inside a version it splits
it, and the part before it keeps that version's newest values (the rows in between are not
kept). Re-running a batch changes nothing; re-feeding *older* batches after late rows may refine
such split versions.

The caller provides the view ``__scd2_in`` (data columns and ``__at``, ``__first``, ``__seq``)
in a DuckDB engine; ``silver_scd2`` and ``gold_scd2`` below build it from new bronze rows and
from gold SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sql import quote
from flowforge.errors import CheckFailed, ConfigError, SourceSchemaError
from flowforge.layers.base import JobContext, TableResult
from flowforge.storage.delta import CommitResult, _encode, _storage_errors, conform_reader
from flowforge.testing import fault_point

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.spec.jobs import GoldTable, SilverTable
    from flowforge.storage import LakehouseStore

INCOMING = "__scd2_in"
LIVE = "__scd2_live"
TARGET = "__scd2_target"
_INTERNAL = ("__at", "__first", "__seq", "__ingested")
CHANGED = "_changed_at"  # when the newest change folded into a version happened


@dataclass(frozen=True)
class Scd2Plan:
    """What to version: ``keys``, data ``columns`` (without keys), ``track``ed ones (default: all data
    columns), the three SCD2 column names, an optional per-version surrogate key, and ``meta``:
    columns written on every row but never compared (``_batch_id``, ``_silver_updated_at``)."""

    keys: tuple[str, ...]
    columns: tuple[str, ...]
    track: tuple[str, ...]
    valid_from: str = "valid_from"
    valid_to: str = "valid_to"
    is_current: str = "is_current"
    surrogate_key: str | None = None
    meta: tuple[str, ...] = ()
    stamped: str | None = None  # a meta column set to the time of writing
    close_deleted: bool = False
    # Versions timed by the clock (run or ingestion time) never receive late rows, so a row equal to
    # the previous one is no change at all and ``_changed_at`` stays. With a ``changed_at`` column a
    # late row may still arrive, so every row counts: ``_changed_at`` is the newest row seen, which
    # keeps the newest row's values current whatever arrives later.
    drop_unchanged: bool = False

    @property
    def compared(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.meta)

    def output(self) -> list[str]:
        sk = [self.surrogate_key] if self.surrogate_key else []
        return [*sk, *self.keys, *self.columns, self.valid_from, self.valid_to, self.is_current, CHANGED]


@dataclass(frozen=True)
class Scd2Changes:
    """The rows to merge (``__action``: insert, update, delete) and what they amount to."""

    rows: pa.Table
    inserted: int
    updated: int
    deleted: int
    keys_touched: int

    @property
    def empty(self) -> bool:
        return not (self.inserted or self.updated or self.deleted)


def plan_for(engine: DuckDBEngine, spec: SilverTable | GoldTable, *, meta: tuple[str, ...] = (),
             stamped: str | None = None, surrogate_key: str | None = None, clock: bool = False) -> Scd2Plan:
    """The plan of ``spec`` over the columns of ``__scd2_in``; unknown column names are errors."""
    names = [c for c in engine.columns(INCOMING) if c not in _INTERNAL]
    missing = [c for c in (*spec.keys, *spec.track) if c not in names]
    if missing:
        raise SourceSchemaError(f"Table {spec.target}: column(s) {', '.join(missing)} of 'keys'/'track' are not in "
                                f"its input.", hint=f"Input columns: {', '.join(names)}.")
    scd2_names = {spec.valid_from, spec.valid_to, spec.is_current, CHANGED, *([surrogate_key] if surrogate_key else [])}
    clash = sorted(scd2_names & set(names))
    if clash:
        raise SourceSchemaError(f"Table {spec.target}: its input already has column(s) {', '.join(clash)}, which "
                                f"the SCD2 history writes.", hint="Rename them in the input, or set valid_from, "
                                "valid_to, is_current or surrogate_key to other names.")
    columns = tuple(c for c in names if c not in spec.keys)
    track = tuple(spec.track) or tuple(c for c in columns if c not in meta)
    return Scd2Plan(keys=tuple(spec.keys), columns=columns, track=track, valid_from=spec.valid_from,
                    valid_to=spec.valid_to, is_current=spec.is_current, surrogate_key=surrogate_key, meta=meta,
                    stamped=stamped, close_deleted=spec.close_deleted, drop_unchanged=clock)


def register_target(engine: DuckDBEngine, target: DeltaTable | None) -> None:
    """Register the stored history as ``__scd2_target`` (before any user SQL seals the engine)."""
    if target is not None:
        engine.register_delta(TARGET, target)


def materialize(engine: DuckDBEngine, name: str, sql: str, context: str) -> None:
    """Run a user's SELECT into a temporary table, sandboxed as ``DuckDBEngine.query`` runs it: the SQL
    is checked first and the engine sealed (only the registered tables' files stay readable)."""
    from flowforge.engine.sandbox import UnsafeSQL, check_query
    from flowforge.errors import UserCodeError

    try:
        check_query(sql, context)
    except UnsafeSQL as exc:
        raise UserCodeError(str(exc), hint="User SQL reads lakehouse tables by name; files, settings and other "
                                           "databases are out of its reach.") from None
    engine.seal()
    run_sql(engine, f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS {sql}", context)


def scd2_changes(engine: DuckDBEngine, plan: Scd2Plan, has_target: bool,
                 deleted_at: str | None = None) -> Scd2Changes:
    """The merge rows that bring the stored history (``__scd2_target``, see ``register_target``) to the
    history implied by ``__scd2_in`` (and ``__scd2_live``, the live keys, with ``close_deleted``;
    ``deleted_at`` is the SQL instant of those deletes)."""
    k = [quote(c) for c in plan.keys]
    keys = ", ".join(k)
    vf, vt, cur, ch = (quote(c) for c in (plan.valid_from, plan.valid_to, plan.is_current, CHANGED))
    if has_target:
        have = set(engine.columns(TARGET))
        missing = [c for c in (*plan.keys, plan.valid_from, plan.valid_to, plan.is_current, CHANGED) if c not in have]
        if missing:
            raise SourceSchemaError(f"The existing table has no column(s) {', '.join(missing)}, so it is not an "
                                    f"SCD2 history with these keys.",
                                    hint="Give the table a new target name, or drop the old table first.")
    else:
        engine.con.execute(f"CREATE OR REPLACE TEMP TABLE {TARGET} AS {_empty_target(plan)}")
        have = set(engine.columns(TARGET))
    x = engine.con.execute
    touched = f"SELECT DISTINCT {keys} FROM {INCOMING}"
    if plan.close_deleted:
        touched += f" UNION SELECT {keys} FROM {TARGET} WHERE {cur}"
    x(f"CREATE OR REPLACE TEMP TABLE __keys AS {touched}")
    x(f"CREATE OR REPLACE TEMP TABLE __old AS SELECT * FROM {TARGET} SEMI JOIN __keys USING ({keys})")
    data = "".join(f", {quote(c) if c in have else 'NULL'} AS {quote(c)}" for c in plan.columns)
    succ = " AND ".join(f"n.{q} = o.{q}" for q in k)
    # a stored version is two events, its start and its newest change; a stored end without a
    # successor is a delete
    parts = [
        f"SELECT {keys}{''.join(', ' + quote(c) for c in plan.columns)}, __at, __first, false AS __del, "
        f"1 AS __src, __seq FROM {INCOMING}",
        f"SELECT {keys}{data}, {vf} AS __at, NULL AS __first, false AS __del, 0 AS __src, 0 AS __seq FROM __old",
        f"SELECT {keys}{data}, {ch} AS __at, NULL AS __first, false AS __del, 0 AS __src, 0 AS __seq FROM __old "
        f"WHERE {ch} > {vf}",
        f"SELECT {keys}, {vt} AS __at, true AS __del, 0 AS __src, 0 AS __seq FROM __old o WHERE {vt} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM __old n WHERE {succ} AND n.{vf} = o.{vt})",
    ]
    if plan.close_deleted:
        parts.append(f"SELECT {keys}, {deleted_at} AS __at, true AS __del, 1 AS __src, 0 AS __seq "
                     f"FROM __keys ANTI JOIN {LIVE} USING ({keys})")
    # one event per key and instant; __stored: the instant is a stored version's start or newest change,
    # which stays a change when a replayed row lands on it
    x(f"CREATE OR REPLACE TEMP TABLE __events AS SELECT *, bool_or(__src = 0) OVER (PARTITION BY {keys}, __at) "
      f"AS __stored FROM (" + " UNION ALL BY NAME ".join(f"({p})" for p in parts)
      + f") QUALIFY row_number() OVER (PARTITION BY {keys}, __at ORDER BY __src DESC, __seq DESC, __del) = 1")
    tracked = _struct(plan.track)
    compared = _struct(plan.compared)
    x(f"""CREATE OR REPLACE TEMP TABLE __walk AS
        WITH g AS (SELECT *, {tracked} AS __tr, {compared} AS __cmp FROM __events),
        h AS (SELECT *, lag(__del) OVER w AS __pdel, lag(__tr) OVER w AS __ptr, lag(__cmp) OVER w AS __pcmp,
                     row_number() OVER w AS __n
              FROM g WINDOW w AS (PARTITION BY {keys} ORDER BY __at)),
        i AS (SELECT *, NOT __del AND (__n = 1 OR __pdel OR __tr IS DISTINCT FROM __ptr) AS __start,
                     __del AND __n > 1 AND NOT __pdel AS __end,
                     {"true" if plan.drop_unchanged else "false"} AND NOT __stored AND NOT __del AND __n > 1
                     AND NOT __pdel AND __cmp IS NOT DISTINCT FROM __pcmp AS __same FROM h)
        SELECT *, sum(CAST(__start OR __end AS INTEGER)) OVER (PARTITION BY {keys} ORDER BY __at
                  ROWS UNBOUNDED PRECEDING) AS __grp
        FROM i WHERE (__start OR __end OR NOT __del) AND NOT __same""")
    vals = _struct(plan.columns) if plan.columns else "NULL"
    unpack = "".join(f", __vals.{quote(c)} AS {quote(c)}" for c in plan.columns)
    at_type = _at_type(engine)
    x(f"""CREATE OR REPLACE TEMP TABLE __versions AS
        WITH grp AS (
            SELECT {keys}, __grp, bool_or(__start) AS __is_version, min(__at) AS __begin,
                   max(__at) FILTER (WHERE NOT __del) AS __last,
                   last({vals} ORDER BY __at) FILTER (WHERE NOT __del) AS __vals,
                   first(__first ORDER BY __at) AS __first0
            FROM __walk GROUP BY {keys}, __grp),
        seq AS (SELECT *, lead(__begin) OVER w AS __until, row_number() OVER w AS __vn
                FROM grp WINDOW w AS (PARTITION BY {keys} ORDER BY __grp))
        SELECT {keys}{unpack},
               CASE WHEN __vn = 1 AND __first0 < __begin THEN CAST(__first0 AS {at_type}) ELSE __begin END AS {vf},
               __until AS {vt}, __until IS NULL AS {cur}, __last AS {ch}
        FROM seq WHERE __is_version""")
    if plan.surrogate_key:
        parts_sk = " || '|' || ".join([*(f"coalesce(CAST({q} AS VARCHAR), '')" for q in k), f"CAST({vf} AS VARCHAR)"])
        x(f"CREATE OR REPLACE TEMP TABLE __versions AS SELECT md5({parts_sk}) AS {quote(plan.surrogate_key)}, * "
          f"FROM __versions")
    on = " AND ".join(f"n.{q} = o.{q}" for q in k) + f" AND n.{vf} = o.{vf}"
    differs = " OR ".join([f"n.{quote(c)} IS DISTINCT FROM o.{quote(c)}" if c in have else f"n.{quote(c)} IS NOT NULL"
                           for c in plan.compared] + [f"n.{c} IS DISTINCT FROM o.{c}" for c in (vt, cur, ch)])
    out = plan.output()
    cols = ", ".join(f"CAST(now() AS TIMESTAMPTZ) AS {quote(c)}" if c == plan.stamped else f"n.{quote(c)}"
                     for c in out)
    rows = engine.arrow(  # FlowForge's own SQL over temporary tables
        f"SELECT {cols}, CASE WHEN o.{vf} IS NULL THEN 'insert' ELSE 'update' END AS __action "
        f"FROM __versions n LEFT JOIN __old o ON {on} WHERE o.{vf} IS NULL OR {differs} "
        f"UNION ALL BY NAME SELECT {', '.join('o.' + q for q in k)}, o.{vf}, 'delete' AS __action "
        f"FROM __old o ANTI JOIN __versions n ON {on}")
    import pyarrow.compute as pc

    action = rows.column("__action")
    counts = {a: int(pc.sum(pc.equal(action, a)).as_py() or 0) for a in ("insert", "update", "delete")}
    touched_n = int(engine.rows("SELECT count(*) FROM __keys")[0][0])
    return Scd2Changes(rows, counts["insert"], counts["update"], counts["delete"], touched_n)


def _struct(columns: tuple[str, ...]) -> str:
    return f"struct_pack({', '.join(quote(c) for c in columns)})" if columns else "CAST(NULL AS INTEGER)"


def run_sql(engine: DuckDBEngine, sql: str, context: str) -> None:
    """A statement over user expressions (casts, derived columns); its errors name ``context``."""
    import duckdb

    from flowforge.errors import UserCodeError

    try:
        engine.con.execute(sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserCodeError(f"{context}: {first}", hint="Fix the table's columns or expressions in the workflow "
                                                        "file.") from None


def _at_type(engine: DuckDBEngine) -> str:
    row = engine.rows(f"SELECT typeof(__at) FROM {INCOMING} LIMIT 1")
    return str(row[0][0]) if row else "TIMESTAMP WITH TIME ZONE"


def _empty_target(plan: Scd2Plan) -> str:
    """An empty history with the input's column types, so the first run uses the same SQL."""
    k = ", ".join(quote(c) for c in (*plan.keys, *plan.columns))
    vf, vt, cur = quote(plan.valid_from), quote(plan.valid_to), quote(plan.is_current)
    return (f"SELECT {k}, __at AS {vf}, __at AS {vt}, true AS {cur}, __at AS {quote(CHANGED)} "
            f"FROM {INCOMING} LIMIT 0")


def write_changes(store: LakehouseStore, layer: str, table: str, target: DeltaTable | None, plan: Scd2Plan,
                  changes: Scd2Changes, progress: dict[str, Any]) -> CommitResult:
    """One Delta commit: the first history as a new table, later ones as a merge on (keys, valid_from)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = changes.rows
    out = plan.output()
    if target is None:
        data = rows.filter(pc.equal(rows.column("__action"), "insert")).select(out)
        reader = conform_reader(pa.RecordBatchReader.from_batches(data.schema, data.to_batches()))
        return store.overwrite(layer, table, reader, progress)
    from deltalake import CommitProperties

    rows = _conform_to(rows, target)
    loc = store.location(layer, table)
    match = " AND ".join(f"t.{quote(c)} = s.{quote(c)}" for c in (*plan.keys, plan.valid_from))
    values = {quote(c): f"s.{quote(c)}" for c in out}
    with _storage_errors("merge into", loc, store.storage_options):
        metrics = (target.merge(rows, predicate=match, source_alias="s", target_alias="t", merge_schema=True,
                                commit_properties=CommitProperties(custom_metadata=_encode(progress)))
                   .when_matched_delete(predicate="s.__action = 'delete'")
                   .when_matched_update(values, predicate="s.__action = 'update'")
                   .when_not_matched_insert(values, predicate="s.__action = 'insert'")
                   .execute())
    target.update_incremental()
    return CommitResult(version=target.version(), rows_written=int(metrics["num_target_rows_inserted"]),
                        rows_updated=int(metrics["num_target_rows_updated"]) + int(metrics["num_target_rows_deleted"]),
                        bytes_written=int(rows.nbytes))


def _conform_to(rows: pa.Table, target: DeltaTable) -> pa.Table:
    """Cast merge rows to the stored column types (DuckDB may widen them), new columns kept as they are."""
    import pyarrow as pa

    from flowforge.storage.delta import delta_compatible

    stored = {f.name: f.type for f in pa.schema(target.schema().to_arrow())}
    rows = rows.cast(delta_compatible(rows.schema))
    arrays = [rows.column(i).cast(stored[f.name]) if f.name in stored and f.type != stored[f.name]
              else rows.column(i) for i, f in enumerate(rows.schema)]
    return pa.table(arrays, names=rows.column_names)


def utc_literal(when: dt.datetime, sql_type: str) -> str:
    """A trusted instant as a typed SQL literal (UTC wall time for a plain TIMESTAMP)."""
    naive = when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    if "TIME ZONE" in sql_type.upper() or sql_type.upper() == "TIMESTAMPTZ":
        return f"TIMESTAMPTZ '{naive}+00:00'"
    return f"CAST(TIMESTAMP '{naive}' AS {sql_type})"


def check_unique_instants(engine: DuckDBEngine, keys: tuple[str, ...], target: str) -> None:
    """Gold input must hold one row per key and instant: two would make the version ambiguous."""
    k = ", ".join(quote(c) for c in keys)
    row = engine.rows(f"SELECT {k}, count(*) FROM {INCOMING} GROUP BY {k}, __at HAVING count(*) > 1 LIMIT 1")
    if row:
        example = ", ".join(f"{name}={value!r}" for name, value in zip(keys, row[0][:-1], strict=True))
        raise CheckFailed(f"Gold table {target}: its SQL returned {row[0][-1]} rows for {example} at the same "
                          f"instant; an SCD2 table needs one row per key and change.",
                          hint="Make the SQL return one row per key (GROUP BY, QUALIFY row_number() ...).")


def check_null_keys(engine: DuckDBEngine, keys: tuple[str, ...], target: str, source: str) -> None:
    cond = " OR ".join(f"{quote(c)} IS NULL" for c in keys) + " OR __at IS NULL"
    nulls = int(engine.rows(f"SELECT count(*) FROM {INCOMING} WHERE {cond}")[0][0])
    if nulls:
        raise CheckFailed(f"Table {target}: {nulls} row(s) from {source} have a null key ({', '.join(keys)}) or a "
                          f"null change time; nothing was written.",
                          hint="Fix those source rows, or filter them out before this table.")


# -- silver and gold entry points ----------------------------------------------------------------

def silver_scd2(ctx: JobContext, spec: SilverTable) -> TableResult:
    """New bronze rows (all of them, not only each key's latest) into an SCD2 silver table."""
    from flowforge.layers.fingerprint import FINGERPRINT
    from flowforge.layers.silver import BRONZE_VIEW, SOURCE_VERSION, _check_columns, _new_files, processed

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
    # a rebuild replays every bronze row into a new history, committed as one overwrite
    target = None if decision.rebuild else ctx.store.open("silver", spec.target)
    engine = DuckDBEngine()
    try:
        engine.register_files(BRONZE_VIEW, _new_files(ctx, bronze, seen), bronze.schema().to_arrow(),
                              storage_options=ctx.store.storage_options)
        register_target(engine, target)
        _check_columns(engine, spec)
        materialize(engine, INCOMING, _silver_input_sql(spec, BRONZE_VIEW), f"silver table {spec.target}")
        check_null_keys(engine, spec.keys, spec.target, spec.source)
        rows_in = int(engine.rows(f"SELECT count(*) FROM {INCOMING}")[0][0])
        plan = plan_for(engine, spec, meta=("_batch_id", "_silver_updated_at"), stamped="_silver_updated_at",
                        surrogate_key=spec.surrogate_key, clock=not (spec.changed_at or spec.order_by))
        deleted_at = None
        if spec.close_deleted:
            # the newest bronze batch is the full set of live keys; the others are history
            keys = ", ".join(quote(c) for c in spec.keys)
            engine.con.execute(f"CREATE OR REPLACE TEMP TABLE {LIVE} AS SELECT DISTINCT {keys} FROM {INCOMING} "
                               f"WHERE __ingested = (SELECT max(__ingested) FROM {INCOMING})")
            deleted_at = (f"(SELECT CAST(max(__ingested) AS {_at_type(engine)}) FROM {INCOMING})")
        changes = scd2_changes(engine, plan, target is not None, deleted_at)
    finally:
        engine.close()
    progress = {SOURCE_VERSION: {"table": spec.source, "version": current}, FINGERPRINT: decision.fingerprint.record()}
    if changes.empty and target is not None:
        import pyarrow as pa

        commit = ctx.store.append("silver", spec.target, pa.schema(target.schema().to_arrow()).empty_table(), progress)
    else:
        commit = write_changes(ctx.store, "silver", spec.target, target, plan, changes, progress)
    fault_point("silver.committed")
    return _finish(ctx, spec.target, "silver", commit, changes, rows_in, progress[SOURCE_VERSION],
                   f"{spec.source} versions {'start' if seen is None else seen + 1}..{current}")


def _silver_input_sql(spec: SilverTable, source: str) -> str:
    """Typed, derived bronze rows with ``__at`` (when the change happened), ``__first`` and ``__seq``."""
    from flowforge.engine.sandbox import check_type
    from flowforge.spec.jobs import AUDIT_COLUMNS

    if spec.columns:
        base = [quote(c) for c in spec.columns if c not in spec.casts]
    else:
        base = [f"* EXCLUDE ({', '.join(quote(c) for c in (*AUDIT_COLUMNS, *spec.casts))})"]
    casts = [f"CAST({quote(c)} AS {check_type(t)}) AS {quote(c)}" for c, t in spec.casts.items()]
    derived = "".join(f", ({expr}) AS {quote(name)}" for name, expr in spec.derived.items())
    changed = spec.changed_at or spec.order_by
    at = quote(changed) if changed else "_ingestion_time"
    first = quote(spec.first_valid_from) if spec.first_valid_from else "NULL"
    return (f"WITH typed AS (SELECT {', '.join([*base, *casts])}, _batch_id, _ingestion_time FROM {quote(source)}), "
            f"derived AS (SELECT *{derived} FROM typed) "
            f"SELECT * EXCLUDE (_ingestion_time), CAST(NULL AS TIMESTAMPTZ) AS _silver_updated_at, {at} AS __at, "
            f"{first} AS __first, _ingestion_time AS __ingested, "
            f"row_number() OVER (ORDER BY _ingestion_time, _batch_id) AS __seq FROM derived")


def gold_scd2(ctx: JobContext, spec: GoldTable) -> TableResult:
    """The gold SQL's rows as the live state of each key, versioned against the stored history."""
    from flowforge.layers.fingerprint import FINGERPRINT, decide, gold_fingerprint, refuse
    from flowforge.storage.delta import row_count

    started = dt.datetime.now(dt.UTC)
    found_print = ctx.store.progress_many("gold", spec.target, (), recent=(FINGERPRINT,)).get(FINGERPRINT)
    decision = decide(ctx, "gold", spec.target, gold_fingerprint(spec), found_print[0] if found_print else None)
    if not decision.refresh and any(c.setting != "sql" for c in decision.changes):
        refuse(ctx, spec.target, decision, "Its history was kept with the old settings and cannot be recomputed "
               "from the sources.")
    # a full refresh starts a new history (one overwrite commit); a changed SQL is versioned against the old one
    target = None if decision.refresh else ctx.store.open("gold", spec.target)
    engine = DuckDBEngine()
    try:
        versions: dict[str, int] = {}
        rows_in = 0
        from flowforge.layers.gold import gold_sources

        for name, source in gold_sources(ctx, spec).items():
            engine.register_delta(name, source)
            versions[name] = source.version()
            rows_in += row_count(source)
        register_target(engine, target)
        materialize(engine, "__gold_sql", spec.sql, f"gold table {spec.target}")
        run_time = utc_literal(started, "TIMESTAMP WITH TIME ZONE")
        at = quote(spec.changed_at) if spec.changed_at else run_time
        first = quote(spec.first_valid_from) if spec.first_valid_from else "NULL"
        names = engine.columns("__gold_sql")
        for col in filter(None, (spec.changed_at, spec.first_valid_from)):
            if col not in names:
                raise SourceSchemaError(f"Gold table {spec.target}: column '{col}' (changed_at/first_valid_from) is "
                                        f"not in its SQL's result.", hint=f"Columns: {', '.join(names)}.")
        run_sql(engine, f"CREATE OR REPLACE TEMP TABLE {INCOMING} AS SELECT *, {at} AS __at, {first} AS __first, "
                        f"row_number() OVER () AS __seq FROM __gold_sql", f"gold table {spec.target}")
        check_null_keys(engine, spec.keys, spec.target, "its SQL")
        check_unique_instants(engine, spec.keys, spec.target)
        plan = plan_for(engine, spec, surrogate_key=spec.surrogate_key, clock=spec.changed_at is None)
        deleted_at = None
        if spec.close_deleted:
            keys = ", ".join(quote(c) for c in spec.keys)
            engine.con.execute(f"CREATE OR REPLACE TEMP TABLE {LIVE} AS SELECT DISTINCT {keys} FROM {INCOMING}")
            deleted_at = utc_literal(started, _at_type(engine))
        changes = scd2_changes(engine, plan, target is not None, deleted_at)
    finally:
        engine.close()
    if changes.empty and target is not None:
        ctx.note(f"{spec.target}: no changes in {changes.keys_touched} keys (version {target.version()})")
        return TableResult(spec.target, "gold", rows_in, 0, version=target.version(), note="no changes")
    commit = write_changes(ctx.store, "gold", spec.target, target, plan, changes,
                           {"sources": versions, FINGERPRINT: decision.fingerprint.record()})
    return _finish(ctx, spec.target, "gold", commit, changes, rows_in, None,
                   ", ".join(f"{k}@v{v}" for k, v in versions.items()))


def _finish(ctx: JobContext, table: str, layer: str, commit: CommitResult, changes: Scd2Changes, rows_in: int,
            progress: dict[str, Any] | None, source: str) -> TableResult:
    import pyarrow as pa

    final = ctx.store.open(layer, table)
    if final is not None:
        ctx.mirror.table_committed(table=table, layer=layer, job=ctx.job.name, commit=commit,
                                   schema=pa.schema(final.schema().to_arrow()), progress=progress)
    ctx.note(f"{table}: scd2 from {source}: {changes.keys_touched} keys touched, {changes.inserted} versions "
             f"inserted, {changes.updated} updated, {changes.deleted} removed (version {commit.version})")
    return TableResult(table, layer, rows_in, changes.inserted, rows_updated=changes.updated + changes.deleted,
                       bytes_written=commit.bytes_written, version=commit.version)
