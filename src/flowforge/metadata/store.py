"""MetadataStore: workflows, runs, watermark mirror, catalog, lineage and audit log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql import ColumnElement

from flowforge.errors import ConfigError, StorageError, map_exceptions, redact
from flowforge.metadata import queries as q
from flowforge.metadata.engine import READ_ONLY, URL_HINT, create_metadata_engine, schema_is_current, upgrade_to_head
from flowforge.metadata.records import (
    AssetIn,
    AssetRecord,
    AuditRecord,
    ConnectionRecord,
    JobRunRecord,
    JobRunStatus,
    LineageEdgeIn,
    LineageEdgeRecord,
    RunRecord,
    RunStatus,
    WatermarkRecord,
    WorkflowBrief,
    WorkflowIn,
    WorkflowRecord,
    WorkflowStatus,
)
from flowforge.metadata.tables import (
    assets,
    audit_log,
    connections,
    job_runs,
    jobs,
    lineage_edges,
    runs,
    watermarks,
    workflows,
)

if TYPE_CHECKING:
    from flowforge.metadata.alerts import AlertStore
    from flowforge.metadata.fires import FireStore
    from flowforge.metadata.leases import LeaseStore
    from flowforge.metadata.pages import PageReads
    from flowforge.metadata.sessions import SessionStore
    from flowforge.metadata.users import UserStore


class MetadataStore:
    """Run history, catalog and audit trail on SQLite (default) or PostgreSQL.

    Example::

        store = MetadataStore("sqlite:///" + str(home / "metadata.db"))
        store.migrate()
        run = store.start_run("bfsi_daily", trigger="manual", actor="alice")
        store.finish_run(run.id, status="success")
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.engine: Engine = create_metadata_engine(url)
        self._reader: Engine = self.engine.execution_options(**{READ_ONLY: True})

    @property
    def url_display(self) -> str:
        return redact(self._url)

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there (one read)."""
        from flowforge.metadata.generation import bump_on_commit

        if not schema_is_current(self.engine):
            with self._begin() as conn:
                upgrade_to_head(conn)
        bump_on_commit(self.engine)  # the generation table exists now

    def close(self) -> None:
        self.engine.dispose()

    # -- workflows & jobs ------------------------------------------------------------------

    def upsert_workflow(self, wf: WorkflowIn, actor: str) -> WorkflowRecord:
        """Register or update ``wf`` by name; audited only when something really changed."""
        after = q.workflow_state(wf)
        now = q.now()
        values = {
            "description": wf.description,
            "team": wf.team,
            "environment": wf.environment,
            "tags": after["tags"],
            "spec": after["spec"],
            "source_path": wf.source_path,
        }
        with self._read() as conn:  # a run registers its workflow every time: usually unchanged, no write
            found = q.load_workflows(conn, workflows.c.name == wf.name)
        if found and q.record_state(found[0]) == after:
            return found[0]
        try:
            with self._begin() as conn:
                return self._write_workflow(conn, wf, after, values, now, actor)
        except IntegrityError:  # registered at the same moment elsewhere (a request, a run): update that one
            with self._begin() as conn:
                return self._write_workflow(conn, wf, after, values, now, actor)

    @staticmethod
    def _write_workflow(conn: Connection, wf: WorkflowIn, after: dict[str, Any], values: dict[str, Any],
                        now: Any, actor: str) -> WorkflowRecord:
        found = q.load_workflows(conn, workflows.c.name == wf.name)
        before = q.record_state(found[0]) if found else None
        if found and before == after:
            return found[0]
        if found:
            wf_id = found[0].id
            conn.execute(update(workflows).where(workflows.c.id == wf_id).values(**values, updated_at=now))
            conn.execute(delete(jobs).where(jobs.c.workflow_id == wf_id))
        else:
            row = {**values, "name": wf.name, "status": "active", "created_at": now, "updated_at": now}
            wf_id = conn.execute(insert(workflows).values(row).returning(workflows.c.id)).scalar_one()
        if wf.jobs:
            conn.execute(
                insert(jobs),
                [{**job, "workflow_id": wf_id, "position": i} for i, job in enumerate(after["jobs"])],
            )
        action = "workflow.update" if found else "workflow.create"
        q.write_audit(conn, actor, action, "workflow", wf.name, before, after)
        return q.load_workflows(conn, workflows.c.id == wf_id)[0]


    def get_workflow(self, name: str | int) -> WorkflowRecord | None:
        """By name, or by numeric id when given an int."""
        where = workflows.c.id == name if isinstance(name, int) else workflows.c.name == name
        with self._read() as conn:
            found = q.load_workflows(conn, where)
        return found[0] if found else None

    def workflow_name(self, name: str | int) -> str | None:
        """The registered name of a workflow given by name or numeric id (one indexed lookup, no spec)."""
        where = workflows.c.id == name if isinstance(name, int) else workflows.c.name == name
        with self._read() as conn:
            found: str | None = conn.execute(select(workflows.c.name).where(where)).scalar()
        return found

    def list_workflows(self) -> list[WorkflowRecord]:
        with self._read() as conn:
            return q.load_workflows(conn, None)

    def set_workflow_status(self, name: str, status: WorkflowStatus, actor: str) -> WorkflowRecord:
        q.check(status, WorkflowStatus, "workflow status")
        with self._begin() as conn:
            current = q.require_workflow(conn, name)
            if current.status == status:
                return current
            conn.execute(
                update(workflows).where(workflows.c.id == current.id).values(status=status, updated_at=q.now())
            )
            q.write_audit(
                conn,
                actor,
                "workflow.status",
                "workflow",
                name,
                {"status": current.status},
                {"status": status},
            )
            return q.load_workflows(conn, workflows.c.id == current.id)[0]

    def rename_workflow(self, name: str, new_name: str, actor: str) -> None:
        """Give a workflow a new name; its runs, jobs and lineage stay with it (they refer to its id)."""
        with self._begin() as conn:
            current = q.require_workflow(conn, name)
            conn.execute(update(workflows).where(workflows.c.id == current.id).values(name=new_name,
                                                                                   updated_at=q.now()))
            q.write_audit(conn, actor, "workflow.rename", "workflow", new_name, {"name": name}, {"name": new_name})

    def delete_workflow(self, name: str, actor: str) -> None:
        """Delete a workflow with its jobs, runs and lineage (foreign keys cascade)."""
        with self._begin() as conn:
            current = q.require_workflow(conn, name)
            conn.execute(delete(workflows).where(workflows.c.id == current.id))
            q.write_audit(conn, actor, "workflow.delete", "workflow", name, q.record_state(current), None)

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, workflow_name: str, trigger: str, actor: str, *, status: RunStatus = "running",
                  owner: str | None = None, expires_at: datetime | None = None, slot: datetime | None = None,
                  parent_run_id: int | None = None, selection: list[str] | None = None) -> RunRecord:
        """Record a run (``queued`` while it waits for its workflow's lease); ``owner`` and ``expires_at``
        say which process runs it and until when it counts as alive without a heartbeat."""
        q.check(status, RunStatus, "run status")
        with self._begin() as conn:
            wf = q.require_workflow(conn, workflow_name)
            now = q.now()
            run_id = conn.execute(
                insert(runs)
                .values(
                    workflow_id=wf.id,
                    trigger=trigger,
                    status=status,
                    actor=actor,
                    started_at=now,
                    rows_read=0,
                    rows_written=0,
                    owner=owner,
                    heartbeat_at=now if owner else None,
                    expires_at=expires_at,
                    slot=slot,
                    parent_run_id=parent_run_id,
                    selection=selection,
                )
                .returning(runs.c.id)
            ).scalar_one()
            q.write_audit(conn, actor, "run.start", "run", str(run_id), None, {"workflow": wf.name, "trigger": trigger})
            return q.load_runs(conn, runs.c.id == run_id)[0]

    def start_job_run(self, run_id: int, job_name: str, *, worker: str | None = None,
                      status: JobRunStatus = "running") -> JobRunRecord:
        return self._insert_job_run(run_id, job_name, status=status, ended=False, error=None, worker=worker)

    def skip_job_run(self, run_id: int, job_name: str, reason: str) -> JobRunRecord:
        """Record a job that did not run (e.g. an upstream failed); ``reason`` goes to ``error``."""
        return self._insert_job_run(run_id, job_name, status="skipped", ended=True, error=reason)

    def finish_job_run(
        self,
        job_run_id: int,
        *,
        status: JobRunStatus,
        rows_read: int = 0,
        rows_written: int = 0,
        bytes_written: int = 0,
        error: str | None = None,
        log: str | None = None,
        rows_dropped: int = 0,
        rows_quarantined: int = 0,
    ) -> JobRunRecord:
        q.check(status, JobRunStatus, "job run status")
        with self._begin() as conn:
            result = conn.execute(
                update(job_runs)
                .where(job_runs.c.id == job_run_id)
                .values(
                    status=status,
                    ended_at=q.now(),
                    rows_read=rows_read,
                    rows_written=rows_written,
                    bytes_written=bytes_written,
                    error=error,
                    log=log,
                    rows_dropped=rows_dropped,
                    rows_quarantined=rows_quarantined,
                )
            )
            if result.rowcount == 0:
                raise ConfigError(f"Job run {job_run_id} does not exist.", hint="Check 'flowforge runs list'.")
            return q.load_job_runs(conn, job_runs.c.id == job_run_id)[0]

    def finish_run(self, run_id: int, *, status: RunStatus, error: str | None = None) -> RunRecord:
        """Close a run; its row counts are the sums over its job runs."""
        q.check(status, RunStatus, "run status")
        with self._begin() as conn:
            read, written = conn.execute(
                select(
                    func.coalesce(func.sum(job_runs.c.rows_read), 0),
                    func.coalesce(func.sum(job_runs.c.rows_written), 0),
                ).where(job_runs.c.run_id == run_id)
            ).one()
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                # PostgreSQL sums BIGINT as NUMERIC; int() keeps the record an int everywhere.
                .values(
                    status=status,
                    ended_at=q.now(),
                    rows_read=int(read),
                    rows_written=int(written),
                    error=error,
                )
            )
            if result.rowcount == 0:
                raise q.unknown_run(run_id)
            return q.load_runs(conn, runs.c.id == run_id)[0]

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._read() as conn:
            found = q.load_runs(conn, runs.c.id == run_id)
        return found[0] if found else None

    def list_runs(self, workflow_name: str | None = None, limit: int = 50, *, status: str | None = None,
                  since: datetime | None = None, trigger: str | None = None,
                  until: datetime | None = None, with_jobs: bool = True) -> list[RunRecord]:
        """Newest first, optionally only one workflow, one status, one trigger, or runs started in
        ``[since, until)``; ``with_jobs=False`` leaves each run's ``job_runs`` empty (one query less)."""
        with self._read() as conn:
            wf_id = None if workflow_name is None else q.workflow_id(conn, workflow_name)
            return q.load_runs(conn, q.run_filter(wf_id, status, since, trigger, until), limit=limit,
                               with_jobs=with_jobs)

    def workflow_briefs(self, *, offset: int = 0, limit: int | None = None,
                        **filters: str | None) -> tuple[list[WorkflowBrief], int]:
        """A page of workflows by name (filters: team, environment, status, tag, search), without
        spec and jobs; and how many match in all."""
        with self._read() as conn:
            return q.workflow_briefs(conn, offset=offset, limit=limit, **filters)

    def workflow_names(self, among: list[str] | None = None) -> set[str]:
        """Names of the registered workflows (only those in ``among``, when given)."""
        query = select(workflows.c.name)
        if among is not None:
            query = query.where(workflows.c.name.in_(among))
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def latest_runs(self, workflow_ids: list[int] | None = None) -> dict[str, RunRecord]:
        """Each workflow's newest run (without job runs), by workflow name."""
        with self._read() as conn:
            return q.latest_runs(conn, workflow_ids)

    def _insert_job_run(
        self, run_id: int, job_name: str, *, status: JobRunStatus, ended: bool, error: str | None,
        worker: str | None = None,
    ) -> JobRunRecord:
        now = q.now()
        with self._begin() as conn:
            if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise q.unknown_run(run_id)
            job_run_id = conn.execute(
                insert(job_runs)
                .values(
                    run_id=run_id,
                    job_name=job_name,
                    status=status,
                    started_at=now,
                    ended_at=now if ended else None,
                    rows_read=0,
                    rows_written=0,
                    bytes_written=0,
                    error=error,
                    worker=worker,
                )
                .returning(job_runs.c.id)
            ).scalar_one()
            return q.load_job_runs(conn, job_runs.c.id == job_run_id)[0]

    # -- watermarks (mirror of Delta commits) --------------------------------------------------

    def set_watermark(self, table_name: str, job_name: str, state: dict[str, Any], delta_version: int) -> None:
        values = {"job_name": job_name, "state": q.jsonable(state), "delta_version": delta_version}
        with self._begin() as conn:
            q.upsert(conn, watermarks, {"table_name": table_name, **values, "updated_at": q.now()}, "table_name")

    def get_watermark(self, table_name: str) -> WatermarkRecord | None:
        with self._read() as conn:
            row = conn.execute(select(watermarks).where(watermarks.c.table_name == table_name)).first()
        return None if row is None else WatermarkRecord(**row._mapping)

    # -- assets ----------------------------------------------------------------------------------

    def upsert_asset(self, asset: AssetIn) -> None:
        values = {
            "table_name": asset.table_name,
            "layer": asset.layer,
            "location": asset.location,
            "schema": q.jsonable(list(asset.schema)),
            "row_count": asset.row_count,
            "delta_version": asset.delta_version,
            "last_updated": q.now(),
            "workflow_name": asset.workflow_name,
        }
        with self._begin() as conn:
            q.upsert(conn, assets, values, "table_name")

    def get_asset(self, table_name: str) -> AssetRecord | None:
        found = self._select_assets(assets.c.table_name == table_name)
        return found[0] if found else None

    def assets_named(self, names: list[str]) -> dict[str, AssetRecord]:
        """The assets of ``names`` that exist, by name, in one query."""
        return {a.table_name: a for a in self._select_assets(assets.c.table_name.in_(names))} if names else {}

    def list_assets(self, layer: str | None = None) -> list[AssetRecord]:
        return self._select_assets(None if layer is None else assets.c.layer == layer)

    def _select_assets(self, where: ColumnElement[bool] | None) -> list[AssetRecord]:
        query = select(assets).order_by(assets.c.table_name)
        with self._read() as conn:
            rows = conn.execute(query if where is None else query.where(where)).all()
        return [AssetRecord(**{**row._mapping, "schema": tuple(row.schema)}) for row in rows]

    # -- lineage ---------------------------------------------------------------------------------

    def replace_lineage(self, workflow_name: str, edges: list[LineageEdgeIn]) -> None:
        """Make ``edges`` the workflow's lineage as its spec states it; no write at all when they are already
        (every run registers its workflow, and the lineage rarely changes). Edges a run discovered stay."""
        self._replace_edges(workflow_name, edges, lambda e: e.kind != "discovered")

    def replace_discovered_lineage(self, workflow_name: str, edges: list[LineageEdgeIn],
                                   owns: Callable[[str], bool]) -> None:
        """Make ``edges`` the discovered edges into the tables ``owns`` says one job lands (what its
        latest discovery found); other jobs' discovered edges stay."""
        self._replace_edges(workflow_name, [replace(e, kind="discovered") for e in edges],
                            lambda e: e.kind == "discovered" and owns(e.target))

    def _replace_edges(self, workflow_name: str, edges: list[LineageEdgeIn],
                       mine: Callable[[LineageEdgeRecord], bool]) -> None:
        wanted = [(e.source, e.target, e.kind, e.source_column, e.target_column) for e in edges]
        current = [e for e in self.lineage(workflow_name) if mine(e)]
        if [(e.source, e.target, e.kind, e.source_column, e.target_column) for e in current] == wanted and wanted:
            return
        with self._begin() as conn:
            wf_id = q.workflow_id(conn, workflow_name)
            if current:
                conn.execute(delete(lineage_edges).where(lineage_edges.c.id.in_([e.id for e in current])))
            if edges:
                conn.execute(insert(lineage_edges), [
                    {"workflow_id": wf_id, "source": e.source, "target": e.target, "kind": e.kind,
                     "source_column": e.source_column, "target_column": e.target_column} for e in edges])

    def lineage(self, workflow_name: str) -> list[LineageEdgeRecord]:
        with self._read() as conn:
            wf_id = q.workflow_id(conn, workflow_name)
            rows = conn.execute(
                select(lineage_edges).where(lineage_edges.c.workflow_id == wf_id).order_by(lineage_edges.c.id)
            ).all()
        return [LineageEdgeRecord(**row._mapping) for row in rows]

    # -- audit -----------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        with self._begin() as conn:
            q.write_audit(conn, actor, action, object_type, object_id, before, after)

    def list_audit(self, limit: int = 100, *, actor: str | None = None, action: str | None = None,
                   object_type: str | None = None) -> list[AuditRecord]:
        """Newest first; ``action`` matches a prefix ("workflow." finds every workflow change)."""
        query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
        for column, value in ((audit_log.c.actor, actor), (audit_log.c.object_type, object_type)):
            if value is not None:
                query = query.where(column == value)
        if action is not None:
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        with self._read() as conn:
            return [AuditRecord(**row._mapping) for row in conn.execute(query)]

    # -- connections (secrets arrive already encrypted) ---------------------------------------------

    def save_connection(self, name: str, kind: str, options: dict[str, Any], secret: str | None,
                        actor: str) -> ConnectionRecord:
        """Insert or replace; the audit row records options only, never the secret."""
        with self._begin() as conn:
            old = conn.execute(select(connections).where(connections.c.name == name)).first()
            values = {"kind": kind, "options": options, "secret": secret, "updated_at": q.now(), "updated_by": actor}
            if old is None:
                conn.execute(insert(connections).values(name=name, created_at=values["updated_at"], **values))
            else:
                conn.execute(update(connections).where(connections.c.name == name).values(**values))
            q.write_audit(conn, actor, "connection.update" if old else "connection.create", "connection", name,
                          {"kind": old.kind, "options": old.options} if old else None,
                          {"kind": kind, "options": options})
            row = conn.execute(select(connections).where(connections.c.name == name)).one()
        return ConnectionRecord(**row._mapping)

    def get_connection(self, name: str) -> ConnectionRecord | None:
        with self._read() as conn:
            row = conn.execute(select(connections).where(connections.c.name == name)).first()
        return ConnectionRecord(**row._mapping) if row else None

    def list_connections(self) -> list[ConnectionRecord]:
        with self._read() as conn:
            rows = conn.execute(select(connections).order_by(connections.c.name)).all()
        return [ConnectionRecord(**row._mapping) for row in rows]

    def delete_connection(self, name: str, actor: str) -> bool:
        with self._begin() as conn:
            old = conn.execute(select(connections).where(connections.c.name == name)).first()
            if old is None:
                return False
            conn.execute(delete(connections).where(connections.c.name == name))
            q.write_audit(conn, actor, "connection.delete", "connection", name,
                          {"kind": old.kind, "options": old.options}, None)
        return True

    def reencrypt_connections(self, rotate: Any, actor: str) -> int:
        """Replace every secret token with ``rotate(token)`` in one transaction."""
        with self._begin() as conn:
            rows = conn.execute(select(connections.c.name, connections.c.secret)).all()
            for name, token in rows:
                if token:
                    conn.execute(update(connections).where(connections.c.name == name).values(secret=rotate(token)))
            q.write_audit(conn, actor, "secrets.rotate", "keyring", "connections", None, {"count": len(rows)})
        return len(rows)

    @property
    def users(self) -> UserStore:
        from flowforge.metadata.users import UserStore

        return UserStore(self)

    @cached_property
    def sessions(self) -> SessionStore:
        from flowforge.metadata.sessions import SessionStore

        return SessionStore(self)

    @property
    def leases(self) -> LeaseStore:
        """Leases, run liveness and cancel requests (metadata/leases.py)."""
        from flowforge.metadata.leases import LeaseStore

        return LeaseStore(self)

    @property
    def fires(self) -> FireStore:
        """Trigger cursors and claimed fires (metadata/fires.py)."""
        from flowforge.metadata.fires import FireStore

        return FireStore(self)

    @property
    def pages(self) -> PageReads:
        """Detail pages (a workflow, its lineage, a run's jobs) read in one short transaction each."""
        from flowforge.metadata.pages import PageReads

        return PageReads(self)

    @property
    def alerts(self) -> AlertStore:
        """Alert channels and the alerts sent for runs (metadata/alerts.py)."""
        from flowforge.metadata.alerts import AlertStore

        return AlertStore(self)

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One short transaction; driver failures become StorageError naming the masked URL."""
        with (
            map_exceptions({OperationalError: StorageError}, f"Metadata store ({self.url_display})", URL_HINT),
            self.engine.begin() as conn,
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A transaction that only reads: on SQLite it takes no write lock (see engine.READ_ONLY)."""
        with (
            map_exceptions({OperationalError: StorageError}, f"Metadata store ({self.url_display})", URL_HINT),
            self._reader.begin() as conn,
        ):
            yield conn
