"""Plan the silver columns of a CDC table and build the DuckDB SQL that types its events.

Types come from the events' ``_schema`` (the source's own column types) and from the silver
table when it exists: an ``int4`` column is INTEGER in silver, as the batch path keeps it. A
widening within a family (INTEGER → BIGINT, FLOAT → DOUBLE, a decimal with more digits) rewrites
the silver column to the wider type; a narrowing back keeps the wider one. Any other change of a
column's type family (BIGINT → VARCHAR, say) is incompatible: the job stops before anything is
committed.

A ``_schema`` entry is a type name, or ``{"type": ..., "default": value}`` when the source says
what rows that existed before the column was added now hold (``{"type": ..., "default_unknown":
true}`` when it cannot tell): see ``cdc_defaults``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.connectors.cdc.events import UNAVAILABLE
from flowforge.engine.sql import quote
from flowforge.errors import CheckFailed, ConfigError, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.spec.cdc import ApplyTable

EVENTS = "__cdc_events"
_LOGICAL = {"int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float32": "FLOAT", "float64": "DOUBLE",
            "boolean": "BOOLEAN", "string": "VARCHAR", "json": "VARCHAR", "time": "VARCHAR", "date": "DATE",
            "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "binary": "BLOB"}
META_COLUMNS = ("_op", "_position", "_source_ts", "_is_deleted", "_silver_updated_at", "valid_from", "valid_to",
                "is_current", "is_deleted", "_valid_to_position", "_event_id")


def sql_type(logical: str) -> str:
    if logical.startswith("decimal("):
        return logical.upper()
    return _LOGICAL.get(logical, "VARCHAR")


def family(sql: str) -> str:
    s = sql.upper()
    for prefix, fam in (("DECIMAL", "decimal"), ("TIMESTAMPTZ", "timestamptz"), ("TIMESTAMP WITH", "timestamptz"),
                        ("TIMESTAMP", "timestamp"), ("BIGINT", "int"), ("INTEGER", "int"), ("SMALLINT", "int"),
                        ("DOUBLE", "float"), ("FLOAT", "float"), ("REAL", "float"), ("BOOLEAN", "bool"),
                        ("DATE", "date"), ("BLOB", "binary"), ("VARCHAR", "string")):
        if s.startswith(prefix):
            return fam
    return "string"


def arrow_sql(t: pa.DataType) -> str:
    """The DuckDB type a silver column of Arrow type ``t`` holds."""
    import pyarrow as pa

    if pa.types.is_integer(t):
        return {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER"}.get(t.bit_width, "BIGINT")
    if pa.types.is_floating(t):
        return "FLOAT" if t.bit_width == 32 else "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BLOB"
    return "VARCHAR"


_WIDTH = {"TINYINT": 1, "SMALLINT": 2, "INTEGER": 3, "BIGINT": 4, "FLOAT": 1, "REAL": 1, "DOUBLE": 2}


def _decimal(sql: str) -> tuple[int, int]:
    inner = sql[sql.index("(") + 1:sql.rindex(")")] if "(" in sql else "18,3"
    p, _, s = inner.partition(",")
    return int(p), int(s or 0)


def wider(old: str, new: str) -> bool:
    """Whether ``new`` holds every value of ``old`` and more (same family): a widening to apply."""
    fo = family(old)
    if fo != family(new) or old.upper() == new.upper():
        return False
    if fo in ("int", "float"):
        return _WIDTH.get(new.upper(), 0) > _WIDTH.get(old.upper(), 0)
    if fo == "decimal":
        (po, so), (pn, sn) = _decimal(old), _decimal(new)
        return sn >= so and pn - sn >= po - so and (pn, sn) != (po, so)
    return False


def _compatible(old: str, new: str) -> bool:
    fo, fn = family(old), family(new)
    if fo == fn and fo != "decimal":
        return True
    if fo == "string":
        return True  # anything reads as text
    if fo == "float" and fn in ("int", "decimal"):
        return True
    if fo == "decimal" and fn in ("decimal", "int"):
        return True
    return fo == "timestamptz" and fn == "timestamp"


@dataclass(frozen=True)
class Plan:
    keys: tuple[str, ...]
    columns: tuple[str, ...]      # every data column, keys first
    types: dict[str, str]         # column -> DuckDB type
    toasted: tuple[str, ...]      # columns with an unchanged-TOAST placeholder in this batch
    truncate: tuple[int, str, Any] | None  # (_ord, position, source time) of the last truncate
    widen: tuple[str, ...] = ()   # silver columns whose type the events widen (rewritten first)
    defaults: dict[str, Any] = field(default_factory=dict)  # column -> declared value of older rows
    unknown_defaults: tuple[str, ...] = ()  # columns whose older rows hold values the source cannot tell

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.keys)


def plan_columns(engine: DuckDBEngine, spec: ApplyTable, existing: pa.Schema | None) -> Plan:
    types: dict[str, str] = {}
    order: list[str] = []
    declared: set[str] = set()  # columns whose type the events state (the others are text)
    defaults: dict[str, Any] = {}
    unknown: set[str] = set()
    for (text, pos) in engine.rows(f"SELECT _schema, min(_source_position) p FROM {EVENTS} "
                                   "WHERE _schema IS NOT NULL GROUP BY 1 ORDER BY 2"):
        for col, entry in json.loads(text).items():
            logical = entry.get("type", "string") if isinstance(entry, dict) else entry
            if isinstance(entry, dict) and "default" in entry:
                defaults[col] = entry["default"]
            elif isinstance(entry, dict) and entry.get("default_unknown"):
                unknown.add(col)
            new = sql_type(logical)
            declared.add(col)
            if col not in types:
                types[col] = new
                order.append(col)
            elif wider(types[col], new):
                types[col] = new
            elif not _compatible(types[col], new) and col not in spec.casts:
                raise _type_error(spec, col, types[col], new, pos)
    for (keys,) in engine.rows(f"SELECT DISTINCT json_keys(coalesce(_after, _before)) FROM {EVENTS} "
                               "WHERE coalesce(_after, _before) IS NOT NULL"):
        for col in keys:
            if col not in types:
                types[col] = "VARCHAR"
                order.append(col)
    widen: list[str] = []
    if existing is not None:
        for f in existing:
            if f.name in META_COLUMNS:
                continue
            old = arrow_sql(f.type)
            if f.name in declared and f.name not in spec.casts and not _compatible(old, types[f.name]):
                raise _type_error(spec, f.name, old, types[f.name], None)
            if f.name not in types:
                order.append(f.name)
            if f.name in declared and f.name not in spec.casts and wider(old, types[f.name]):
                widen.append(f.name)
            else:
                types[f.name] = old
    for col, cast in spec.casts.items():
        if col not in types:
            order.append(col)
        types[col] = cast
    keys = spec.keys or _event_keys(engine, spec)
    missing = [k for k in keys if k not in types]
    if missing:
        raise SourceSchemaError(f"Silver table {spec.target}: key column(s) {', '.join(missing)} are not in the "
                                f"change events (columns: {', '.join(order)}).", hint="Fix 'keys' of the table.")
    if spec.columns is not None:
        wanted = [c for c in spec.columns if c not in keys]
        absent = [c for c in wanted if c not in types]
        if absent:
            raise SourceSchemaError(f"Silver table {spec.target}: column(s) {', '.join(absent)} are not in the "
                                    f"change events.", hint=f"Columns: {', '.join(order)}.")
        order = wanted
    columns = (*keys, *(c for c in order if c not in keys))
    return Plan(keys=tuple(keys), columns=columns, types={c: types[c] for c in columns},
                toasted=_toasted(engine, columns), truncate=_truncate(engine),
                widen=tuple(c for c in widen if c in columns),
                defaults={c: v for c, v in defaults.items() if c in columns and c not in keys},
                unknown_defaults=tuple(sorted(c for c in unknown if c in columns and c not in defaults)))


def _type_error(spec: ApplyTable, col: str, old: str, new: str, pos: str | None) -> SourceSchemaError:
    where = f" at source position {pos}" if pos else ""
    return SourceSchemaError(
        f"Silver table {spec.target}: column '{col}' changes type from {old} to {new}{where}, which cannot be "
        f"converted; nothing was committed.",
        hint=f"Keep the source type, or declare the column under 'casts' (for example {col}: VARCHAR) "
             "and rebuild the silver table.")


def _event_keys(engine: DuckDBEngine, spec: ApplyTable, view: str = EVENTS) -> tuple[str, ...]:
    found = engine.rows(f"SELECT json_keys(_key) FROM {view} WHERE _key IS NOT NULL LIMIT 1")
    if not found:
        raise ConfigError(f"Silver table {spec.target}: the change events carry no key.",
                          hint="Give 'keys' (the primary key columns) for the table.")
    return tuple(found[0][0])


def _toasted(engine: DuckDBEngine, columns: tuple[str, ...]) -> tuple[str, ...]:
    return toasted_in(engine, EVENTS, columns)


def toasted_in(engine: DuckDBEngine, view: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """Columns holding PostgreSQL's unchanged-TOAST placeholder in some event of ``view``."""
    rows = engine.rows(
        f"SELECT DISTINCT k FROM (SELECT unnest(json_keys(_after)) AS k, _after FROM {quote(view)} "
        f"WHERE contains(_after, '{UNAVAILABLE}')) WHERE json_extract_string(_after, '$.\"' || k || '\"') = "
        f"'{UNAVAILABLE}'")
    found = {r[0] for r in rows}
    return tuple(c for c in columns if c in found)


