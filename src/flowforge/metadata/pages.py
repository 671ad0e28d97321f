"""Reads that each fill one detail page of the API and UI in one short read transaction.

A workflow's detail, its lineage and a run's job list are asked for one id at a time, for many
different ids. Each is read here with as few statements as the page allows, on one pooled
connection: a statement costs a round trip to PostgreSQL, a pooled connection a ping and a
BEGIN/ROLLBACK more, so the old way (a lookup per part, each in its own transaction) cost
PostgreSQL four to six times the work for the same answer.

Example::

    found = store.pages.run(12)                # (run with its job runs, its alerts) or None
    found = store.pages.workflow("daily", 10)  # (workflow without jobs, its newest 10 runs) or None
    found = store.pages.lineage("daily")       # (name, edges, the assets at either end) or None
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, func, select

from flowforge.metadata.records import JobRunRecord, LineageEdgeRecord, RunRecord, WorkflowRecord
from flowforge.metadata.tables import assets, job_runs, lineage_edges, run_alerts, runs, workflows

if TYPE_CHECKING:
    from flowforge.metadata.alerts import RunAlertRecord
    from flowforge.metadata.store import MetadataStore

# job runs as a run's page shows them: everything but the log (read apart, and possibly long)
_JOB_RUN = [c for c in job_runs.c if c.name != "log"]
_ASSET = (assets.c.table_name, assets.c.layer, assets.c.row_count, assets.c.last_updated, assets.c.location)


@dataclass(frozen=True, slots=True)
class AssetBrief:
    """What a lineage node shows of an asset (no schema)."""

    table_name: str
    layer: str
    row_count: int | None
    last_updated: datetime
    location: str


@dataclass(frozen=True, slots=True)
class LineageRows:
    workflow: str
    edges: tuple[LineageEdgeRecord, ...]
    assets: dict[str, AssetBrief]  # the built tables among the edges' ends, by name


def _key_value(name_or_id: str | int) -> str | int:
    """A workflow's numeric id as an int, else its name (a name never starts with a digit)."""
    text = str(name_or_id)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


# The statements are built once: building one costs more than SQLAlchemy's compiled-cache lookup.
@functools.cache
def _run_query() -> Select[Any]:
    alerts = select(func.count()).where(run_alerts.c.run_id == runs.c.id).correlate(runs).scalar_subquery()
    return (select(runs, workflows.c.name.label("workflow_name"), alerts.label("alerts"),
                   *(c.label(f"jr_{c.name}") for c in _JOB_RUN))
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .outerjoin(job_runs, job_runs.c.run_id == runs.c.id)
            .where(runs.c.id == bindparam("run_id")).order_by(job_runs.c.id))


@functools.cache
def _workflow_query(by_id: bool) -> Select[Any]:
    return select(workflows).where((workflows.c.id if by_id else workflows.c.name) == bindparam("key"))


@functools.cache
def _newest_runs_query() -> Select[Any]:
    return (select(runs, workflows.c.name.label("workflow_name"))
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .where(runs.c.workflow_id == bindparam("workflow_id"))
            .order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(bindparam("newest")))


@functools.cache
def _lineage_query(by_id: bool) -> Select[Any]:
    source, target = assets.alias("source_asset"), assets.alias("target_asset")
    ends = [*(source.c[c.name].label(f"s_{c.name}") for c in _ASSET),
            *(target.c[c.name].label(f"t_{c.name}") for c in _ASSET)]
    return (select(workflows.c.name.label("workflow"), *(c.label(f"e_{c.name}") for c in lineage_edges.c), *ends)
            .outerjoin(lineage_edges, lineage_edges.c.workflow_id == workflows.c.id)
            .outerjoin(source, source.c.table_name == lineage_edges.c.source)
            .outerjoin(target, target.c.table_name == lineage_edges.c.target)
            .where((workflows.c.id if by_id else workflows.c.name) == bindparam("key"))
            .order_by(lineage_edges.c.id))


class PageReads:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def run(self, run_id: int) -> tuple[RunRecord, tuple[RunAlertRecord, ...]] | None:
        """The run with its job runs (without their logs) and its alerts; one statement when it has none."""
        from flowforge.metadata.alerts import RunAlertRecord

        with self._store._read() as conn:
            rows = conn.execute(_run_query(), {"run_id": run_id}).all()
            if not rows:
                return None
            found: tuple[RunAlertRecord, ...] = ()
            if rows[0].alerts:
                found = tuple(RunAlertRecord(**r._mapping) for r in conn.execute(
                    select(run_alerts).where(run_alerts.c.run_id == run_id).order_by(run_alerts.c.id)))
        first = rows[0]._mapping
        jobs = tuple(JobRunRecord(**{c.name: row._mapping[f"jr_{c.name}"] for c in _JOB_RUN}, log=None)
                     for row in rows if row._mapping["jr_id"] is not None)
        run = RunRecord(**{c.name: first[c.name] for c in runs.c}, workflow_name=first["workflow_name"], job_runs=jobs)
        return run, found

    def workflow(self, name_or_id: str | int, newest: int) -> tuple[WorkflowRecord, list[RunRecord]] | None:
        """The registered workflow (without its jobs: the spec holds them) and its ``newest`` runs
        (without job runs), newest first."""
        key = _key_value(name_or_id)
        with self._store._read() as conn:
            row = conn.execute(_workflow_query(isinstance(key, int)), {"key": key}).first()
            if row is None:
                return None
            record = WorkflowRecord(**{**row._mapping, "tags": tuple(row.tags), "jobs": ()})
            found = conn.execute(_newest_runs_query(), {"workflow_id": record.id, "newest": newest}).all()
        return record, [RunRecord(**row._mapping, job_runs=()) for row in found]

    def lineage(self, name_or_id: str | int) -> LineageRows | None:
        """The workflow's lineage edges with the assets at their ends, in one statement."""
        key = _key_value(name_or_id)
        with self._store._read() as conn:
            rows = [r._mapping for r in conn.execute(_lineage_query(isinstance(key, int)), {"key": key})]
        if not rows:
            return None
        edges, found = [], {}
        for row in rows:
            if row["e_id"] is None:
                continue
            edges.append(LineageEdgeRecord(**{c.name: row[f"e_{c.name}"] for c in lineage_edges.c}))
            for end in ("s", "t"):
                if row[f"{end}_table_name"] is not None:
                    found[row[f"{end}_table_name"]] = AssetBrief(*(row[f"{end}_{c.name}"] for c in _ASSET))
        return LineageRows(rows[0]["workflow"], tuple(edges), found)
