"""The initial snapshot: each table's rows as ``op='r'`` events, read in the exported snapshot
of the slot's creation so that the slot streams exactly the changes the snapshot does not hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors.cdc.events import pg_position
from flowforge.connectors.cdc.pg_logical.pgoutput import EventColumns, Relation
from flowforge.connectors.sql import common
from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

DIALECT = "postgres"

# Key = the replica identity index (the primary key by default): what pgoutput flags as key.
_COLUMNS_SQL = """
SELECT c.oid, n.nspname, c.relname, a.attname, a.atttypid, a.atttypmod,
       COALESCE(bool_or(i.indisreplident OR (c.relreplident = 'd' AND i.indisprimary)), false)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
LEFT JOIN pg_index i ON i.indrelid = c.oid AND a.attnum = ANY (i.indkey)
WHERE c.oid = %s::regclass
GROUP BY c.oid, n.nspname, c.relname, a.attname, a.atttypid, a.atttypmod, a.attnum
ORDER BY a.attnum
"""


def describe_table(conn: psycopg.Connection[Any], table: str, default_schema: str, where: str) -> Relation:
    schema, name = common.split_table(table, DIALECT)
    quoted = common.quote_table(schema or default_schema, name, DIALECT)
    exists = conn.execute("SELECT to_regclass(%s)", (quoted,)).fetchone()
    if not exists or exists[0] is None:
        raise SourceNotFound(f"{where}: table {table!r} does not exist or is not visible to this user.",
                             hint="Check the 'tables' of this connection (schema-qualified names).")
    rows = conn.execute(_COLUMNS_SQL, (quoted,)).fetchall()
    return Relation(
        oid=int(rows[0][0]), schema=rows[0][1], name=rows[0][2], columns=tuple(r[3] for r in rows),
        key_columns=tuple(r[3] for r in rows if r[6]), type_oids=tuple(int(r[4]) for r in rows),
        typmods=tuple(int(r[5]) for r in rows))


def quoted(rel: Relation) -> str:
    return common.quote_table(rel.schema, rel.name, DIALECT)


def select_sql(rel: Relation) -> str:
    # Text casts: the same text output functions pgoutput uses, so values convert identically.
    cols = ", ".join(f"{common.quote_ident(c, DIALECT)}::text" for c in rel.columns)
    return f"SELECT {cols} FROM {quoted(rel)}"


def snapshot_batches(conn: psycopg.Connection[Any], rel: Relation, lsn: int, batch_size: int,
                     limit: int | None = None) -> Iterator[pa.RecordBatch]:
    """``r`` events of one table in batches (``conn`` is inside the snapshot transaction)."""
    # The first streamed change can sit exactly at the consistent point: snapshot rows go one
    # byte before it, so every snapshot row sorts before every change.
    position = pg_position(lsn - 1)
    out = EventColumns()
    with conn.cursor(name=f"ff_snapshot_{rel.oid}") as cur:
        cur.itersize = batch_size
        cur.execute(select_sql(rel) + (f" LIMIT {int(limit)}" if limit is not None else ""))
        while rows := cur.fetchmany(batch_size):
            for row in rows:
                after = rel.values(row)
                out.append("r", rel, position, rel.key_of(after), None, after, None, "true")
            yield out.flush()