def _truncate(engine: DuckDBEngine) -> tuple[int, str, Any] | None:
    import datetime as dt

    rows = engine.rows(f"SELECT _ord, _source_position, epoch_us(coalesce(_source_ts, _ingestion_time)) FROM {EVENTS} "
                       "WHERE _op = 't' ORDER BY _ord DESC LIMIT 1")
    if not rows:
        return None
    ts = None if rows[0][2] is None else dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=rows[0][2])
    return int(rows[0][0]), str(rows[0][1]), ts


def events_view(engine: DuckDBEngine, bronze_view: str, spec: ApplyTable) -> dict[str, Any] | None:
    """Row changes of this table, deduplicated, numbered in source order (``_ord``); an update that
    changes the key becomes a delete of the old key and a create of the new one (``cdc_keys``).
    Returns the newest new-snapshot marker of the table (``cdc_resync``), kept out of the events."""
    from flowforge.layers.cdc_keys import ORDER, expanded_sql
    from flowforge.layers.cdc_resync import marker

    where = table_filter(spec)
    engine.con.execute(
        f"CREATE OR REPLACE TEMP TABLE __cdc_raw AS SELECT * FROM {quote(bronze_view)} "
        f"WHERE _op IN ('c','r','u','d','t'){where} "
        f"QUALIFY row_number() OVER (PARTITION BY _event_id ORDER BY _ingestion_time) = 1")
    if not spec.source_table:
        # a flattened row names no table ('') and belongs to every table of the job
        tables = [r[0] for r in engine.rows("SELECT DISTINCT _table FROM __cdc_raw WHERE _op <> 't' AND _table <> ''")]
        if len(tables) > 1:
            raise ConfigError(f"Silver table {spec.target}: the events come from several source tables "
                              f"({', '.join(sorted(tables))}).", hint="Set 'source_table' on the table.")
    found = marker(engine, "__cdc_raw")
    engine.con.execute("DELETE FROM __cdc_raw WHERE _op = 't' AND _snapshot = 'reset'")
    with_key = engine.rows("SELECT 1 FROM __cdc_raw WHERE _key IS NOT NULL LIMIT 1")
    keys = tuple(spec.keys) or (_event_keys(engine, spec, "__cdc_raw") if with_key else ())
    engine.con.execute(f"CREATE OR REPLACE TEMP TABLE {EVENTS} AS SELECT *, row_number() OVER (ORDER BY {ORDER}) "
                       f"AS _ord FROM ({expanded_sql('__cdc_raw', keys)})")
    engine.con.execute("DROP TABLE __cdc_raw")
    return found


