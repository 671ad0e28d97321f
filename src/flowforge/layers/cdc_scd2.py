"""SCD2 for CDC: version rows, closing rows, and rebuilding the history of keys with late events.

A version ends at the next event of its key or at a truncate, whichever comes first. Events
normally arrive in source order; one that arrives *after* silver applied a newer position
(a late file, a re-delivered partition) would otherwise be lost or misplaced, so every key with
a late event has its history recomputed from all of its events in bronze and replaced in the
same merge (``__marker`` rows delete the key's old versions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from flowforge.engine.sql import quote
from flowforge.layers.cdc_keys import ORDER, expanded_sql
from flowforge.layers.cdc_sql import Plan, toasted_in, typed_sql

if TYPE_CHECKING:
    from flowforge.engine.duckdb_engine import DuckDBEngine

SILVER = "__silver"


def txn(column: str) -> str:
    """The transaction of a position: pg:<commit lsn>:<change lsn>, mysql:<file>:<transaction>:<event>:<row>;
    NULL for positions that carry none (Debezium's, Kafka offsets), which therefore never collapse."""
    return (f"CASE WHEN starts_with({column}, 'pg:') AND length({column}) = 44 THEN left({column}, 23) "
            f"WHEN starts_with({column}, 'mysql:') AND len(string_split({column}, ':')) = 5 "
            f"THEN regexp_replace({column}, ':[0-9]+:[0-9]+$', '') END")


TXN = txn("_position")


def late_rebuild(engine: DuckDBEngine, plan: Plan, high: str | None, old_view: str | None,
                 where: str) -> tuple[Plan, int] | None:
    """Split the batch in ``typed`` into ``__normal`` (keys without late events, and truncates) and
    ``__rebuild`` (every event in bronze of the keys with a late event, older bronze first at equal
    positions). Returns the plan of ``__rebuild`` (with the TOAST columns of older bronze) and the
    number of such keys, or None when no event of the batch is older than ``high``."""
    if high is None or old_view is None:
        return None
    keys = [quote(k) for k in plan.keys]
    same = " AND ".join(f"k.{k} = e.{k}" for k in keys)
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE __late_keys AS SELECT DISTINCT {', '.join(keys)} FROM typed "
                       f"WHERE _op <> 't' AND _position < '{high.replace(chr(39), chr(39) * 2)}'")
    late = int(engine.rows("SELECT count(*) FROM __late_keys")[0][0])
    if not late:
        return None
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE __old_all AS SELECT *, row_number() OVER (ORDER BY {ORDER}) "
                       f"AS _ord FROM ({expanded_sql(old_events(old_view, where), plan.keys)})")
    full = replace(plan, toasted=tuple(dict.fromkeys([*plan.toasted, *toasted_in(engine, "__old_all", plan.columns)])))
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE __old_typed AS {typed_sql(full, '__old_all')}")
    cols = ["_op", "_position", "_source_ts", "__ts", "_event_id", *(quote(c) for c in plan.columns)]
    # a column can hold the unchanged-TOAST placeholder in older bronze only: the new events lack its flag
    old_flags = [f"coalesce(e.{quote('__t_' + c)}, false) AS {quote('__t_' + c)}" for c in full.toasted]
    new_flags = [f"coalesce(e.{quote('__t_' + c)}, false) AS {quote('__t_' + c)}" if c in plan.toasted
                 else f"false AS {quote('__t_' + c)}" for c in full.toasted]
    mine = f"(_op = 't' OR EXISTS (SELECT 1 FROM __late_keys k WHERE {same}))"
    engine.con.execute(
        f"CREATE OR REPLACE TEMP TABLE __rebuild AS SELECT *, row_number() OVER (ORDER BY _position, __src, __o) "
        f"AS _ord FROM (SELECT {', '.join([*cols, *old_flags])}, 0 AS __src, _ord AS __o FROM __old_typed e "
        f"WHERE {mine} UNION ALL BY NAME SELECT {', '.join([*cols, *new_flags])}, 1 AS __src, _ord AS __o "
        f"FROM typed e WHERE {mine})")
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE __normal AS SELECT * FROM typed e WHERE _op = 't' "
                       f"OR NOT EXISTS (SELECT 1 FROM __late_keys k WHERE {same})")
    trunc = engine.rows("SELECT _ord, _position, __ts FROM __rebuild WHERE _op = 't' ORDER BY _ord DESC LIMIT 1")
    return replace(full, truncate=(int(trunc[0][0]), str(trunc[0][1]), trunc[0][2]) if trunc else None), late


