"""PostgreSQL logical decoding source: a ``pgoutput`` slot read through SQL functions.

Positions and the snapshot handoff
----------------------------------
* **First run** (no stored state): the publication ``flowforge_<slot>`` is created for the
  configured tables and the slot with ``CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT
  'export')`` on a replication connection, which returns the slot's consistent point and the name
  of a snapshot taken at exactly that point. ``read`` imports that snapshot (``SET TRANSACTION
  SNAPSHOT``) and emits every row as an ``r`` event at the position just before the consistent point. The slot decodes
  exactly the transactions committed after that point, so nothing is lost or read twice across
  the handoff. ``new_state`` is ``{"lsn": <consistent point>}``. Each table's rows follow a ``t``
  event with ``_snapshot`` ``reset``: the snapshot replaces what silver holds. A first run (or a
  snapshot) that did not finish committing drops the slot and starts over.
* **Later runs**: ``plan`` first advances the slot to the stored LSN (``pg_replication_slot_advance``)
  — that LSN was committed with bronze rows, so the slot is never ahead of bronze — then fixes the
  upper bound at ``pg_current_wal_flush_lsn()``. ``read`` peeks (never consumes) changes up to it.
  A transaction is emitted iff its commit record starts before the bound, and advancing the slot
  to the bound later skips exactly those transactions, so a crash between read and commit replays
  the same events and a commit moves on to newer ones only.
* **Chunks**: batches carry the state to resume from (``events.with_resume``): after a whole
  transaction, the end of its commit record; inside one, the last whole transaction's end plus
  ``skip`` (that transaction and the last position bronze holds of it), so bronze commits a long
  read, or one huge transaction, in bounded chunks.
* **Idle**: ``cdc_poll`` decodes the pending WAL to tell changes of the captured tables from WAL
  of other databases; with none, the position is committed without events once
  ``idle_advance_bytes`` of WAL sit behind the slot, so the server can recycle it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
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
from flowforge.connectors.cdc.events import PositionLost, event_schema, with_resume
from flowforge.connectors.cdc.pg_logical import pgoutput, snapshot
from flowforge.connectors.sql import common
from flowforge.connectors.sql.postgres import catalog
from flowforge.errors import ConnectorError, MissingDependencyError, SourceNotFound

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

    from flowforge.connectors.cdc.pg_logical.config import PgLogicalConfig

_INSTALL = "pip install 'flowforge[postgres]'"
_SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex -c extra_float_digits=1"
_POLL_ROWS = 10_000
_PEEK_SQL = ("SELECT (lsn - '0/0'::pg_lsn)::int8, data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, NULL, "
             "'proto_version', '1', 'publication_names', %s)")


@register_connector("pg_logical")
class PgLogicalConnector(Connector):
    """Change events from a PostgreSQL logical replication slot (``pgoutput``), snapshot first.

    ```yaml
    connections:
      shop_cdc: {type: pg_logical, url: "postgresql://replicator@db1/shop", slot: ff_shop,
                 tables: [public.orders]}
    jobs:
      - name: orders_cdc
        kind: cdc
        source: {connection: shop_cdc}
    ```
    """

    capabilities = ConnectorCapabilities(tables=True, cdc=True)
    config: PgLogicalConfig

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._exporter: psycopg.Connection[Any] | None = None  # holds the exported snapshot open
        self._snapshot_name = ""
        self._control_conn: psycopg.Connection[Any] | None = None

    def describe(self) -> str:
        return f"Connection '{self.name}' ({self.config.describe()})"

    # -- connections ----------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return common.translate_errors(f"{self.describe()}: {action}", catalog.RULES, catalog.fallback())

    def _connect(self, *, replication: bool = False) -> psycopg.Connection[Any]:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict, make_conninfo
        except ImportError as exc:
            raise MissingDependencyError(f"The pg_logical connector needs psycopg: {_INSTALL}") from exc
        params: dict[str, Any] = conninfo_to_dict(self.config.libpq_url())
        params.update(self.config.options)
        params["options"] = f"{params.get('options', '')} {_SESSION}".strip()
        params.setdefault("connect_timeout", str(self.config.connect_timeout))
        params.setdefault("application_name", "flowforge-cdc")
        if replication:
            params["replication"] = "database"
        with self._errors("could not connect"):
            return psycopg.connect(make_conninfo(**params), autocommit=True)

    # -- discovery ------------------------------------------------------------------------

    def test(self) -> ConnectionTest:
        started = time.perf_counter()
        with closing(self._connect()) as conn, self._errors("connection test failed"):
            row = conn.execute("SELECT current_setting('server_version'), current_setting('wal_level')").fetchone()
        if row is None or row[1] != "logical":
            raise ConnectorError(f"{self.describe()}: wal_level is {row[1] if row else '?'}, CDC needs 'logical'.",
                                 hint="Set wal_level = logical in postgresql.conf and restart the server.")
        return ConnectionTest(ok=True, server_version=f"PostgreSQL {row[0]}",
                              latency_ms=(time.perf_counter() - started) * 1000)

    def list_tables(self) -> list[TableInfo]:
        out = []
        for table in self.config.tables:
            schema, name = common.split_table(table, snapshot.DIALECT)
            out.append(TableInfo(name=name, schema=schema or self.config.schema_))
        return out

    def columns(self, request: ReadRequest) -> list[ColumnInfo]:
        return [ColumnInfo(f.name, str(f.type), f.type, f.nullable) for f in event_schema()]

    def preview(self, request: ReadRequest, limit: int = 10) -> pa.Table:
        """Current rows as ``r`` events, read without touching the slot (planning a first run
        would drop and recreate it)."""
        import pyarrow as pa

        with closing(self._connect()) as conn, self._errors("could not preview"):
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            table = request.table or self.config.tables[0]
            rel = snapshot.describe_table(conn, table, self.config.schema_, self.describe())
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            lsn = pgoutput.parse_lsn(row[0]) if row else 1
            batches = list(snapshot.snapshot_batches(conn, rel, lsn, limit, limit=limit))
            conn.execute("COMMIT")
        return pa.Table.from_batches(batches, schema=event_schema())

    def row_count(self, request: ReadRequest) -> int:
        with closing(self._connect()) as conn, self._errors("could not count rows"):
            rels = [snapshot.describe_table(conn, t, self.config.schema_, self.describe())
                    for t in ([request.table] if request.table else self.config.tables)]
            total = 0
            for rel in rels:
                row = conn.execute(f"SELECT count(*) FROM {snapshot.quoted(rel)}").fetchone()
                total += int(row[0]) if row else 0
            return total

    # -- slot management ------------------------------------------------------------------

    def _slot(self, conn: psycopg.Connection[Any]) -> tuple[int, bool] | None:
        row = conn.execute("SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots "
                           "WHERE slot_name = %s AND database = current_database()", (self.config.slot,)).fetchone()
        return None if row is None else (pgoutput.parse_lsn(row[0]), bool(row[1]))

    def _ensure_publication(self, conn: psycopg.Connection[Any]) -> list[pgoutput.Relation]:
        where = self.describe()
        rels = [snapshot.describe_table(conn, t, self.config.schema_, where) for t in self.config.tables]
        name = self.config.publication_name
        tables = ", ".join(snapshot.quoted(r) for r in rels)
        quoted_name = common.quote_ident(name, "postgres")
        if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is None:
            if self.config.publication:
                raise SourceNotFound(f"{where}: publication {name!r} does not exist.",
                                     hint="Create it (CREATE PUBLICATION … FOR TABLE …) or omit 'publication'.")
            conn.execute(f"CREATE PUBLICATION {quoted_name} FOR TABLE {tables}")
        elif not self.config.publication:
            # Our own publication follows the configured tables (a dropped and recreated table
            # silently leaves a publication).
            rows = conn.execute("SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                                "WHERE pubname = %s", (name,)).fetchall()
            if {r[0] for r in rows} != {r.qualified for r in rels}:
                conn.execute(f"ALTER PUBLICATION {quoted_name} SET TABLE {tables}")
        return rels

    def drop_slot(self) -> None:
        """Drop the slot and its publication."""
        with closing(self._connect()) as conn, self._errors("could not drop the replication slot"):
            if self._slot(conn) is not None:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
            if not self.config.publication:
                name = common.quote_ident(self.config.publication_name, "postgres")
                conn.execute(f"DROP PUBLICATION IF EXISTS {name}")

    def reset_cdc(self) -> str:
        """Drop the slot unless a session streams from it now (the next run's snapshot creates a
        new one either way), so the server stops retaining WAL for it at once."""
        with closing(self._connect()) as conn, self._errors("could not drop the replication slot"):
            slot = self._slot(conn)
            if slot is None:
                return f"slot {self.config.slot} does not exist; the next run creates it with a new snapshot"
            if slot[1]:
                return f"slot {self.config.slot} is in use right now; the next run drops and recreates it"
            conn.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
        return f"slot {self.config.slot} dropped; the next run creates it again with a new snapshot"

    def _control(self) -> psycopg.Connection[Any]:
        """The connection for planning, kept between micro-batches of ``--follow``."""
        conn = self._control_conn
        if conn is not None and not conn.closed:
            try:
                conn.execute("SELECT 1")
                return conn
            except Exception:  # a dropped connection: connect again
                conn.close()
        self._control_conn = self._connect()
        return self._control_conn

    # -- extract --------------------------------------------------------------------------

    def _position(self, conn: psycopg.Connection[Any], state: dict[str, Any]) -> tuple[int, int]:
        """(stored LSN, upper bound) after advancing the slot to what bronze holds."""
        stored = pgoutput.parse_lsn(str(state["lsn"]))
        slot = self._slot(conn)
        if slot is None:
            raise PositionLost(
                f"{self.describe()}: replication slot {self.config.slot!r} is gone, so changes after "
                f"{state['lsn']} can no longer be read.",
                hint="Reset the job's CDC state to take a new snapshot: flowforge cdc reset <workflow> <job>.")
        confirmed, _active = slot
        if confirmed > stored:
            raise PositionLost(
                f"{self.describe()}: slot {self.config.slot!r} is at {pgoutput.format_lsn(confirmed)}, "
                f"ahead of the position bronze holds ({state['lsn']}); changes in between are lost.",
                hint="Another consumer uses this slot: give each CDC job its own slot, then reset the job "
                     "(flowforge cdc reset <workflow> <job>).")
        if confirmed < stored:
            # Only what bronze already holds is released: the slot never runs ahead of bronze.
            conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.config.slot, state["lsn"]))
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        return stored, pgoutput.parse_lsn(row[0]) if row else stored

    def plan(self, request: ReadRequest, state: dict[str, Any] | None) -> ReadPlan:
        schema = event_schema()
        if not state or "lsn" not in state:
            with closing(self._connect()) as conn, self._errors("could not plan the CDC read"):
                return self._plan_first(conn, request)
        with self._errors("could not plan the CDC read"):
            stored, upper = self._position(self._control(), state)
        new_state = {"slot": self.config.slot, "lsn": pgoutput.format_lsn(max(upper, stored))}
        return ReadPlan(request=request, schema=schema, new_state=new_state,
                        has_data=upper > stored or "skip" in state,
                        commit_without_events=upper - stored >= self.config.idle_advance_bytes,
                        description=f"slot {self.config.slot} changes after {state['lsn']} up to {new_state['lsn']}",
                        bounds=(dict(state), new_state["lsn"]))

    def cdc_poll(self, request: ReadRequest, state: dict[str, Any] | None) -> CdcPoll:
        """Changes of the captured tables since the stored position, found by decoding (other
        databases and the background writer move the WAL too). With none, the position is worth
        committing once ``idle_advance_bytes`` of WAL piled up behind the slot."""
        if not state or "lsn" not in state or "skip" in state:
            return CdcPoll(changes=True)
        with self._errors("could not look for changes"):
            conn = self._control()
            try:
                stored, upper = self._position(conn, state)
            except PositionLost:
                return CdcPoll(changes=True)  # the run reports it, with the way out
            if upper <= stored:
                return CdcPoll(changes=False)
            # pgoutput (PostgreSQL 15+) sends nothing for transactions without captured changes;
            # older servers send Begin/Commit pairs, so look past those
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE get_byte(data, 0) NOT IN (66, 67)), count(*) FROM "
                "pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, 'proto_version', '1', "
                "'publication_names', %s)",
                (self.config.slot, pgoutput.format_lsn(upper), _POLL_ROWS, self.config.publication_name)).fetchone()
        found, rows = (int(row[0]), int(row[1])) if row else (0, 0)
        if found or rows >= _POLL_ROWS:
            return CdcPoll(changes=True)
        if upper - stored >= self.config.idle_advance_bytes:
            return CdcPoll(changes=False, advance={"slot": self.config.slot, "lsn": pgoutput.format_lsn(upper)})
        return CdcPoll(changes=False)

    def _plan_first(self, conn: psycopg.Connection[Any], request: ReadRequest) -> ReadPlan:
        rels = self._ensure_publication(conn)
        slot = self._slot(conn)
        if slot is not None:
            if slot[1]:
                raise ConnectorError(f"{self.describe()}: slot {self.config.slot!r} is in use by another session.",
                                     hint="Stop the other consumer or give this job its own slot.")
            # No position was committed (a first run, a reset, or a snapshot that did not finish):
            # the new snapshot replaces whatever bronze holds from the old slot.
            conn.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
        self.close()
        exporter = self._connect(replication=True)
        mode = "export" if self.config.snapshot else "nothing"
        with self._errors("could not create the replication slot"):
            row = exporter.execute(
                f"CREATE_REPLICATION_SLOT {self.config.slot} LOGICAL pgoutput (SNAPSHOT '{mode}')").fetchone()
        if row is None:
            raise ConnectorError(f"{self.describe()}: CREATE_REPLICATION_SLOT returned nothing.")
        consistent = str(row[1])
        if self.config.snapshot:
            self._exporter, self._snapshot_name = exporter, str(row[2])
        else:
            exporter.close()
        return ReadPlan(
            request=request, schema=event_schema(), new_state={"slot": self.config.slot, "lsn": consistent},
            # Without a snapshot there is nothing to read, but the position must still commit.
            has_data=True, bounds=(None, consistent),
            description=(f"snapshot of {', '.join(r.qualified for r in rels)} at {consistent}" if self.config.snapshot
                         else f"slot {self.config.slot} created at {consistent} (no snapshot)"))

    def read(self, plan: ReadPlan) -> Iterator[SourcePart]:
        if not plan.has_data or plan.new_state is None:
            return
        if plan.bounds is not None and plan.bounds[0] is None:
            if self.config.snapshot:
                yield from self._read_snapshot(plan)
            return
        yield SourcePart(name=f"slot {self.config.slot}", modified_time=None, batches=self._stream(plan))

    def _read_snapshot(self, plan: ReadPlan) -> Iterator[SourcePart]:
        exporter = self._exporter
        if exporter is None:
            raise ConnectorError(f"{self.describe()}: the snapshot of this plan was released; plan again.")
        assert plan.new_state is not None
        lsn = pgoutput.parse_lsn(str(plan.new_state["lsn"]))
        # bronze may commit a long snapshot in chunks; until its last one, a restart takes a new snapshot
        partial = {"slot": self.config.slot, "snapshot_started": plan.new_state["lsn"]}
        try:
            with closing(self._connect()) as conn, self._errors("could not read the snapshot"):
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                conn.execute(f"SET TRANSACTION SNAPSHOT '{self._snapshot_name}'")
                rels = [snapshot.describe_table(conn, t, self.config.schema_, self.describe())
                        for t in self.config.tables]
                for rel in rels:
                    batches = snapshot.snapshot_batches(conn, rel, lsn, plan.request.batch_size, marker=True,
                                                        max_bytes=self.config.batch_bytes)
                    yield SourcePart(name=rel.qualified, modified_time=None,
                                     batches=(with_resume(b, partial) for b in batches))
                conn.execute("COMMIT")
        finally:
            self.close()

    def _stream(self, plan: ReadPlan) -> Iterator[Any]:
        """Decoded changes in batches of at most ``batch_size`` events (or ``batch_bytes`` of row
        images), each marked with the state to resume from once it is in bronze: after a whole
        transaction the slot may advance past it; inside one, a restart re-reads the transaction
        and skips what bronze already holds. So one huge transaction never has to fit in memory."""
        assert plan.new_state is not None and plan.bounds is not None
        stored_state: dict[str, Any] = plan.bounds[0]
        stored = pgoutput.parse_lsn(str(stored_state["lsn"]))
        skip = stored_state.get("skip")
        size, max_bytes = plan.request.batch_size, self.config.batch_bytes
        out = pgoutput.EventColumns()
        with closing(self._connect()) as conn, self._errors("could not read changes from the slot"):
            defaults = {rel.qualified: rel.defaults for rel in
                        (snapshot.describe_table(conn, t, self.config.schema_, self.describe())
                         for t in self.config.tables)}
            decoder = pgoutput.Decoder(out, start=stored, defaults=defaults,
                                       skip=(pgoutput.parse_lsn(skip["txn"]), str(skip["through"])) if skip else None)
            conn.execute("BEGIN")
            with conn.cursor(name="ff_peek") as cur:
                cur.itersize = size
                cur.execute(_PEEK_SQL, (self.config.slot, plan.new_state["lsn"], self.config.publication_name))
                last_lsn = -1
                while rows := cur.fetchmany(size):
                    for lsn, data in rows:
                        # cut only between WAL records: rows of one multi-insert share an LSN
                        if lsn != last_lsn and (len(out) >= size or out.nbytes >= max_bytes):
                            yield with_resume(out.flush(), self._resume(decoder))
                        decoder.feed(lsn, data)
                        last_lsn = lsn
                if len(out):
                    yield with_resume(out.flush(), self._resume(decoder))
            conn.execute("COMMIT")

    def _resume(self, decoder: pgoutput.Decoder) -> dict[str, Any]:
        state: dict[str, Any] = {"slot": self.config.slot, "lsn": pgoutput.format_lsn(decoder.last_end)}
        if decoder.in_txn and decoder.last_position:
            state["skip"] = {"txn": pgoutput.format_lsn(decoder.commit_lsn), "through": decoder.last_position}
        return state

    def close(self) -> None:
        if self._exporter is not None:
            self._exporter.close()
            self._exporter = None
        if self._control_conn is not None:
            self._control_conn.close()
            self._control_conn = None