def _value(expr: str, sql: str) -> str:
    if family(sql) == "binary":
        return f"from_base64({expr})"
    return f"CAST({expr} AS {sql})"


def typed_sql(plan: Plan, source: str = EVENTS) -> str:
    """One row per event: keys, typed values (NULL where TOAST-unavailable) and ``__t_<col>`` flags.

    A delete carries its before image (what a soft delete keeps when the row was never seen)."""
    paths = ", ".join("'$.\"" + c.replace('"', '\\"') + "\"'" for c in plan.columns)
    kpaths = ", ".join("'$.\"" + k.replace('"', '\\"') + "\"'" for k in plan.keys)
    sel = ["_op", "_source_position AS _position", "_ord", "_source_ts", "_event_id",
           "coalesce(_source_ts, _ingestion_time) AS __ts"]
    for i, c in enumerate(plan.columns, start=1):
        t = plan.types[c]
        if c in plan.keys:
            ki = plan.keys.index(c) + 1
            sel.append(f"{_value(f'coalesce(__a[{i}], __b[{ki}], __k[{ki}])', t)} AS {quote(c)}")
        elif c in plan.toasted:
            sel.append(f"{_value(f'nullif(__a[{i}], {_lit(UNAVAILABLE)})', t)} AS {quote(c)}")
            sel.append(f"coalesce(__a[{i}] = {_lit(UNAVAILABLE)}, false) AS {quote('__t_' + c)}")
        else:
            sel.append(f"{_value(f'__a[{i}]', t)} AS {quote(c)}")
    return (f"SELECT {', '.join(sel)} FROM (SELECT *, json_extract_string(CASE WHEN _op = 'd' THEN _before "
            f"ELSE _after END, [{paths}]) AS __a, "
            f"json_extract_string(coalesce(_before, '{{}}'), [{kpaths}]) AS __b, "
            f"json_extract_string(coalesce(_key, '{{}}'), [{kpaths}]) AS __k FROM {source})")