def scd2_source_sql(engine: DuckDBEngine, plan: Plan, have: tuple[str, ...] | None, high: str | None,
                    old_view: str | None, where: str) -> tuple[str, int]:
    """The merge source for the batch in ``typed``, and how many keys had their history rebuilt
    (their old versions are deleted by ``__marker`` rows and replaced in the same merge)."""
    found = late_rebuild(engine, plan, high, old_view, where) if have is not None else None
    if found is None:
        return _finish(scd2_sql(plan, have)), 0
    full, late = found
    keys = [quote(k) for k in plan.keys]
    normal = scd2_sql(plan, have, "__normal")
    rebuilt = scd2_sql(full, None, "__rebuild")
    markers = f"SELECT {', '.join(keys)}, true AS __marker FROM __late_keys"
    sql = (f"SELECT * EXCLUDE (__close, __marker, __absorb), coalesce(__close, false) AS __close, "
           f"coalesce(__marker, false) AS __marker, coalesce(__absorb, false) AS __absorb FROM (({normal}) "
           f"UNION ALL BY NAME ({rebuilt}) "
           f"UNION ALL BY NAME ({markers}))")
    return sql, late


def old_events(view: str, where: str) -> str:
    """The already-applied bronze events of this table, as a subquery."""
    return (f"(SELECT * FROM {quote(view)} WHERE _op IN ('c', 'r', 'u', 'd', 't') "
            f"AND NOT (_op = 't' AND coalesce(_snapshot, '') = 'reset'){where})")


def _finish(sql: str) -> str:
    return f"SELECT *, false AS __marker FROM ({sql})"


