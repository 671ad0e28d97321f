"""SQL Server CDC source: change tables read by LSN range.

Positions and the snapshot handoff
----------------------------------
``plan`` fixes the upper bound at ``sys.fn_cdc_get_max_lsn()``; ``read`` asks each capture
instance for ``cdc.fn_cdc_get_all_changes_<instance>(from, upper, N'all update old')`` with
``from = fn_cdc_increment_lsn(stored)`` (or the instance's minimum LSN on the first run), and
``new_state`` is ``{"lsn": upper}``. Re-planning from an uncommitted state reads the same
window again; change tables are not consumed, so nothing needs releasing on commit.

The first run reads each table (``snapshot: true``) after fixing ``upper``: every row becomes an
``r`` event positioned at ``upper`` (serial 0), before every streamed change. Capture is
asynchronous, so rows changed after ``upper`` may be read both in the snapshot and again as
changes from the next window; they are replays with later positions (apply-changes converges),
never losses. ``snapshot_isolation: true`` reads all tables at one point in time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowforge.connectors import register_connector
from flowforge.connectors.base import (
    ColumnInfo,
    ConnectionTest,
    Connector,
    ConnectorCapabilities,
    ReadPlan,
    ReadRequest,
    SourcePart,
    TableInfo,
)
from flowforge.connectors.cdc.events import event_schema, to_batch
from flowforge.connectors.cdc.sqlserver_cdc import decode, lsn, sql
from flowforge.connectors.sql.sqlserver import catalog
from flowforge.errors import SourceNotFound, SourceSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.cdc.sqlserver_cdc.config import SqlServerCdcConfig


def window(stored: bytes | None, min_lsn: bytes, upper: bytes, where: str) -> tuple[bytes, bytes] | None:
    """The inclusive LSN range to read from one capture instance, or None when it has nothing new.

    A stored position older than what the change table still holds means cleanup removed
    changes that bronze never saw: that is an error, not a silent gap."""
    start = min_lsn if stored is None else lsn.increment(stored)
    if stored is not None and lsn.to_int(min_lsn) > lsn.to_int(start):
        raise SourceSchemaError(
            f"{where}: changes after {lsn.to_text(stored)} were removed by CDC cleanup (the change table "
            f"starts at {lsn.to_text(min_lsn)}).",
            hint="Run the job more often than the CDC retention (sys.sp_cdc_change_job @retention), "
                 "and reset the job's CDC state to take a new snapshot.")
    start = max(start, min_lsn, key=lsn.to_int)
    if lsn.to_int(start) > lsn.to_int(upper):
        return None
    return start, upper


@register_connector("sqlserver_cdc")
class SqlServerCdcConnector(Connector):
    """Change events from SQL Server CDC change tables, snapshot first.

    ```yaml
    connections:
      concord_cdc: {type: sqlserver_cdc, host: db1, database: ConcordDb, user: cdc_reader,
                    password: "${PW}", tables: [dbo.Product]}
    jobs:
      - name: product_cdc
        kind: cdc
        source: {connection: concord_cdc}
    ```
    """

    capabilities = ConnectorCapabilities(tables=True, cdc=True)
    config: SqlServerCdcConfig

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    def _connect(self) -> tuple[Any, str]:
        params = self.config.params()
        driver = catalog.choose_driver(self.config.driver, params)
        with catalog.translate(f"{self.describe()}: could not connect"):
            return catalog.connect(driver, params), catalog.placeholder(driver)

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        conn, _ = self._connect()
        try:
            with catalog.translate(f"{self.describe()}: connection test failed"):
                _, found = catalog.rows(conn, "SELECT @@VERSION, is_cdc_enabled FROM sys.databases "
                                              "WHERE database_id = DB_ID()")
        finally:
            conn.close()
        version, enabled = found[0] if found else ("?", False)
        if not enabled:
            raise SourceNotFound(f"{self.describe()}: CDC is not enabled on this database.",
                                 hint="Run EXEC sys.sp_cdc_enable_db, then sys.sp_cdc_enable_table for each table.")
        return ConnectionTest(ok=True, server_version=str(version).splitlines()[0],
                              latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        return [TableInfo(name=t, schema=s) for s, t in self._names()]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, str(f.type), f.type, f.nullable) for f in event_schema()]

    def _names(self) -> list[tuple[str, str]]:
        return [catalog.qualified(t, self.config.schema_, self.config.params().database, self.describe())
                for t in self.config.tables]

    def _captured(self, conn: Any, mark: str) -> list[tuple[decode.CapturedTable, bytes]]:
        out = []
        for schema, table in self._names():
            instance = self.config.capture_instance(schema, table)
            names, found = catalog.rows(conn, sql.help_capture_instance(mark), (instance,))
            if not found:
                raise SourceNotFound(f"{self.describe()}: {schema}.{table} has no capture instance {instance!r}.",
                                     hint=f"EXEC sys.sp_cdc_enable_table @source_schema = N'{schema}', "
                                          f"@source_name = N'{table}', @role_name = NULL; or set capture_instances.")
            rows = [dict(zip(names, r, strict=True)) for r in found]
            captured = decode.CapturedTable(
                schema=schema, table=table, capture_instance=instance,
                columns=tuple(r["column_name"] for r in rows), types=tuple(str(r["column_type"]) for r in rows),
                key_columns=tuple(r["key_column"] for r in rows if r["key_column"]))
            out.append((captured, bytes(rows[0]["min_lsn"] or lsn.ZERO)))
        return out

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        conn, _ = self._connect()
        try:
            with catalog.translate(f"{self.describe()}: could not plan the CDC read"):
                _, found = catalog.rows(conn, sql.MAX_LSN)
        finally:
            conn.close()
        upper = bytes(found[0][0]) if found and found[0][0] is not None else None
        if upper is None:
            raise SourceNotFound(f"{self.describe()}: sys.fn_cdc_get_max_lsn() is NULL: CDC has captured nothing yet.",
                                 hint="Check that the SQL Server Agent capture job is running.")
        stored = str(state["lsn"]) if state and "lsn" in state else None
        new_state = {"lsn": lsn.to_text(upper)}
        if stored is None:
            return ReadPlan(request=request, schema=event_schema(), new_state=new_state,
                            has_data=True, bounds=(None, new_state["lsn"]),  # commits the position only
                            description=f"snapshot of {', '.join(self.config.tables)} at {new_state['lsn']}")
        if lsn.to_int(upper) <= lsn.to_int(lsn.from_text(stored)):
            return ReadPlan(request=request, schema=event_schema(), new_state=state, has_data=False,
                            description=f"no changes after {stored}", bounds=(stored, stored))
        return ReadPlan(request=request, schema=event_schema(), new_state=new_state, has_data=True,
                        description=f"changes after {stored} up to {new_state['lsn']}",
                        bounds=(stored, new_state["lsn"]))

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if not plan.has_data or plan.bounds is None:
            return
        lower_text, upper_text = plan.bounds
        upper = lsn.from_text(str(upper_text))
        conn, mark = self._connect()
        try:
            with catalog.translate(f"{self.describe()}: could not read changes"):
                tables = self._captured(conn, mark)
                if lower_text is None:
                    if self.config.snapshot:
                        yield from self._snapshot(conn, tables, upper, plan.request.batch_size)
                    return
                stored = lsn.from_text(str(lower_text))
                for table, min_lsn in tables:
                    bounds = window(stored, min_lsn, upper, f"{self.describe()}, {table.qualified}")
                    if bounds is not None:
                        rows = self._rows(conn, sql.all_changes(table.capture_instance, table.columns, mark),
                                          bounds, plan.request.batch_size)
                        events = decode.change_events(table, rows)
                        yield SourcePart(table.qualified, None, _batches(events, plan.request.batch_size))
        finally:
            conn.close()

    def _snapshot(self, conn: Any, tables: list[tuple[decode.CapturedTable, bytes]], upper: bytes,
                  size: int) -> Iterator[SourcePart]:
        isolated = self.config.snapshot_isolation
        if isolated:
            catalog.rows(conn, sql.BEGIN_SNAPSHOT)
        for table, _ in tables:
            rows = self._rows(conn, sql.snapshot_select(table.schema, table.table, table.columns), None, size)
            yield SourcePart(table.qualified, None, _batches(decode.snapshot_events(table, rows, upper), size))
        if isolated:
            catalog.rows(conn, sql.END_SNAPSHOT)

    @staticmethod
    def _rows(conn: Any, statement: str, params: tuple[bytes, bytes] | None, size: int) -> Iterator[tuple[Any, ...]]:
        cursor = conn.cursor()
        try:
            cursor.execute(statement, params) if params else cursor.execute(statement)
            while chunk := cursor.fetchmany(size):
                yield from chunk
        finally:
            cursor.close()


def _batches(events: Iterator[Any], size: int) -> Iterator[pa.RecordBatch]:
    chunk = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield to_batch(chunk)
            chunk = []
    if chunk:
        yield to_batch(chunk)
