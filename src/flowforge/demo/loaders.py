"""Write the BFSI demo data to SQLite, PostgreSQL and the CRM CSV file.

Tables are created from :data:`flowforge.demo.schema.DDL`, so every column carries its
declared type (``balance DECIMAL(15,2)``, ``modified_date TIMESTAMP``) and a database
connector reading them back sees the same types the generator meant.

Example::

    data = generate(scale=1.0, seed=42)
    write_sqlite(data, "bfsi.db")
    write_postgres(data, "postgresql://postgres@127.0.0.1:5432/bfsi", schema="core_banking")
    write_crm_csv(data, "crm_customers.csv")
"""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from flowforge.demo.schema import DATABASE_TABLES, TableDDL
from flowforge.errors import ConnectionFailed, map_exceptions, redact

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

    from flowforge.demo.bfsi import BfsiData

_COPY_BATCH_ROWS = 65_536


# --- SQL text -------------------------------------------------------------------------------------------

def postgres_type(sql_type: str) -> str:
    """Portable type → PostgreSQL type (``DECIMAL(15,2)`` → ``NUMERIC(15,2)``)."""
    return re.sub(r"^DECIMAL\b", "NUMERIC", sql_type)


def create_table_sql(
    ddl: TableDDL, qualified_name: str, *, constraints: bool = True,
    type_map: Callable[[str], str] = lambda t: t,
) -> str:
    """``CREATE TABLE`` with declared types; keys inline unless ``constraints`` is false."""
    lines = [f"{c.name} {type_map(c.sql_type)}{'' if c.nullable else ' NOT NULL'}" for c in ddl.columns]
    if constraints:
        lines += constraint_clauses(ddl, prefix="")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {qualified_name} (\n  {body}\n)"


def constraint_clauses(ddl: TableDDL, prefix: str) -> list[str]:
    """PRIMARY KEY / FOREIGN KEY clauses; ``prefix`` qualifies referenced tables (``"sales".``)."""
    clauses = [f"PRIMARY KEY ({', '.join(ddl.primary_key)})"]
    for col, table, ref in ddl.foreign_keys:
        clauses.append(f"FOREIGN KEY ({col}) REFERENCES {prefix}{table} ({ref})")
    return clauses


# --- SQLite ---------------------------------------------------------------------------------------------

def sqlite_columns(table: pa.Table) -> list[list[Any]]:
    """Arrow columns as Python lists in the text forms SQLite stores.

    Dates ``YYYY-MM-DD``, times ``HH:MM:SS``, timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` (fixed
    width, so text comparison orders them), decimals as their exact string, booleans 0/1.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[list[Any]] = []
    for col in table.columns:
        t = col.type
        if pa.types.is_time(t):
            out.append(pc.utf8_slice_codeunits(col.cast(pa.string()), 0, 8).to_pylist())
        elif pa.types.is_decimal(t) or pa.types.is_temporal(t):
            out.append(col.cast(pa.string()).to_pylist())
        elif pa.types.is_boolean(t):
            out.append(col.cast(pa.int8()).to_pylist())
        else:
            out.append(col.to_pylist())
    return out


def write_sqlite(data: BfsiData, path: str | os.PathLike[str]) -> None:
    """Create or replace ``customers``, ``accounts`` and ``transactions`` in the SQLite file."""
    with closing(sqlite3.connect(os.fspath(path), isolation_level=None)) as conn:
        conn.execute("BEGIN")
        try:
            for name in reversed(DATABASE_TABLES):
                conn.execute(f"DROP TABLE IF EXISTS {name}")
            for name in DATABASE_TABLES:
                ddl = data.ddl[name]
                conn.execute(create_table_sql(ddl, name))
                marks = ", ".join("?" * len(ddl.columns))
                rows = zip(*sqlite_columns(data.table(name)), strict=True)
                conn.executemany(f"INSERT INTO {name} ({', '.join(ddl.column_names)}) VALUES ({marks})", rows)
                conn.execute(f"CREATE INDEX ix_{name}_modified_date ON {name} (modified_date)")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# --- PostgreSQL -----------------------------------------------------------------------------------------

def libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg://`` URLs by dropping the ``+driver`` part."""
    return re.sub(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://", r"\1://", url)


def connect_postgres(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a psycopg connection; failures become :class:`ConnectionFailed` without the password."""
    import psycopg

    with map_exceptions(
        {psycopg.OperationalError: ConnectionFailed},
        f"Demo database ({redact(url)}): could not connect",
        hint="Check that PostgreSQL is running and the URL's host, port, user and database are right.",
    ):
        return psycopg.connect(libpq_url(url))


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False)
    for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, options)
        yield buf.getvalue()


def write_postgres(data: BfsiData, url: str, schema: str = "public") -> None:
    """Create ``schema`` if missing, then drop, create and bulk-load the three tables with COPY.

    Keys and indexes are added after the load (one pass over sorted data instead of a check per
    row); everything happens in one transaction, so a failure leaves the previous tables intact.
    """
    from psycopg import sql

    with connect_postgres(url) as conn, conn.cursor() as cur:
        def ident(*parts: str) -> str:
            return sql.Identifier(*parts).as_string(conn)

        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
        cur.execute("DROP TABLE IF EXISTS " + ", ".join(ident(schema, t) for t in reversed(DATABASE_TABLES)))
        for name in DATABASE_TABLES:
            ddl, target = data.ddl[name], ident(schema, name)
            cur.execute(create_table_sql(ddl, target, constraints=False, type_map=postgres_type))
            columns = ", ".join(ident(c) for c in ddl.column_names)
            with cur.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                for chunk in _csv_chunks(data.table(name)):
                    copy.write(chunk)
        for name in DATABASE_TABLES:
            ddl, target = data.ddl[name], ident(schema, name)
            for clause in constraint_clauses(ddl, prefix=f"{ident(schema)}."):
                cur.execute(f"ALTER TABLE {target} ADD {clause}")
            cur.execute(f"CREATE INDEX {ident(f'ix_{name}_modified_date')} ON {target} (modified_date)")
            cur.execute(f"ANALYZE {target}")


# --- CSV ------------------------------------------------------------------------------------------------

def csv_columns(table: pa.Table) -> list[Sequence[Any]]:
    """Columns as text: ISO dates, exact decimals, ``true``/``false``; NULL becomes an empty field."""
    import pyarrow as pa

    return [["" if v is None else v for v in col.cast(pa.string()).to_pylist()] for col in table.columns]


def write_crm_csv(data: BfsiData, path: str | os.PathLike[str]) -> None:
    """Write the CRM extract (one row per customer) as a UTF-8 CSV file with a header row."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(data.crm.column_names)
        writer.writerows(zip(*csv_columns(data.crm), strict=True))
