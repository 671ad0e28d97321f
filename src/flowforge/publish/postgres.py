"""Publish lakehouse tables into a PostgreSQL schema, each in one transaction.

*Full*: the rows go into ``<table>__ff_new`` (COPY), which gets its primary key, indexes and
comments; then, in the same transaction, the old table is dropped and the new one renamed (with
its constraint and indexes). Readers keep reading the old table until the commit and see the
new one after it. When views of the BI tool depend on the table (a DROP would break them) and
the columns are unchanged, the rows are swapped instead (``TRUNCATE`` + ``INSERT``), still in
the transaction.

*Incremental* (the table has ``keys`` and was published before, from a Delta version still
readable): DuckDB compares the published version with the current one; rows new or changed
are upserted and vanished keys deleted, in one transaction. When more than half the rows
changed, a full publish is cheaper and is done instead.

The published Delta version of every table is recorded in ``<schema>._flowforge_published`` in
the same transaction as the rows, so the warehouse never claims a version it does not hold.
Every identifier goes through ``psycopg.sql.Identifier``; values travel as COPY data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, SourceNotFound, SourceSchemaError, StorageError

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa
    from deltalake import DeltaTable
    from psycopg import sql as pgsql

    from flowforge.connectors.sql.postgres.config import PostgresConfig
    from flowforge.spec.publish import PublishTable
    from flowforge.storage import LakehouseStore

STATE_TABLE = "_flowforge_published"
_MAX_IDENT = 63
_FULL_ABOVE = 0.5  # share of changed rows above which a full reload is done instead
_COPY_ROWS = 65_536


@dataclass(frozen=True)
class Published:
    table: str
    target: str
    mode: str  # full | incremental | unchanged
    rows: int  # rows in the warehouse table afterwards
    changed: int  # rows written (full: all; incremental: upserted + deleted)
    version: int
    note: str = ""


def writer_conninfo(config: PostgresConfig) -> str:
    """The connection's libpq parameters for writing (the read connectors log in read-only)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params: dict[str, Any] = conninfo_to_dict(config.libpq_url())
    params.update(config.options)
    if config.sslmode:
        params["sslmode"] = config.sslmode
    params.setdefault("connect_timeout", str(config.connect_timeout))
    params.setdefault("application_name", "flowforge-publish")
    return make_conninfo(**params)


