"""Primary-key changes in CDC events: an update that moves a row to a new key.

PostgreSQL (``U`` with an old-key tuple), MySQL/MariaDB (full before image) and other sources
report ``UPDATE t SET id = 920001 WHERE id = 900002`` as one ``u`` event keyed on the *new* key
with the old key in ``_before``. Applied as it is, the old key would stay in silver next to the
new one. Silver therefore reads such an event as two: a delete of the old key, then a create of
the new key, at the same source position (the delete first). Debezium already emits the pair
(a delete, a tombstone and a create), which needs nothing special.

When the moved row has unchanged-TOAST columns (PostgreSQL does not resend a large value an
update did not touch, even when the key changed), the value is taken from the old key: its
latest earlier event in the batch, else its row in silver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.engine.sql import quote

if TYPE_CHECKING:
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.layers.cdc_sql import Plan

ORDER = "_source_position, _ingestion_time, _source_file, _seq, __half"


def _path(column: str) -> str:
    return "'$.\"" + column.replace("'", "''").replace('"', '\\"') + "\"'"


def moved_condition(keys: tuple[str, ...]) -> str:
    """An update whose before image holds every key column and differs from the after image in one."""
    if not keys:
        return "false"
    present = " AND ".join(f"json_exists(_before, {_path(k)})" for k in keys)
    differs = " OR ".join(f"json_extract(_before, {_path(k)}) IS DISTINCT FROM json_extract(_after, {_path(k)})"
                          for k in keys)
    return f"(_op = 'u' AND _before IS NOT NULL AND _after IS NOT NULL AND {present} AND ({differs}))"


def expanded_sql(source: str, keys: tuple[str, ...]) -> str:
    """``source``'s events with every key-changing update split into a delete and a create.

    Adds ``__half`` (0 for the delete half, 1 otherwise: ordering within a position) and
    ``__moved`` (the create half of a key change, whose ``_before`` holds the old key)."""
    moved = moved_condition(keys)
    return (f"SELECT * REPLACE (CASE WHEN {moved} THEN 'c' ELSE _op END AS _op), 1 AS __half, "
            f"{moved} AS __moved FROM {source} "
            f"UNION ALL SELECT * REPLACE ('d' AS _op, CAST(NULL AS VARCHAR) AS _after, CAST(NULL AS VARCHAR) AS _key, "
            f"_event_id || ':old-key' AS _event_id), 0 AS __half, false AS __moved FROM {source} WHERE {moved}")


def carry_moved_toast(engine: DuckDBEngine, plan: Plan, events: str, silver: str | None, current_only: bool) -> int:
    """Fill unchanged-TOAST values of rows moved to a new key (in the ``typed`` table) from the old
    key's latest value. Returns how many values were filled."""
    if not plan.toasted:
        return 0
    flags = " OR ".join(f"t.{quote('__t_' + c)}" for c in plan.toasted)
    kpaths = ", ".join(_path(k) for k in plan.keys)
    moved = engine.rows(f"SELECT t._ord, json_extract_string(e._before, [{kpaths}]) FROM typed t JOIN {events} e "
                        f"USING (_ord) WHERE e.__moved AND ({flags}) ORDER BY t._ord")
    filled = 0
    for ord_, old_key in moved:
        params = [str(v) if v is not None else None for v in old_key]
        same_typed = " AND ".join(f"o.{quote(k)} = CAST(? AS {plan.types[k]})" for k in plan.keys)
        same_silver = same_typed.replace("o.", "s.")
        for c in plan.toasted:
            col, flag = quote(c), quote("__t_" + c)
            sources = [f"(SELECT struct_pack(v := o.{col}) FROM typed o WHERE {same_typed} AND o._ord < {int(ord_)} "
                       f"AND o._op NOT IN ('d', 't') AND NOT o.{flag} ORDER BY o._ord DESC LIMIT 1)"]
            args = list(params)
            if silver is not None:
                cur = " AND s.is_current" if current_only else ""
                sources.append(f"(SELECT struct_pack(v := CAST(s.{col} AS {plan.types[c]})) FROM {silver} s "
                               f"WHERE {same_silver}{cur} LIMIT 1)")
                args += params
            found = engine.con.execute(f"SELECT coalesce({', '.join(sources)}) IS NOT NULL", args).fetchone()
            if not found or not found[0]:
                continue
            engine.con.execute(f"UPDATE typed SET {col} = (SELECT coalesce({', '.join(sources)}).v), {flag} = false "
                               f"WHERE _ord = {int(ord_)} AND {flag}", args)
            filled += 1
    return filled
