"""Vectorised decoding of Debezium JSON lines with DuckDB's built-in JSON functions.

The common case (every line a c/r/u/d/t event, all with the schema envelope or all without,
no Kafka record wrapper, no Connect logical type that needs converting) is decoded in one
DuckDB query: each line is parsed once (``json_extract_string`` with a list of paths) and the
positions, ids and timestamps are computed column-wise. Anything else returns None and the
per-record decoder in ``decode.py`` handles the file; both produce the same ``_event_id``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flowforge.connectors.cdc.debezium.decode import row_schema
from flowforge.connectors.cdc.events import event_schema

if TYPE_CHECKING:
    import pyarrow as pa

_FIELDS = ("op", "before", "after", "source.connector", "source.lsn", "source.file", "source.pos", "source.row",
           "source.commit_lsn", "source.change_lsn", "source.event_serial_no", "source.ts_ms", "source.snapshot",
           "source.schema", "source.db", "source.table", "ts_ms")
_ZERO_LSN = "'00000000:00000000:0000'"


def _sql(prefix: str, with_schema: bool) -> str:
    paths = ", ".join(f"'{prefix}{f}'" for f in _FIELDS) + (", '$.schema'" if with_schema else "")
    j = {f: f"j[{i}]" for i, f in enumerate(_FIELDS, start=1)}
    conn, tbl = j["source.connector"], j["source.table"]
    position = (
        f"CASE WHEN {conn} = 'postgresql' AND {j['source.lsn']} IS NOT NULL "
        f"THEN 'pg:' || lpad({j['source.lsn']}, 20, '0') "
        f"WHEN {conn} IN ('mysql', 'mariadb') AND coalesce({j['source.file']}, '') <> '' "
        f"THEN 'mysql:' || {j['source.file']} || ':' || lpad(coalesce({j['source.pos']}, '0'), 20, '0') || ':' "
        f"|| lpad(coalesce({j['source.row']}, '0'), 6, '0') "
        f"WHEN {conn} = 'sqlserver' AND coalesce({j['source.commit_lsn']}, {j['source.change_lsn']}) IS NOT NULL "
        f"THEN 'mssql:' || coalesce({j['source.commit_lsn']}, {_ZERO_LSN}) || ':' || "
        f"coalesce({j['source.change_lsn']}, {_ZERO_LSN}) || ':' || "
        f"lpad(coalesce(nullif({j['source.event_serial_no']}, ''), '0'), 20, '0') END")
    owner = f"coalesce(nullif({j['source.schema']}, ''), nullif({j['source.db']}, ''))"
    table = (f"CASE WHEN coalesce({tbl}, '') = '' THEN 'unknown' WHEN {owner} IS NULL THEN {tbl} "
             f"ELSE {owner} || '.' || {tbl} END")
    ts = f"coalesce({j['source.ts_ms']}, {j['ts_ms']})"
    return (
        f"WITH d AS (SELECT seq, line, {j['op']} AS _op, {j['before']} AS _before, {j['after']} AS _after, "
        f"{position} AS pos, {table} AS _table, "
        f"CAST(round(TRY_CAST(nullif({ts}, '') AS DOUBLE) * 1000) AS BIGINT) AS ts_us, "
        f"lower(nullif({j['source.snapshot']}, '')) AS _snapshot"
        + (f", j[{len(_FIELDS) + 1}] AS schema_text" if with_schema else ", NULL AS schema_text")
        + f" FROM (SELECT seq, line, json_extract_string(line, [{paths}]) AS j FROM __lines)) "
        "SELECT md5(_table || chr(31) || coalesce(pos, 'seq:' || lpad(CAST(seq AS VARCHAR), 20, '0')) || chr(31) "
        "|| _op || chr(31) || coalesce(_after, _before, '') || chr(31) || "
        "CASE WHEN pos IS NULL THEN md5(line) ELSE '' END) AS _event_id, _op, "
        "coalesce(pos, 'seq:' || lpad(CAST(seq AS VARCHAR), 20, '0')) AS _source_position, ts_us AS _source_ts, "
        "_snapshot, _table, CAST(NULL AS VARCHAR) AS _key, _before, _after, schema_text AS _schema, seq AS _seq "
        "FROM d ORDER BY seq")


def decode_fast(lines: pa.Array, first_seq: int = 0) -> pa.Table | None:
    """Decode non-blank, stripped JSON lines (an Arrow string array), or None when the
    per-record decoder must do it."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from flowforge.engine.duckdb_engine import DuckDBEngine

    if len(lines) == 0:
        return None
    engine = DuckDBEngine()
    try:
        data = pa.table({"seq": pa.array(range(first_seq, first_seq + len(lines)), pa.int64()), "line": lines})
        engine.register_arrow("__lines", data)
        # every line valid JSON, enveloped or not alike, with a row-change op and no Kafka wrapper
        try:
            check = engine.rows(
                "SELECT count(*) FILTER (WHERE coalesce(j[1], j[2]) IN ('c', 'r', 'u', 'd', 't') AND j[3] IS NULL "
                "AND j[4] IS NULL), count(*) FILTER (WHERE j[2] IS NOT NULL) FROM (SELECT json_extract_string("
                "line, ['$.op', '$.payload.op', '$.topic', '$.value']) AS j FROM __lines)")[0]
        except duckdb.Error:
            return None  # a line that is not JSON: the per-record decoder names it
        rows, enveloped = (int(x) for x in check)
        n = len(lines)
        if rows != n or enveloped not in (0, n):
            return None
        prefix = "$.payload." if enveloped else "$."
        schemas: dict[str, str | None] = {}
        if enveloped:
            for (text,) in engine.rows("SELECT DISTINCT json_extract(line, '$.schema')::VARCHAR FROM __lines"):
                rs = row_schema(json.loads(text)) if text and text != "null" else None
                if rs is not None and rs.converters:
                    return None  # logical types to convert: the per-record decoder does that
                schemas[text] = rs.text if rs is not None else None
        out = engine.query(_sql(prefix, bool(enveloped)), "decoding Debezium JSON")
    finally:
        engine.close()
    schema_col = out.column("_schema")
    if enveloped:
        mapped = [schemas.get(s) if s is not None else None for s in schema_col.to_pylist()] \
            if len(schemas) > 1 else [next(iter(schemas.values()), None)] * out.num_rows
        schema_col = pa.chunked_array([pa.array(mapped, pa.string())])
    target = event_schema()
    cols = []
    for f in target:
        col = schema_col if f.name == "_schema" else out.column(f.name)
        if f.name == "_source_ts":
            col = pc.cast(col, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        cols.append(col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=target)
