"""Serve embeddings from PostgreSQL with pgvector (``serve: {pgvector: ...}`` of an embed job).

Each sync brings the PostgreSQL table to the state of the Delta embeddings table: it compares
keys, text hashes and model versions on both sides, upserts what differs (binary COPY into a
staging table, then ``INSERT ... ON CONFLICT DO UPDATE``), deletes keys gone from Delta, and
builds the HNSW index (cosine distance) once — all in one transaction. Comparing instead of
replaying "what this run changed" means a sync that failed (server down) is caught up by the
next run, and a table edited by hand is repaired.

The table: the key columns, ``text``, ``text_hash``, ``model_version``, ``source_version`` and
``embedding vector(N)``, primary key on the key columns.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    import numpy as np
    import psycopg
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.connectors.base import Connector
    from flowforge.connectors.sql.postgres.config import PostgresConfig
    from flowforge.spec.embed import PgVectorTarget

_HINT = "Check the connection with 'flowforge connections test'; the user needs CREATE on the schema."


def _pg(name: str) -> str:
    return quote(name, "postgres")


def _table(name: str) -> str:
    return ".".join(_pg(p) for p in name.split("."))


def _config(connector_or_config: Any) -> PostgresConfig:
    config = getattr(connector_or_config, "config", connector_or_config)
    if getattr(config, "type", None) != "postgres":
        raise ConfigError(f"pgvector serving needs a postgres connection, not a {getattr(config, 'type', '?')} one.",
                          hint="Point serve.pgvector.connection at a PostgreSQL connection.")
    return config  # type: ignore[no-any-return]


@contextmanager
def _connect(config: PostgresConfig, context: str, *, read_only: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A session for writing the served table (the connector's own sessions are read-only)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from flowforge.connectors.sql import common
    from flowforge.connectors.sql.postgres import catalog

    params: dict[str, Any] = conninfo_to_dict(config.libpq_url())
    params.update(config.options)
    if config.sslmode:
        params["sslmode"] = config.sslmode
    params.setdefault("connect_timeout", str(config.connect_timeout))
    params.setdefault("application_name", "flowforge-pgvector")
    if read_only:
        params["options"] = (params.get("options", "") + " -c default_transaction_read_only=on").strip()
    with common.translate_errors(f"{context} ({config.describe()})", catalog.RULES,
                                 {psycopg.OperationalError: ConnectorError, psycopg.Error: ConnectorError}):
        conn = psycopg.connect(make_conninfo(**params), prepare_threshold=None)
        try:
            yield conn
        finally:
            conn.close()


def _register_vector(conn: psycopg.Connection[Any]) -> None:
    """Binary COPY of numpy float32 rows as pgvector's ``vector`` (dims int16, unused int16,
    big-endian float4s)."""
    import numpy as np
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise ConnectorError("pgvector is not installed in this database.",
                             hint="Install the extension (CREATE EXTENSION vector, as a superuser).")
    info.register(conn)

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid  # type: ignore[union-attr]  # None only when the extension is missing (raised above)

        def dump(self, obj: Any) -> bytes:
            array = np.asarray(obj, dtype=">f4")
            return struct.pack(">HH", array.shape[0], 0) + array.tobytes()

    conn.adapters.register_dumper(np.ndarray, VectorDumper)


def _pg_type(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    return "text"


def sync_pgvector(connector: Connector | PostgresConfig, target: PgVectorTarget, table: DeltaTable,
                  key: tuple[str, ...], dims: int) -> str:
    """Make ``target.table`` equal the Delta embeddings table; returns what changed, in words."""
    import pyarrow as pa

    from flowforge.engine.duckdb_engine import DuckDBEngine

    config = _config(connector)
    schema = pa.schema(table.schema().to_arrow())
    key_types = {k: _pg_type(schema.field(k).type) for k in key}
    name = _table(target.table)
    keys = ", ".join(_pg(k) for k in key)
    with _connect(config, f"pgvector table {target.table}") as conn:
        _ensure_extension(conn)
        _register_vector(conn)
        if "." in target.table:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_pg(target.table.split('.')[0])}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ("
                     + ", ".join(f"{_pg(k)} {t} NOT NULL" for k, t in key_types.items())
                     + f", text text, text_hash text, model_version text, source_version bigint, "
                       f"embedding vector({dims}), PRIMARY KEY ({keys}))")
        _check_dims(conn, target.table, dims)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {keys}, text_hash, model_version FROM {name}")
            served = pa.Table.from_pylist([dict(zip([*key, "text_hash", "model_version"], r, strict=True))
                                           for r in cur.fetchall()],
                                          schema=pa.schema([schema.field(k) for k in key]
                                                           + [pa.field("text_hash", pa.string()),
                                                              pa.field("model_version", pa.string())]))
        engine = DuckDBEngine()
        try:
            engine.register_delta("__emb", table)
            engine.register_arrow("__served", served)
            dkeys = ", ".join(quote(k) for k in key)
            upserts = engine.query(
                f"SELECT e.{dkeys.replace(', ', ', e.')}, e._text, e._text_hash, e._model_version, e._source_version, "
                f"e._embedding FROM __emb e LEFT JOIN __served s USING ({dkeys}) WHERE s.text_hash IS DISTINCT FROM "
                f"e._text_hash OR s.model_version IS DISTINCT FROM e._model_version", "pgvector sync")
            deletes = engine.query(f"SELECT {dkeys} FROM __served ANTI JOIN __emb USING ({dkeys})", "pgvector sync")
        finally:
            engine.close()
        _upsert(conn, name, key, key_types, upserts, dims)
        if deletes.num_rows:
            conn.execute(f"CREATE TEMP TABLE __gone ({', '.join(f'{_pg(k)} {t}' for k, t in key_types.items())}) "
                         "ON COMMIT DROP")
            with conn.cursor().copy(f"COPY __gone ({keys}) FROM STDIN") as copy:
                for row in deletes.to_pylist():
                    copy.write_row([row[k] for k in key])
            conn.execute(f"DELETE FROM {name} t USING __gone g WHERE "
                         + " AND ".join(f"t.{_pg(k)} = g.{_pg(k)}" for k in key))
        created = _ensure_index(conn, target)
        conn.commit()
    return (f"{upserts.num_rows:,} upserted, {deletes.num_rows:,} deleted"
            + (", HNSW index built" if created else ""))


def _ensure_extension(conn: psycopg.Connection[Any]) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:
        conn.rollback()
        raise ConnectorError(f"pgvector is not available in this database: {str(exc).splitlines()[0]}",
                             hint="Install pgvector on the server and run CREATE EXTENSION vector as a "
                                  "superuser (or grant this user the right to).") from None


def _check_dims(conn: psycopg.Connection[Any], table: str, dims: int) -> None:
    row = conn.execute("SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                       "WHERE a.attrelid = %s::regclass AND a.attname = 'embedding'", [_table(table)]).fetchone()
    if row and row[0] != f"vector({dims})":
        raise ConfigError(f"PostgreSQL table {table} holds {row[0]}, but the model makes vector({dims}).",
                          hint="Serve into another table, or drop this one so FlowForge creates it anew.")


def _upsert(conn: psycopg.Connection[Any], name: str, key: tuple[str, ...], key_types: dict[str, str],
            rows: pa.Table, dims: int) -> None:
    import numpy as np

    if rows.num_rows == 0:
        return
    columns = [*key, "text", "text_hash", "model_version", "source_version", "embedding"]
    types = [*key_types.values(), "text", "text", "text", "bigint", "vector"]
    conn.execute(f"CREATE TEMP TABLE __stage (LIKE {name}) ON COMMIT DROP")
    cols = ", ".join(_pg(c) for c in columns)
    vectors = np.asarray(rows.column("_embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False),
                         dtype=np.float32).reshape(-1, dims)
    plain = rows.drop_columns(["_embedding"]).to_pylist()
    source_names = [*key, "_text", "_text_hash", "_model_version", "_source_version"]
    with conn.cursor().copy(f"COPY __stage ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row, vector in zip(plain, vectors, strict=True):
            copy.write_row([*(row[c] for c in source_names), vector])
    updates = ", ".join(f"{_pg(c)} = EXCLUDED.{_pg(c)}" for c in columns if c not in key)
    conn.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM __stage "
                 f"ON CONFLICT ({', '.join(_pg(k) for k in key)}) DO UPDATE SET {updates}")


def _ensure_index(conn: psycopg.Connection[Any], target: PgVectorTarget) -> bool:
    if not target.hnsw:
        return False
    base = target.table.split(".")[-1]
    index = re.sub(r"\W", "_", f"{base}_embedding_hnsw")[:63]
    schema = target.table.split(".")[0] if "." in target.table else None
    exists = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s AND tablename = %s "
                          "AND schemaname = coalesce(%s, current_schema())", [index, base, schema]).fetchone()
    if exists:
        return False
    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    conn.execute(f"CREATE INDEX {_pg(index)} ON {_table(target.table)} USING hnsw (embedding vector_cosine_ops) "
                 f"WITH (m = {int(target.m)}, ef_construction = {int(target.ef_construction)})")
    return True


def nearest(config: Any, table: str, key: tuple[str, ...], vector: np.ndarray, k: int,
            ef_search: int | None = None) -> list[tuple[dict[str, Any], float]]:
    """(key, cosine similarity) of the k nearest rows by the HNSW index, best first."""
    pg = _config(config)
    literal = "[" + ",".join(f"{float(x):.9g}" for x in vector) + "]"
    keys = ", ".join(_pg(c) for c in key)
    with _connect(pg, f"pgvector search in {table}", read_only=True) as conn:
        conn.execute(f"SET hnsw.ef_search = {int(ef_search or max(64, 2 * k))}")
        rows = conn.execute(f"SELECT {keys}, 1 - (embedding <=> %s::vector) FROM {_table(table)} "
                            f"ORDER BY embedding <=> %s::vector LIMIT %s", [literal, literal, k]).fetchall()
    return [(dict(zip(key, r[:-1], strict=True)), float(r[-1])) for r in rows]