def table_filter(spec: ApplyTable) -> str:
    if not spec.source_table:
        return ""
    t = spec.source_table.replace("'", "''")
    return f" AND (_table = '{t}' OR _table LIKE '%.{t}' OR _table = '')"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def check_events(engine: DuckDBEngine, spec: ApplyTable, plan: Plan, typed: str) -> None:
    """Deletes without a row to delete and rows without a key fail before anything is written."""
    null_key = " OR ".join(f"{quote(k)} IS NULL" for k in plan.keys)
    bad = engine.rows(f"SELECT _op, _position FROM {typed} WHERE _op <> 't' AND ({null_key}) ORDER BY _ord LIMIT 1")
    if not bad:
        return
    op, pos = bad[0]
    if op in ("d", "u"):
        what = "delete" if op == "d" else "update"
        raise SourceSchemaError(
            f"Silver table {spec.target}: the {what} event at source position {pos} has no before image and no "
            f"key, so the row it changes is unknown; nothing was committed.",
            hint="Capture the table with full before images (PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL) "
                 "or read the events with their Kafka keys.")
    raise CheckFailed(f"Silver table {spec.target}: the {op} event at source position {pos} has a null key "
                      f"({', '.join(plan.keys)}); nothing was committed.",
                      hint="Check 'keys' of the table.")
