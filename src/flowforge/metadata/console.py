"""The SQL console's query history (per user) and the catalog's descriptions and column comments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from flowforge.metadata import queries as q
from flowforge.metadata.tables import query_history, table_docs

if TYPE_CHECKING:
    from flowforge.metadata.store import MetadataStore

HISTORY_KEPT = 200  # per user; older entries are dropped as new ones arrive


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    id: int
    sql: str
    ran_at: datetime
    rows: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DocRecord:
    table_name: str
    column_name: str  # "" for the table's own description
    text: str
    updated_at: datetime
    updated_by: str


class ConsoleStore:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- query history -----------------------------------------------------------------------------
    def add_history(self, username: str, sql: str, rows: int | None, error: str | None) -> None:
        with self._store._begin() as conn:
            conn.execute(insert(query_history).values(username=username, sql=sql, ran_at=q.now(), rows=rows,
                                                      error=error))
            keep = select(query_history.c.id).where(query_history.c.username == username).order_by(
                query_history.c.id.desc()).limit(HISTORY_KEPT)
            conn.execute(delete(query_history).where(query_history.c.username == username,
                                                     query_history.c.id.not_in(keep.scalar_subquery())))

    def history(self, username: str, limit: int = 50) -> list[HistoryRecord]:
        with self._store._begin() as conn:
            rows = conn.execute(select(query_history.c.id, query_history.c.sql, query_history.c.ran_at,
                                       query_history.c.rows, query_history.c.error)
                                .where(query_history.c.username == username)
                                .order_by(query_history.c.id.desc()).limit(limit))
            return [HistoryRecord(**r._mapping) for r in rows]

    def clear_history(self, username: str) -> int:
        with self._store._begin() as conn:
            return int(conn.execute(delete(query_history).where(query_history.c.username == username)).rowcount)

    # -- descriptions and comments ---------------------------------------------------------------------
    def docs(self, table: str | None = None) -> list[DocRecord]:
        stmt = select(table_docs.c.table_name, table_docs.c.column_name, table_docs.c.text,
                      table_docs.c.updated_at, table_docs.c.updated_by)
        if table is not None:
            stmt = stmt.where(table_docs.c.table_name == table)
        with self._store._begin() as conn:
            return [DocRecord(**r._mapping) for r in conn.execute(stmt.order_by(table_docs.c.table_name,
                                                                                  table_docs.c.column_name))]

    def set_doc(self, table: str, column: str, text: str, actor: str) -> None:
        """Set (or, with empty text, remove) a description or comment; audited with its old text."""
        where = (table_docs.c.table_name == table, table_docs.c.column_name == column)
        with self._store._begin() as conn:
            old = conn.execute(select(table_docs.c.text).where(*where)).scalar_one_or_none()
            if old == (text or None):
                return
            if not text:
                conn.execute(delete(table_docs).where(*where))
            elif old is None:
                conn.execute(insert(table_docs).values(table_name=table, column_name=column, text=text,
                                                       updated_at=q.now(), updated_by=actor))
            else:
                conn.execute(update(table_docs).where(*where).values(text=text, updated_at=q.now(),
                                                                     updated_by=actor))
            object_id = f"{table}.{column}" if column else table
            q.write_audit(conn, actor, "catalog.comment" if column else "catalog.describe", "table", object_id,
                          {"text": old} if old is not None else None, {"text": text} if text else None)
