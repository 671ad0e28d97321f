"""Where one day of e-commerce changes is applied: the demo's SQLite file or PostgreSQL schema.

Both offer the same four calls (query, update, insert an Arrow table, quote a table name) so the
change plan in ``ecommerce_change`` is written once.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flowforge.errors import SourceNotFound

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

class SqliteBackend:
    param = "?"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def table(self, name: str) -> str:
        return f'"{name}"'

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, [_sqlite_value(v) for v in params]).fetchall()

    def update(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, [[_sqlite_value(v) for v in row] for row in rows])

    def insert(self, name: str, table: pa.Table) -> None:
        from flowforge.demo.loaders import sqlite_columns

        marks = ", ".join("?" * table.num_columns)
        self.conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', zip(*sqlite_columns(table), strict=True))


def _sqlite_value(value: Any) -> Any:
    """Timestamps in the loader's fixed-width text form (text order = time order), decimals exact."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return str(value)
    return value


class PostgresBackend:
    param = "%s"

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn, self.schema = conn, schema

    def table(self, name: str) -> str:
        from psycopg import sql

        return sql.Identifier(self.schema, name).as_string(self.conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return self.conn.execute(sql, list(params)).fetchall()

    def update(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._errors(), self.conn.cursor() as cur:
            cur.executemany(sql, rows)

    def insert(self, name: str, table: pa.Table) -> None:
        from psycopg import sql

        from flowforge.demo.ecommerce_load import csv_chunks

        columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(self.schema, name), columns)
        with self._errors(), self.conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in csv_chunks(table):
                copy.write(chunk)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.errors.UndefinedTable as exc:
            raise SourceNotFound(f"The e-commerce demo tables are missing in schema {self.schema}: "
                                 f"{str(exc).splitlines()[0]}",
                                 hint="Generate them first: flowforge demo ecommerce --postgres URL") from None
