"""A new snapshot of a table replaces what silver holds of it.

The PostgreSQL and MySQL sources begin every snapshot (the first one, one after ``flowforge cdc
reset``, or one restarted after a crash) with a ``t`` event whose ``_snapshot`` is ``reset``, at
the snapshot's position P. Rows deleted while no position was kept (a lost slot, a purged
binlog, a snapshot that never finished) are absent from the new snapshot and must go.

The marker is not a truncate: silver keeps every row the snapshot confirms (SCD2 adds no
version for a snapshot row equal to the current one). Once the snapshot is wholly in bronze
(``settled``: its last chunk committed a complete position), every key silver holds from before
P that the snapshot lacks gets a delete at P, in the same merge as the batch. Until then the
pending position rides in the silver commits (``flowforge.cdc_resync``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.storage.delta import data_files

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.layers.cdc_sql import Plan

RESYNC = "cdc_resync"


def marker(engine: DuckDBEngine, raw: str) -> dict[str, Any] | None:
    """The newest reset marker among the raw events of this table, or None."""
    rows = engine.rows(f"SELECT _source_position, epoch_us(coalesce(_source_ts, _ingestion_time)) FROM {raw} "
                       "WHERE _op = 't' AND _snapshot = 'reset' ORDER BY _source_position DESC LIMIT 1")
    return {"position": str(rows[0][0]), "ts_us": rows[0][1]} if rows else None


def newer(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None or b is None:
        return a or b
    return a if str(a["position"]) >= str(b["position"]) else b


def add_deletes(engine: DuckDBEngine, plan: Plan, pending: dict[str, Any], bronze: DeltaTable, where: str,
                silver: str | None, strategy: str, soft: bool) -> int:
    """Insert into ``typed`` a delete at the snapshot's position for every key silver (or this
    batch, before the snapshot) holds that the snapshot lacks. ``typed._ord`` is doubled first so
    each delete sorts right before the batch's first event at or after the snapshot."""
    from flowforge.layers.cdc_sql import _value

    position = str(pending["position"])
    lit = "'" + position.replace("'", "''") + "'"
    engine.register_files("__bronze_all", data_files(bronze), bronze.schema().to_arrow())
    keys = [quote(k) for k in plan.keys]
    paths = [("'$.\"" + k.replace("'", "''").replace('"', '\\"') + "\"'") for k in plan.keys]
    snap_keys = ", ".join(f"{_value(f'json_extract_string(coalesce(_after, _key), {p})', plan.types[k])} AS {q}"
                          for k, p, q in zip(plan.keys, paths, keys, strict=True))
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE __snap_keys AS SELECT DISTINCT {snap_keys} FROM __bronze_all "
                       f"WHERE _op = 'r' AND _source_position = {lit}{where}")
    live_in_silver = ""
    if silver is not None:
        alive = "is_current" if strategy == "scd2" else ("NOT coalesce(_is_deleted, false)" if soft else "true")
        cast = ", ".join(f"CAST({q} AS {plan.types[k]}) AS {q}" for k, q in zip(plan.keys, keys, strict=True))
        live_in_silver = f"SELECT {cast} FROM {silver} WHERE {alive} AND _position < {lit} UNION "
    engine.con.execute(
        f"CREATE OR REPLACE TEMP TABLE __gone AS SELECT * FROM ({live_in_silver}SELECT {', '.join(keys)} FROM "
        f"(SELECT * FROM typed WHERE _position < {lit} AND _op <> 't' QUALIFY row_number() OVER "
        f"(PARTITION BY {', '.join(keys)} ORDER BY _ord DESC) = 1) WHERE _op <> 'd') "
        f"EXCEPT SELECT * FROM __snap_keys")
    gone = int(engine.rows("SELECT count(*) FROM __gone")[0][0])
    if not gone:
        return 0
    engine.con.execute("UPDATE typed SET _ord = _ord * 2")
    first = engine.rows(f"SELECT min(_ord) FROM typed WHERE _position >= {lit}")[0][0]
    at = int(first) - 1 if first is not None else int(engine.rows("SELECT coalesce(max(_ord), 0) FROM typed")[0][0]) + 1
    ts = pending.get("ts_us")
    ts_sql = "CAST(NULL AS TIMESTAMPTZ)" if ts is None else f"make_timestamptz({int(ts)})"
    id_sql = "'reset:' || " + lit + " || ':' || " + " || ':' || ".join(f"CAST({k} AS VARCHAR)" for k in keys)
    engine.con.execute(
        f"INSERT INTO typed BY NAME SELECT 'd' AS _op, {lit} AS _position, {at} AS _ord, {ts_sql} AS _source_ts, "
        f"{id_sql} AS _event_id, {ts_sql} AS __ts, {', '.join(keys)} FROM __gone")
    return gone
