"""The initial snapshot: each table's rows as ``op='r'`` events, read in the exported snapshot
of the slot's creation so that the slot streams exactly the changes the snapshot does not hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors.cdc.events import pg_txn_position
from flowforge.connectors.cdc.pg_logical.pgoutput import UNKNOWN_DEFAULT, EventColumns, Relation
from flowforge.connectors.sql import common
from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

DIALECT = "postgres"

# Key = the replica identity index (the primary key by default): what pgoutput flags as key.
# A column added with a default that needs no table rewrite keeps the value older rows read in
# attmissingval; one added with a volatile default (random(), clock_timestamp()) rewrote the
# table with values nobody logged. Built-in functions are not in pg_depend: the function ids are
# read from the default's expression tree.
_COLUMNS_SQL = r"""
SELECT c.oid, n.nspname, c.relname, a.attname, a.atttypid, a.atttypmod,
       COALESCE((SELECT bool_or(i.indisreplident OR (c.relreplident = 'd' AND i.indisprimary)) FROM pg_index i
                 WHERE i.indrelid = c.oid AND a.attnum = ANY (i.indkey)), false),
       a.atthasmissing, CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END,
       EXISTS (SELECT 1 FROM pg_attrdef d
               CROSS JOIN LATERAL regexp_matches(d.adbin::text, ':(?:op)?funcid (\d+)', 'g') AS f(m)
               JOIN pg_proc p ON p.oid = f.m[1]::oid AND p.provolatile = 'v'
               WHERE d.adrelid = c.oid AND d.adnum = a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
WHERE c.oid = %s::regclass
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
    defaults: dict[str, Any] = {}
    for r in rows:
        if r[7] and r[8] is not None:
            defaults[r[3]] = r[8]
        elif not r[7] and r[9]:
            defaults[r[3]] = UNKNOWN_DEFAULT
    return Relation(
        oid=int(rows[0][0]), schema=rows[0][1], name=rows[0][2], columns=tuple(r[3] for r in rows),
        key_columns=tuple(r[3] for r in rows if r[6]), type_oids=tuple(int(r[4]) for r in rows),
        typmods=tuple(int(r[5]) for r in rows), defaults=defaults)


def quoted(rel: Relation) -> str:
    return common.quote_table(rel.schema, rel.name, DIALECT)


def select_sql(rel: Relation) -> str:
    # Text casts: the same text output functions pgoutput uses, so values convert identically.
    cols = ", ".join(f"{common.quote_ident(c, DIALECT)}::text" for c in rel.columns)
    return f"SELECT {cols} FROM {quoted(rel)}"


def snapshot_batches(conn: psycopg.Connection[Any], rel: Relation, lsn: int, batch_size: int,
                     limit: int | None = None, *, marker: bool = False,
                     max_bytes: int = 64 << 20) -> Iterator[pa.RecordBatch]:
    """``r`` events of one table in batches (``conn`` is inside the snapshot transaction), stamped
    with the snapshot's time. ``marker`` first emits a ``t`` event with ``_snapshot`` ``reset``:
    the snapshot replaces what silver holds of the table (rows deleted while no slot recorded
    changes, before a reset or a restarted snapshot, must not stay)."""
    # The first streamed change can sit exactly at the consistent point: snapshot rows go one
    # byte before it, so every snapshot row sorts before every change.
    position = pg_txn_position(lsn - 1, 0)
    row = conn.execute("SELECT (extract(epoch FROM now()) * 1000000)::int8").fetchone()
    ts = int(row[0]) if row else None
    out = EventColumns()
    if marker:
        out.append("t", rel, position, None, None, None, ts, "reset")
    with conn.cursor(name=f"ff_snapshot_{rel.oid}") as cur:
        cur.itersize = batch_size
        cur.execute(select_sql(rel) + (f" LIMIT {int(limit)}" if limit is not None else ""))
        while rows := cur.fetchmany(batch_size):
            for values in rows:
                after = rel.values(values)
                out.append("r", rel, position, rel.key_of(after), None, after, ts, "true")
                if out.nbytes >= max_bytes:
                    yield out.flush()
            if len(out):
                yield out.flush()
    if len(out):
        yield out.flush()
