"""MySQL / MariaDB binlog source.

Positions and the snapshot handoff
----------------------------------
A position is ``(binlog file, byte offset)``; events carry ``mysql:<file>:<transaction start, 20
digits>:<event start, 20 digits>:<row in event, 6 digits>``. ``plan`` fixes the upper bound at
``SHOW MASTER STATUS`` (the end of the last committed transaction); ``read`` streams row events
from the stored position and stops at the bound; ``new_state`` is the bound. The binlog is not
consumed, so a crash before the bronze commit simply re-reads the same window. Batches carry the
state to resume from (after a whole transaction: its end; inside one: its start plus the last
event bronze holds), so bronze commits a long read, or one huge transaction, in bounded chunks.

First run: the snapshot and its binlog position are taken together. On MariaDB, ``START
TRANSACTION WITH CONSISTENT SNAPSHOT`` followed by the ``binlog_snapshot_file`` /
``binlog_snapshot_position`` status variables gives the exact binlog point of the snapshot with
no lock. On MySQL, ``FLUSH TABLES WITH READ LOCK`` is held only while the consistent-snapshot
transaction starts and ``SHOW MASTER STATUS`` is read. Rows become ``r`` events at that point
(row 0); the stream resumes from it, so every change after the snapshot is read once.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowforge.connectors import register_connector
from flowforge.connectors.base import (
    CdcPoll,
    ColumnInfo,
    ConnectionTest,
    Connector,
    ConnectorCapabilities,
    ReadPlan,
    ReadRequest,
    SourcePart,
    TableInfo,
)
from flowforge.connectors.cdc.events import (
    ChangeEvent,
    PositionLost,
    dumps,
    event_schema,
    make_event_id,
    mysql_txn_position,
    to_batch,
    with_resume,
)
from flowforge.connectors.cdc.mysql_binlog.values import Column, declared_default, json_value
from flowforge.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorError,
    FlowForgeError,
    MissingDependencyError,
    SourceNotFound,
    SourceSchemaError,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.cdc.mysql_binlog.config import MysqlBinlogConfig

_INSTALL = "pip install 'flowforge[cdc]'"
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:`?([^`.\s]+)`?\.)?`?([^`.\s;]+)`?", re.I)
_COLUMNS = ("SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, COLUMN_TYPE LIKE '%%unsigned%%', "
            "COLUMN_KEY = 'PRI', COLUMN_DEFAULT, IS_NULLABLE = 'YES', EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION")
_IN_TXN = ("SAVEPOINT", "ROLLBACK TO", "INSERT", "UPDATE", "DELETE", "REPLACE")


def split_position(text: str) -> tuple[str, int]:
    file, _, pos = text.rpartition(":")
    return file, int(pos)


def before_bound(file: str, pos: int, upper: tuple[str, int]) -> bool:
    """Binlog names carry a zero-padded sequence number, so (name, offset) compare as tuples."""
    return (file, pos) < upper


class Table:
    def __init__(self, db: str, name: str, columns: list[Column], key: tuple[str, ...]) -> None:
        self.db, self.name, self.columns, self.key = db, name, {c.name: c for c in columns}, key
        self.qualified = f"{db}.{name}"
        # what older rows hold for a column added later: InnoDB adds a column with its default in place
        self.schema: dict[str, Any] = {c.name: c.logical if c.default is None else
                                       {"type": c.logical, **c.default} for c in columns}

    def image(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in row.items():
            column = self.columns.get(name)
            out[name] = json_value(column, value) if column else value
        return out

    def event(self, op: str, position: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
              ts: dt.datetime | None, snapshot: str, seq: int) -> ChangeEvent:
        row = after if after is not None else before
        key = {c: row.get(c) for c in self.key} if row is not None and self.key else None
        key_text = dumps(key)
        return ChangeEvent(op=op, table=self.qualified, position=position, key=key_text, before=before, after=after,
                           source_ts=ts, snapshot=snapshot, schema=self.schema, seq=seq,
                           event_id=make_event_id(self.qualified, position, op, key_text or dumps(row)))


@register_connector("mysql_binlog")
class MysqlBinlogConnector(Connector):
    """Change events from a MySQL/MariaDB row-based binlog, snapshot first.

    ```yaml
    connections:
      shop_binlog: {type: mysql_binlog, host: db1, user: cdc, password: "${PW}", tables: [shop.orders]}
    jobs:
      - name: orders_cdc
        kind: cdc
        source: {connection: shop_binlog}
    ```
    """

    capabilities = ConnectorCapabilities(tables=True, cdc=True)
    config: MysqlBinlogConfig

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._snapshot_conn: Any = None  # holds the consistent-snapshot transaction from plan to read
        self._is_mariadb: bool | None = None
        # (stored position, binlog end) a poll found free of captured changes: the next poll of
        # the same stored position scans only what was written after it
        self._verified: tuple[tuple[str, int], tuple[str, int]] | None = None

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except FlowForgeError:
            raise
        except Exception as exc:
            import pymysql

            if not isinstance(exc, pymysql.MySQLError):
                raise
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            text = f"{self.describe()}: {action}: {exc.args[1] if len(exc.args) > 1 else exc}"
            if code in (1045, 1044, 1698):
                raise AuthenticationFailed(text, hint="Check the user and password of this connection.") from None
            if code in (1227, 1142, 1143):
                raise ConnectorError(text, hint="Grant REPLICATION SLAVE, REPLICATION CLIENT and SELECT "
                                                "(and RELOAD on MySQL) to this user.") from None
            if isinstance(exc, pymysql.OperationalError) and (code is None or code >= 2000):
                raise ConnectionFailed(text, hint="Check that the server is running and reachable.") from None
            raise ConnectorError(text) from None

    def _connect(self) -> Any:
        try:
            import pymysql
        except ImportError as exc:
            raise MissingDependencyError(f"The mysql_binlog connector needs PyMySQL: {_INSTALL}") from exc
        with self._errors("could not connect"):
            conn = pymysql.connect(**self.config.settings(), autocommit=True)
            conn.cursor().execute("SET time_zone = '+00:00'")
            return conn

    @staticmethod
    def _rows(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        conn = self._connect()
        try:
            with self._errors("connection test failed"):
                settings = dict(self._rows(conn, "SHOW VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
                                                 "'binlog_row_image', 'binlog_row_metadata', 'version')"))
        finally:
            conn.close()
        wanted = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
        wrong = [f"{k}={settings.get(k)}" for k, v in wanted.items() if str(settings.get(k, "")).upper() != v]
        if wrong:
            raise ConnectorError(f"{self.describe()}: the binlog is not usable for CDC ({', '.join(wrong)}).",
                                 hint="Set log_bin, binlog_format=ROW, binlog_row_image=FULL and "
                                      "binlog_row_metadata=FULL on the server.")
        return ConnectionTest(ok=True, server_version=str(settings.get("version")),
                              latency_ms=(time.perf_counter() - started) * 1000)

    def _names(self) -> list[tuple[str, str]]:
        out = []
        for name in self.config.tables:
            db, _, table = name.strip().replace("`", "").partition(".")
            if not table:
                raise SourceSchemaError(f"{self.describe()}: table {name!r} must be database.table.")
            out.append((db, table))
        return out

    def list_tables(self) -> list[TableInfo]:
        return [TableInfo(name=t, schema=d) for d, t in self._names()]

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, str(f.type), f.type, f.nullable) for f in event_schema()]

    def _tables(self, conn: Any) -> dict[tuple[str, str], Table]:
        out = {}
        for db, name in self._names():
            rows = self._rows(conn, _COLUMNS, (db, name))
            if not rows:
                raise SourceNotFound(f"{self.describe()}: table {db}.{name} does not exist or is not visible.",
                                     hint="Check the 'tables' of this connection (database.table).")
            cols = []
            for r in rows:
                column = Column(r[0], str(r[1]).lower(), r[2], r[3], bool(r[4]))
                cols.append(Column(column.name, column.data_type, column.precision, column.scale, column.unsigned,
                                   declared_default(column, r[6], bool(r[7]), str(r[8] or ""), self._mariadb(conn))))
            out[(db, name)] = Table(db, name, cols, tuple(r[0] for r in rows if r[5]))
        return out

    # -- plan -------------------------------------------------------------------------------

    def _mariadb(self, conn: Any) -> bool:
        if self._is_mariadb is None:
            self._is_mariadb = "mariadb" in str(self._rows(conn, "SELECT VERSION()")[0][0]).lower()
        return self._is_mariadb

    def _bounds(self, state: dict[str, Any]) -> tuple[tuple[str, int], tuple[str, int]]:
        conn = self._connect()
        try:
            with self._errors("could not read the binlog position"):
                file, pos = self._rows(conn, "SHOW MASTER STATUS")[0][:2]
                logs = [r[0] for r in self._rows(conn, "SHOW BINARY LOGS")]
        finally:
            conn.close()
        if state["file"] not in logs:
            raise PositionLost(f"{self.describe()}: binlog {state['file']} was purged before it was read.",
                               hint="Keep binlogs longer (binlog_expire_logs_seconds), then reset the job: "
                                    "flowforge cdc reset <workflow> <job>.")
        return (str(state["file"]), int(state["pos"])), (str(file), int(pos))

    def _idle_due(self, stored: tuple[str, int], upper: tuple[str, int]) -> bool:
        return stored[0] != upper[0] or upper[1] - stored[1] >= self.config.idle_advance_bytes

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        if not state or "file" not in state:
            return self._plan_first(request)
        stored, upper = self._bounds(state)
        where, bound = f"{stored[0]}:{stored[1]}", f"{upper[0]}:{upper[1]}"
        new_state = {"file": upper[0], "pos": upper[1]}
        has_data = upper > stored or "skip" in state
        return ReadPlan(request=request, schema=event_schema(), new_state=new_state if has_data else state,
                        has_data=has_data, commit_without_events=self._idle_due(stored, upper),
                        bounds=(dict(state), bound), description=f"binlog after {where} up to {bound}")

    def cdc_poll(self, request: ReadRequest, state: dict[str, Any] | None) -> CdcPoll:
        """Whether the binlog holds changes of the captured tables past the stored position. The
        binlog also moves with every other database on the server, so the range is scanned (from
        where the last poll of this connector stopped); with none, the position is worth
        committing once ``idle_advance_bytes`` of binlog lie behind it."""
        if not state or "file" not in state or "skip" in state:
            return CdcPoll(changes=True)
        try:
            stored, upper = self._bounds(state)
        except PositionLost:
            return CdcPoll(changes=True)  # the run reports it, with the way out
        if upper <= stored:
            return CdcPoll(changes=False)
        start = stored
        if self._verified is not None and self._verified[0] == stored and self._verified[1] > stored:
            start = self._verified[1]
        if start < upper and self._first_change(start, upper):
            return CdcPoll(changes=True)
        self._verified = (stored, upper)
        if self._idle_due(stored, upper):
            return CdcPoll(changes=False, advance={"file": upper[0], "pos": upper[1]})
        return CdcPoll(changes=False)

    def _first_change(self, lower: tuple[str, int], upper: tuple[str, int]) -> bool:
        for _ in self._stream(lower, upper, 1, None, stop_at_first=True):
            return True
        return False

    def _plan_first(self, request: ReadRequest) -> ReadPlan:
        self.close()
        conn = self._connect()
        with self._errors("could not start the snapshot"):
            status = dict(self._rows(conn, "SHOW STATUS LIKE 'binlog_snapshot_%%'"))
            if "binlog_snapshot_file" in status:  # MariaDB: exact and lockless
                self._rows(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                status = dict(self._rows(conn, "SHOW STATUS LIKE 'binlog_snapshot_%%'"))
                file, pos = status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])
            else:
                self._rows(conn, "FLUSH TABLES WITH READ LOCK")
                try:
                    self._rows(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    file, pos = self._rows(conn, "SHOW MASTER STATUS")[0][:2]
                finally:
                    self._rows(conn, "UNLOCK TABLES")
        if self.config.snapshot:
            self._snapshot_conn = conn
        else:
            conn.close()
        where = f"{file}:{int(pos)}"
        return ReadPlan(request=request, schema=event_schema(), new_state={"file": str(file), "pos": int(pos)},
                        has_data=True, bounds=(None, where),  # without a snapshot: commits the position only
                        description=f"snapshot of {', '.join(self.config.tables)} at {where}")

    # -- read -------------------------------------------------------------------------------

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if not plan.has_data or plan.bounds is None:
            return
        lower, upper = plan.bounds
        if lower is None:
            if self.config.snapshot:
                yield from self._read_snapshot(split_position(str(upper)), plan.request.batch_size)
            return
        stored = (str(lower["file"]), int(lower["pos"]))
        skip = str(lower["skip"]["through"]) if "skip" in lower else None
        yield SourcePart(name="binlog", modified_time=None,
                         batches=self._stream(stored, split_position(str(upper)), plan.request.batch_size, skip))

    def _read_snapshot(self, at: tuple[str, int], size: int) -> Iterator[SourcePart]:
        conn = self._snapshot_conn
        if conn is None:
            raise ConnectorError(f"{self.describe()}: the snapshot of this plan was released; plan again.")
        # one byte before the binlog position: the snapshot is no part of the transaction that starts there
        position = mysql_txn_position(at[0], at[1] - 1, at[1] - 1, 0)
        ts = dt.datetime.now(dt.UTC).replace(microsecond=0)
        # bronze may commit a long snapshot in chunks; until its last one, a restart takes a new snapshot
        partial = {"snapshot_started": f"{at[0]}:{at[1]}"}
        try:
            with self._errors("could not read the snapshot"):
                # whole seconds, as the binlog stamps events: a change in the snapshot's second
                # must not seem to happen before it
                row = self._rows(conn, "SELECT UNIX_TIMESTAMP(NOW())")
                if row and row[0][0] is not None:
                    ts = dt.datetime.fromtimestamp(int(row[0][0]), dt.UTC)
                for (db, name), table in self._tables(conn).items():
                    batches = self._snapshot_batches(conn, table, db, name, position, size, ts)
                    yield SourcePart(table.qualified, None, (with_resume(b, partial) for b in batches))
                self._rows(conn, "COMMIT")
        finally:
            self.close()

    def _snapshot_batches(self, conn: Any, table: Table, db: str, name: str, position: str,
                          size: int, ts: dt.datetime) -> Iterator[pa.RecordBatch]:
        """A ``t`` event with ``_snapshot`` ``reset`` (the snapshot replaces what silver holds of the
        table), then every row as an ``r`` event stamped with the snapshot's time."""
        import pymysql.cursors

        cols = list(table.columns)
        quoted = ", ".join(f"`{c.replace('`', '``')}`" for c in cols)
        chunk = [ChangeEvent(op="t", table=table.qualified, position=position, source_ts=ts, snapshot="reset",
                             schema=table.schema, seq=0)]
        seq = 0
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f"SELECT {quoted} FROM `{db.replace('`', '``')}`.`{name.replace('`', '``')}`")
            while rows := cur.fetchmany(size):
                for row in rows:
                    seq += 1
                    after = table.image(dict(zip(cols, row, strict=True)))
                    chunk.append(table.event("r", position, None, after, ts, "true", seq))
                yield to_batch(chunk)
                chunk = []
        if chunk:
            yield to_batch(chunk)

    def _stream(self, lower: tuple[str, int], upper: tuple[str, int], size: int, skip: str | None,
                *, stop_at_first: bool = False) -> Iterator[pa.RecordBatch]:
        """Row events from ``lower`` (a transaction start) to ``upper``, in batches marked with the
        state to resume from; events at or before ``skip`` are already in bronze."""
        try:
            from pymysqlreplication import BinLogStreamReader
            from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
            from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent
        except ImportError as exc:
            raise MissingDependencyError(f"The mysql_binlog connector needs mysql-replication: {_INSTALL}") from exc
        conn = self._connect()
        try:
            with self._errors("could not read table definitions"):
                tables = self._tables(conn)
        finally:
            conn.close()
        settings = self.config.settings()
        settings.pop("connect_timeout", None)
        stream = BinLogStreamReader(
            connection_settings=settings, server_id=self.config.server_id, log_file=lower[0], log_pos=lower[1],
            # file/offset dump on both servers (is_mariadb would switch the start to GTIDs)
            resume_stream=True, blocking=False,
            only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, QueryEvent, XidEvent, GtidEvent,
                         MariadbGtidEvent],
            only_schemas=sorted({db for db, _ in tables}))
        chunk: list[ChangeEvent] = []
        nbytes = seq = 0
        txn: tuple[str, int] | None = None  # (file, start) of the open transaction
        resume: dict[str, Any] = {"file": lower[0], "pos": lower[1]}
        last = ""
        try:
            with self._errors("could not read the binlog"):
                for event in stream:
                    start = int(event.packet.log_pos) - int(event.packet.event_size)  # the header too
                    if not before_bound(stream.log_file, start, upper):
                        break
                    kind = type(event).__name__
                    query = str(getattr(event, "query", "")).strip().upper() if kind == "QueryEvent" else ""
                    if kind in ("GtidEvent", "MariadbGtidEvent") or query == "BEGIN":
                        if txn is None:
                            txn, last = (stream.log_file, start), ""
                        continue
                    if len(chunk) >= size or nbytes >= self.config.batch_bytes:
                        yield with_resume(to_batch(chunk), self._resume(resume, txn, last))
                        chunk, nbytes = [], 0
                    ts = dt.datetime.fromtimestamp(int(event.timestamp), dt.UTC)
                    at = txn[1] if txn is not None else start
                    for op, table, before, after, row in self._changes(event, tables):
                        position = mysql_txn_position(stream.log_file, at, start, row)
                        if skip is not None and position <= skip:
                            continue
                        if stop_at_first:
                            yield to_batch([table.event(op, position, before, after, ts, "false", 0)])
                            return
                        seq += 1
                        chunk.append(table.event(op, position, before, after, ts, "false", seq))
                        nbytes += len(dumps(after) or "") + len(dumps(before) or "") + 200
                        last = position
                    # a transaction ends with its Xid (or COMMIT); DDL is a transaction of its own
                    if kind == "XidEvent" or (kind == "QueryEvent" and not query.startswith(_IN_TXN)):
                        txn, last = None, ""
                        resume = {"file": stream.log_file, "pos": int(event.packet.log_pos)}
            if chunk and not stop_at_first:
                yield with_resume(to_batch(chunk), self._resume(resume, txn, last))
        finally:
            stream.close()

    @staticmethod
    def _resume(resume: dict[str, Any], txn: tuple[str, int] | None, last: str) -> dict[str, Any]:
        if txn is None or not last:
            return dict(resume)
        return {"file": txn[0], "pos": txn[1], "skip": {"through": last}}

    @staticmethod
    def _changes(event: Any, tables: dict[tuple[str, str], Table]) -> Iterator[
            tuple[str, Table, dict[str, Any] | None, dict[str, Any] | None, int]]:
        kind = type(event).__name__
        if kind in ("XidEvent", "GtidEvent", "MariadbGtidEvent"):
            return
        if kind == "QueryEvent":
            match = _TRUNCATE.match(str(event.query))
            if match:
                schema = event.schema.decode() if isinstance(event.schema, bytes) else str(event.schema)
                table = tables.get((match.group(1) or schema, match.group(2)))
                if table is not None:
                    yield "t", table, None, None, 0
            return
        table = tables.get((str(event.schema), str(event.table)))
        if table is None:
            return
        for index, row in enumerate(event.rows):
            if kind == "WriteRowsEvent":
                yield "c", table, None, table.image(row["values"]), index
            elif kind == "UpdateRowsEvent":
                yield "u", table, table.image(row["before_values"]), table.image(row["after_values"]), index
            else:
                yield "d", table, table.image(row["values"]), None, index

    def close(self) -> None:
        if self._snapshot_conn is not None:
            try:
                self._snapshot_conn.close()
            finally:
                self._snapshot_conn = None