def pg_type(t: pa.DataType, column: str, table: str) -> str:
    """The PostgreSQL type that holds an Arrow type exactly."""
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "bigint"
    if pa.types.is_uint64(t):
        return "numeric(20,0)"
    if pa.types.is_float32(t):
        return "real"
    if pa.types.is_float64(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytea"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    if pa.types.is_time(t):
        return "time without time zone"
    raise SourceSchemaError(f"Table {table}: column {column!r} has type {t}, which the warehouse copy cannot hold.",
                            hint="Cast or flatten it in the gold SQL (to_json(...) for nested values).")


def _name(base: str, suffix: str = "") -> str:
    """An identifier within PostgreSQL's 63 bytes: long names keep a hash of what was cut."""
    full = base + suffix
    if len(full.encode()) <= _MAX_IDENT:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    keep = _MAX_IDENT - len(suffix.encode()) - 9
    return base.encode()[:keep].decode(errors="ignore") + "_" + digest + suffix


def _columns_hash(schema: pa.Schema, spec: PublishTable) -> str:
    parts = [f"{f.name}:{f.type}" for f in schema] + [f"keys:{','.join(spec.keys)}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _csv(table: pa.Table | pa.RecordBatchReader) -> Iterator[bytes]:
    import io

    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    batches = table.to_batches(max_chunksize=_COPY_ROWS) if hasattr(table, "to_batches") else table
    for batch in batches:
        if batch.num_rows:
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, options)
            yield buf.getvalue()


class Publisher:
    """Publishes tables of one lakehouse into one schema over one connection."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, store: LakehouseStore) -> None:
        self.conn, self.schema, self.store = conn, schema, store

    # -- helpers -------------------------------------------------------------------------
    def ident(self, name: str) -> pgsql.Identifier:
        from psycopg import sql

        return sql.Identifier(self.schema, name)

    def _exec(self, query: Any, params: Any = None) -> Any:
        return self.conn.execute(query, params)

    def ensure_schema(self) -> None:
        from psycopg import sql

        with self.conn.transaction():
            self._exec(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            self._exec(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, source_table text NOT NULL, "
                "source_uri text NOT NULL, delta_version bigint NOT NULL, columns_hash text NOT NULL, "
                "row_count bigint NOT NULL, mode text NOT NULL, published_at timestamptz NOT NULL)"
            ).format(self.ident(STATE_TABLE)))
            self._exec(sql.SQL("COMMENT ON TABLE {} IS {}").format(
                self.ident(STATE_TABLE), sql.Literal("FlowForge: the lakehouse version each table here was "
                                                     "published from (bookkeeping, not data)")))

    def _state(self, target: str) -> dict[str, Any] | None:
        from psycopg import sql

        row = self._exec(sql.SQL("SELECT source_uri, delta_version, columns_hash FROM {} WHERE table_name = %s")
                         .format(self.ident(STATE_TABLE)), (target,)).fetchone()
        return None if row is None else {"uri": row[0], "version": int(row[1]), "hash": row[2]}

    def _table_exists(self, name: str) -> bool:
        row = self._exec("SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                         (self.schema, name)).fetchone()
        return row is not None

    # -- publishing ----------------------------------------------------------------------
    def publish(self, spec: PublishTable) -> Published:
        import pyarrow as pa

        found = self.store.find(spec.table)
        if found is None:
            raise SourceNotFound(f"Publish: there is no lakehouse table '{spec.table}'.",
                                 hint="Run the job that builds it first, or fix the name.")
        layer, delta = found
        schema = pa.schema(delta.schema().to_arrow())
        missing = [c for c in (*spec.keys, *spec.columns, *_flat(spec.indexes)) if c not in schema.names]
        if missing:
            raise SourceSchemaError(f"Publish {spec.table}: column(s) {', '.join(sorted(set(missing)))} are not in "
                                    f"the table.", hint=f"Columns: {', '.join(schema.names)}.")
        if spec.keys:
            _check_unique(delta, spec)
        target, version, columns_hash = spec.name, delta.version(), _columns_hash(schema, spec)
        state = self._state(target)
        exists = self._table_exists(target)
        if (state and exists and state["uri"] == delta.table_uri and state["version"] == version
                and state["hash"] == columns_hash):
            rows = int(self._exec(self._count(target)).fetchone()[0])
            return Published(spec.table, target, "unchanged", rows, 0, version, "already at this version")
        if (spec.mode == "auto" and spec.keys and state and exists and state["uri"] == delta.table_uri
                and state["hash"] == columns_hash and state["version"] < version):
            old = self.store.open_version(delta, state["version"])
            if old is not None:
                done = self._incremental(spec, layer, delta, old, schema, columns_hash)
                if done is not None:
                    return done
        return self._full(spec, layer, delta, schema, columns_hash)

    def _count(self, target: str) -> Any:
        from psycopg import sql

        return sql.SQL("SELECT count(*) FROM {}").format(self.ident(target))

    def _record(self, spec: PublishTable, delta: DeltaTable, columns_hash: str, rows: int, mode: str) -> None:
        from psycopg import sql

        self._exec(sql.SQL(
            "INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (table_name) DO UPDATE SET "
            "source_table = EXCLUDED.source_table, source_uri = EXCLUDED.source_uri, "
            "delta_version = EXCLUDED.delta_version, columns_hash = EXCLUDED.columns_hash, "
            "row_count = EXCLUDED.row_count, mode = EXCLUDED.mode, published_at = EXCLUDED.published_at"
        ).format(self.ident(STATE_TABLE)), (spec.name, spec.table, delta.table_uri, delta.version(), columns_hash,
                                            rows, mode))

    def _copy_into(self, table: pgsql.Composable, columns: list[str], data: Any) -> None:
        from psycopg import sql

        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            table, sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in _csv(data):
                copy.write(chunk)

    def _full(self, spec: PublishTable, layer: str, delta: DeltaTable, schema: pa.Schema,
              columns_hash: str) -> Published:
        from psycopg import errors, sql

        target = spec.name
        staging = _name(target, "__ff_new")
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(pg_type(f.type, f.name, target))) for f in schema)
        reader = delta.to_pyarrow_dataset().to_batches(batch_size=_COPY_ROWS)
        with self.conn.transaction():
            self._exec("SET LOCAL lock_timeout = '30s'")
            self._exec(sql.SQL("DROP TABLE IF EXISTS {}").format(self.ident(staging)))
            self._exec(sql.SQL("CREATE TABLE {} ({})").format(self.ident(staging), cols))
            self._copy_into(self.ident(staging), schema.names, reader)
            rows = int(self._exec(self._count(staging)).fetchone()[0])
            self._keys_and_indexes(spec, staging, suffix="__ff_new")
            self._comments(spec, staging, layer, delta, schema)
            self._exec(sql.SQL("ANALYZE {}").format(self.ident(staging)))
            swapped = "swapped in"
            if self._table_exists(target):
                try:
                    with self.conn.transaction():
                        self._exec(sql.SQL("DROP TABLE {}").format(self.ident(target)))
                except errors.DependentObjectsStillExist:
                    if not self._same_columns(target, staging):
                        raise StorageError(
                            f"Publish {target}: views depend on {self.schema}.{target} and its columns changed, "
                            f"so it can be neither dropped nor refilled.",
                            hint="Drop or adapt the dependent views, then publish again.") from None
                    self._exec(sql.SQL("TRUNCATE {}").format(self.ident(target)))
                    self._exec(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(self.ident(target),
                                                                                self.ident(staging)))
                    self._exec(sql.SQL("DROP TABLE {}").format(self.ident(staging)))
                    swapped = "refilled (views depend on it)"
            if swapped == "swapped in":
                self._exec(sql.SQL("ALTER TABLE {} RENAME TO {}").format(self.ident(staging), sql.Identifier(target)))
                self._rename_indexes(spec, target, suffix="__ff_new")
            self._record(spec, delta, columns_hash, rows, "full")
        return Published(spec.table, target, "full", rows, rows, delta.version(), swapped)

    def _same_columns(self, a: str, b: str) -> bool:
        q = ("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
             "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
        first = self._exec(q, (self._regclass(a),)).fetchall()
        return bool(first == self._exec(q, (self._regclass(b),)).fetchall())

    def _regclass(self, name: str) -> str:
        return self.ident(name).as_string(self.conn)

    def _index_names(self, spec: PublishTable, target: str) -> list[tuple[str, tuple[str, ...]]]:
        out = []
        for index in spec.indexes:
            cols = (index,) if isinstance(index, str) else tuple(index)
            out.append((_name(f"ix_{target}_{'_'.join(cols)}"), cols))
        return out

    def _keys_and_indexes(self, spec: PublishTable, table: str, suffix: str) -> None:
        from psycopg import sql

        target = spec.name
        if spec.keys:
            self._exec(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                self.ident(table), sql.Identifier(_name(f"{target}_pkey", suffix)),
                sql.SQL(", ").join(sql.Identifier(k) for k in spec.keys)))
        for name, cols in self._index_names(spec, target):
            self._exec(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(_name(name, suffix)), self.ident(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in cols)))

    def _rename_indexes(self, spec: PublishTable, target: str, suffix: str) -> None:
        from psycopg import sql

        if spec.keys:
            self._exec(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                self.ident(target), sql.Identifier(_name(f"{target}_pkey", suffix)),
                sql.Identifier(_name(f"{target}_pkey"))))
        for name, _ in self._index_names(spec, target):
            self._exec(sql.SQL("ALTER INDEX {} RENAME TO {}").format(self.ident(_name(name, suffix)),
                                                                     sql.Identifier(name)))

    def _comments(self, spec: PublishTable, table: str, layer: str, delta: DeltaTable, schema: pa.Schema) -> None:
        from psycopg import sql

        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = (f"{spec.description + '. ' if spec.description else ''}Published by FlowForge from {layer} table "
                f"{spec.table} (Delta version {delta.version()}) at {stamp}.")
        self._exec(sql.SQL("COMMENT ON TABLE {} IS {}").format(self.ident(table), sql.Literal(text)))
        for f in schema:
            note = spec.columns.get(f.name) or _default_comment(f.name, str(f.type), spec)
            self._exec(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                self.ident(table), sql.Identifier(f.name), sql.Literal(note)))

    def _incremental(self, spec: PublishTable, layer: str, delta: DeltaTable, old: DeltaTable, schema: pa.Schema,
                     columns_hash: str) -> Published | None:
        from psycopg import sql

        from flowforge.engine.duckdb_engine import DuckDBEngine
        from flowforge.engine.sql import quote

        target = spec.name
        engine = DuckDBEngine()
        try:
            engine.register_delta("__new", delta)
            engine.register_delta("__old", old)
            keys = ", ".join(quote(k) for k in spec.keys)
            total = int(engine.rows("SELECT count(*) FROM __new")[0][0])
            # EXCEPT ALL: a row that appears twice now but once before is a change (and a key clash)
            changed = engine.arrow("SELECT * FROM __new EXCEPT ALL SELECT * FROM __old")
            gone = engine.arrow(f"SELECT {keys} FROM __old EXCEPT SELECT {keys} FROM __new")
        finally:
            engine.close()
        if changed.num_rows + gone.num_rows > _FULL_ABOVE * max(total, 1):
            return None
        match = sql.SQL(" AND ").join(sql.SQL("t.{} = s.{}").format(sql.Identifier(k), sql.Identifier(k))
                                      for k in spec.keys)
        with self.conn.transaction():
            self._exec("SET LOCAL lock_timeout = '30s'")
            self._exec(sql.SQL("CREATE TEMP TABLE __ff_changed (LIKE {}) ON COMMIT DROP").format(self.ident(target)))
            self._copy_into(sql.Identifier("__ff_changed"), changed.column_names, changed)
            key_cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(f.name),
                                                                  sql.SQL(pg_type(f.type, f.name, target)))
                                          for f in gone.schema)
            self._exec(sql.SQL("CREATE TEMP TABLE __ff_gone ({}) ON COMMIT DROP").format(key_cols))
            self._copy_into(sql.Identifier("__ff_gone"), gone.column_names, gone)
            for source in ("__ff_changed", "__ff_gone"):
                self._exec(sql.SQL("DELETE FROM {} t USING {} s WHERE {}").format(
                    self.ident(target), sql.Identifier(source), match))
            names = sql.SQL(", ").join(sql.Identifier(c) for c in schema.names)
            self._exec(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM __ff_changed").format(
                self.ident(target), names, names))
            self._exec(sql.SQL("COMMENT ON TABLE {} IS {}").format(self.ident(target), sql.Literal(
                f"{spec.description + '. ' if spec.description else ''}Published by FlowForge from {layer} table "
                f"{spec.table} (Delta version {delta.version()}) at "
                f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.")))
            rows = int(self._exec(self._count(target)).fetchone()[0])
            self._record(spec, delta, columns_hash, rows, "incremental")
        return Published(spec.table, target, "incremental", rows, changed.num_rows + gone.num_rows, delta.version(),
                         f"{changed.num_rows} upserted, {gone.num_rows} deleted")


def _check_unique(delta: DeltaTable, spec: PublishTable) -> None:
    """A primary key needs one row per key: say which key repeats before anything is written."""
    from flowforge.engine.duckdb_engine import DuckDBEngine
    from flowforge.engine.sql import quote
    from flowforge.errors import CheckFailed

    engine = DuckDBEngine()
    try:
        engine.register_delta("__t", delta)
        keys = ", ".join(quote(k) for k in spec.keys)
        row = engine.rows(f"SELECT {keys}, count(*) FROM __t GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
    finally:
        engine.close()
    if row:
        example = ", ".join(f"{k}={v!r}" for k, v in zip(spec.keys, row[0][:-1], strict=True))
        raise CheckFailed(f"Publish {spec.table}: {row[0][-1]} rows have the key {example}; the warehouse table's "
                          f"primary key ({', '.join(spec.keys)}) needs one row per key. Nothing was published.",
                          hint="Fix the table's SQL, or publish it without 'keys'.")


def _flat(indexes: tuple[str | tuple[str, ...], ...]) -> list[str]:
    return [c for index in indexes for c in ((index,) if isinstance(index, str) else index)]


_KNOWN = {
    "valid_from": "When this version became valid (SCD2)",
    "valid_to": "When the next version began or the key was deleted; NULL while current (SCD2)",
    "is_current": "True for the current version of the key (SCD2)",
    "_changed_at": "When the newest change folded into this version happened (SCD2)",
}


def _default_comment(name: str, type_: str, spec: PublishTable) -> str:
    if name in _KNOWN:
        return _KNOWN[name]
    role = " (primary key)" if name in spec.keys else ""
    return f"{type_}{role}; from lakehouse table {spec.table}"


def connect(config: Any, describe: str) -> psycopg.Connection[Any]:
    """A writing connection; failures become ConnectionFailed without the password."""
    import psycopg

    from flowforge.connectors.sql.postgres.config import PostgresConfig
    from flowforge.errors import ConnectionFailed, map_exceptions

    if not isinstance(config, PostgresConfig):
        raise ConfigError(f"{describe}: publish writes to PostgreSQL, this is a {config.type} connection.",
                          hint="Point the publish job at a postgres connection.")
    with map_exceptions({psycopg.OperationalError: ConnectionFailed}, f"{describe}: could not connect",
                        hint="Check that the warehouse is up and the connection's host, user and password."):
        # autocommit: each ``with conn.transaction()`` below is a whole transaction of its own
        return psycopg.connect(writer_conninfo(config), autocommit=True)