def scd2_sql(plan: Plan, have: tuple[str, ...] | None, source: str = "typed") -> str:
    """Version rows to insert (``__close`` false) and closing rows for current versions (true).

    ``have`` lists the silver table's columns (None before it exists). A version ends at the
    next event of its key or at a truncate, whichever comes first.
    """
    keys = [quote(k) for k in plan.keys]
    part = ", ".join(keys)
    on = " AND ".join(f"e.{k} = c.{k}" for k in keys)
    vals = [quote(c) for c in plan.values]
    if have is not None:
        cols = ", ".join(f"CAST({quote(c)} AS {plan.types[c]}) AS {quote(c)}" if c in have
                         else f"CAST(NULL AS {plan.types[c]}) AS {quote(c)}" for c in plan.columns)
        current = (f"SELECT {cols}, _position AS __cur_pos, _event_id AS __cur_id, valid_from AS __cur_from "
                   f"FROM {SILVER} WHERE is_current")
    else:
        cols = ", ".join(f"CAST(NULL AS {plan.types[c]}) AS {quote(c)}" for c in plan.columns)
        current = (f"SELECT {cols}, CAST(NULL AS VARCHAR) AS __cur_pos, CAST(NULL AS VARCHAR) AS __cur_id, "
                   "CAST(NULL AS TIMESTAMPTZ) AS __cur_from WHERE false")
    def packed(alias: str) -> str:
        return f"struct_pack({', '.join(f'{v} := {alias}.{v}' for v in vals)})" if vals else "true"

    live = (f"SELECT e.*, {packed('e')} AS __vals, CASE WHEN c.__cur_pos IS NOT NULL THEN {packed('c')} END "
            f"AS __cur_vals FROM (SELECT * FROM {source} WHERE _op <> 't') e LEFT JOIN cur c ON {on} "
            f"WHERE c.__cur_pos IS NULL OR e._position > c.__cur_pos "
            f"OR (e._position = c.__cur_pos AND e._event_id <> c.__cur_id)")
    trunc = f"SELECT _ord AS __t_ord, _position AS __t_pos, __ts AS __t_ts FROM {source} WHERE _op = 't'"
    fill = []
    for c in plan.values:
        v = quote(c)
        if c in plan.toasted:
            fill.append(f"CASE WHEN e.{quote('__t_' + c)} THEN coalesce(e.{quote('__r_' + c)}.v, c.{v}) "
                        f"ELSE e.{v} END AS {v}")
        else:
            fill.append(f"e.{v}")
    windows = "".join(
        f", last_value(CASE WHEN NOT {quote('__t_' + c)} AND _op <> 'd' THEN struct_pack(v := {quote(c)}) END "
        f"IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS {quote('__r_' + c)}"
        for c in plan.toasted)
    res = (f"SELECT *{windows}, lag(__vals) OVER w AS __prev_vals, lag(_op) OVER w AS __prev_op, "
           f"row_number() OVER w AS __i FROM live WINDOW w AS (PARTITION BY {part} ORDER BY _ord)")
    # the last change of a key in a transaction stands for all of its changes there, and a snapshot
    # row equal to the version before it (a new snapshot confirming a row) is no new version
    same = ("(_op = 'r' AND ((__i = 1 AND __cur_vals IS NOT NULL AND __cur_vals IS NOT DISTINCT FROM __vals) "
            "OR (__i > 1 AND __prev_op <> 'd' AND __prev_vals IS NOT DISTINCT FROM __vals)))")
    kept = (f"SELECT * FROM res QUALIFY coalesce(lead({TXN}) OVER (PARTITION BY {part} ORDER BY _ord) <> {TXN}, "
            f"true) AND NOT {same}")
    chain = (f"SELECT *, lead(_ord) OVER w AS __n_ord, lead(_position) OVER w AS __n_pos, "
             f"lead(__ts) OVER w AS __n_ts, lead(_op) OVER w AS __n_op, row_number() OVER w AS __rank "
             f"FROM kept WINDOW w AS (PARTITION BY {part} ORDER BY _ord)")
    bounded = "SELECT ch.*, t.__t_ord, t.__t_pos, t.__t_ts FROM chain ch ASOF LEFT JOIN trunc t ON t.__t_ord > ch._ord"
    end = ("CASE WHEN e.__t_ord IS NOT NULL AND (e.__n_ord IS NULL OR e.__t_ord < e.__n_ord) THEN 't' "
           "ELSE e.__n_op END")
    # a current version from earlier in the same transaction (an earlier chunk of it) is absorbed:
    # the new version replaces it and keeps its start
    absorb = f"(e.__rank = 1 AND c.__cur_pos IS NOT NULL AND {txn('e._position')} = {txn('c.__cur_pos')})"
    versions = (f"SELECT {', '.join('e.' + k for k in keys)}{''.join(', ' + f for f in fill)}, e._op, "
                f"CASE WHEN {absorb} THEN c.__cur_pos ELSE e._position END AS _position, e._event_id, "
                f"CASE WHEN {absorb} THEN c.__cur_from ELSE e.__ts END AS valid_from, {end} AS __end, e.__n_pos, "
                f"e.__n_ts, e.__t_pos, e.__t_ts FROM bounded e LEFT JOIN cur c ON {on} WHERE e._op <> 'd'")
    ins = (f"SELECT {', '.join([*keys, *vals])}, _op, _position, _event_id, valid_from, "
           f"CASE __end WHEN 't' THEN __t_ts ELSE __n_ts END AS valid_to, "
           f"CASE __end WHEN 't' THEN __t_pos ELSE __n_pos END AS _valid_to_position, "
           f"__end IS NULL AS is_current, coalesce(__end IN ('t', 'd'), false) AS is_deleted, false AS __close, "
           f"false AS __absorb FROM versions")
    first_t = "(SELECT min(__t_ord) FROM trunc)"
    by_trunc = f"(f.__f_ord IS NULL OR f.__f_ord > coalesce({first_t}, f.__f_ord))"
    first = (f"SELECT {', '.join(keys)}, _position AS __f_pos, __ts AS __f_ts, _op AS __f_op, "
             f"_ord AS __f_ord FROM chain WHERE __rank = 1")
    nulls = "".join(f", CAST(NULL AS {plan.types[c]}) AS {quote(c)}" for c in plan.values)
    # a current row is closed by its key's first new event, or by a truncate that comes first
    close = (f"SELECT {', '.join('c.' + k for k in keys)}{nulls}, CAST(NULL AS VARCHAR) AS _op, "
             f"CAST(NULL AS VARCHAR) AS _position, CAST(NULL AS VARCHAR) AS _event_id, "
             f"CAST(NULL AS TIMESTAMPTZ) AS valid_from, "
             f"CASE WHEN {by_trunc} THEN (SELECT __t_ts FROM trunc ORDER BY __t_ord LIMIT 1) ELSE f.__f_ts END "
             f"AS valid_to, CASE WHEN {by_trunc} THEN (SELECT __t_pos FROM trunc ORDER BY __t_ord LIMIT 1) "
             f"ELSE f.__f_pos END AS _valid_to_position, false AS is_current, "
             f"CASE WHEN {by_trunc} THEN true ELSE f.__f_op = 'd' END AS is_deleted, true AS __close, "
             f"coalesce(NOT {by_trunc} AND {txn('f.__f_pos')} = {txn('c.__cur_pos')}, false) AS __absorb "
             f"FROM cur c LEFT JOIN first f ON {on.replace('e.', 'f.')} "
             f"WHERE f.__f_ord IS NOT NULL OR {first_t} IS NOT NULL")
    return (f"WITH cur AS ({current}), live AS ({live}), trunc AS ({trunc}), res AS ({res}), kept AS ({kept}), "
            f"chain AS ({chain}), "
            f"bounded AS ({bounded}), versions AS ({versions}), first AS ({first}) "
            f"SELECT *, CAST(now() AS TIMESTAMPTZ) AS _silver_updated_at FROM ({ins} UNION ALL BY NAME {close})")


