"""Row reads and writes shared by MetadataStore methods, run inside the caller's transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import Connection, Table, Text, and_, cast, func, insert, or_, select
from sqlalchemy.sql import ColumnElement

from flowforge.errors import ConfigError
from flowforge.metadata.records import (
    JobIn,
    JobRecord,
    JobRunRecord,
    RunRecord,
    WorkflowBrief,
    WorkflowIn,
    WorkflowRecord,
)
from flowforge.metadata.tables import audit_log, job_runs, jobs, runs, workflows


def now() -> datetime:
    return datetime.now(UTC)


def jsonable(value: Any) -> Any:
    """What the JSON column will hand back (tuples become lists), so comparisons are fair."""
    return json.loads(json.dumps(value))


def check(value: str, allowed: Any, what: str) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"Unknown {what} {value!r}; expected one of {', '.join(get_args(allowed))}.")


def workflow_state(wf: WorkflowIn) -> dict[str, Any]:
    """The user-editable part of a workflow: what is compared and written to the audit log."""
    state: dict[str, Any] = jsonable(
        {
            "description": wf.description,
            "team": wf.team,
            "environment": wf.environment,
            "tags": list(wf.tags),
            "spec": wf.spec,
            "source_path": wf.source_path,
            "jobs": [
                {
                    "name": j.name,
                    "kind": j.kind,
                    "spec": j.spec,
                    "inputs": list(j.inputs),
                    "outputs": list(j.outputs),
                }
                for j in wf.jobs
            ],
        }
    )
    return state


def record_state(rec: WorkflowRecord) -> dict[str, Any]:
    stored_jobs = tuple(JobIn(j.name, j.kind, j.spec, j.inputs, j.outputs) for j in rec.jobs)
    return workflow_state(
        WorkflowIn(
            rec.name,
            rec.description,
            rec.team,
            rec.environment,
            rec.tags,
            rec.spec,
            rec.source_path,
            stored_jobs,
        )
    )


def require_workflow(conn: Connection, name: str) -> WorkflowRecord:
    found = load_workflows(conn, workflows.c.name == name)
    if not found:
        raise ConfigError(
            f"Workflow '{name}' is not registered.",
            hint="Run 'flowforge run <file>' or check 'flowforge workflows list'.",
        )
    return found[0]


def workflow_id(conn: Connection, name: str) -> int:
    """The id of a registered workflow (one indexed lookup; no spec or jobs loaded)."""
    found = conn.execute(select(workflows.c.id).where(workflows.c.name == name)).scalar()
    if found is None:
        return require_workflow(conn, name).id  # raises the usual error
    return int(found)


def unknown_run(run_id: int) -> ConfigError:
    return ConfigError(f"Run {run_id} does not exist.", hint="Check 'flowforge runs list'.")


def load_workflows(conn: Connection, where: ColumnElement[bool] | None) -> list[WorkflowRecord]:
    query = select(workflows).order_by(workflows.c.name)
    rows = conn.execute(query if where is None else query.where(where)).all()
    if not rows:
        return []
    job_query = select(jobs).order_by(jobs.c.workflow_id, jobs.c.position)
    if where is not None:
        job_query = job_query.where(jobs.c.workflow_id.in_([row.id for row in rows]))
    by_workflow: dict[int, list[JobRecord]] = defaultdict(list)
    for job in conn.execute(job_query):
        by_workflow[job.workflow_id].append(
            JobRecord(**{**job._mapping, "inputs": tuple(job.inputs), "outputs": tuple(job.outputs)})
        )
    return [
        WorkflowRecord(**{**row._mapping, "tags": tuple(row.tags), "jobs": tuple(by_workflow[row.id])}) for row in rows
    ]


def load_job_runs(conn: Connection, where: ColumnElement[bool]) -> list[JobRunRecord]:
    rows = conn.execute(select(job_runs).where(where).order_by(job_runs.c.id)).all()
    return [JobRunRecord(**row._mapping) for row in rows]


def load_runs(conn: Connection, where: ColumnElement[bool] | None, *, limit: int | None = None,
              with_jobs: bool = True) -> list[RunRecord]:
    query = (
        select(runs, workflows.c.name.label("workflow_name"))
        .join(workflows, workflows.c.id == runs.c.workflow_id)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
    )
    rows = conn.execute(query if where is None else query.where(where)).all()
    if not rows or not with_jobs:
        return [RunRecord(**row._mapping, job_runs=()) for row in rows]
    by_run: dict[int, list[JobRunRecord]] = defaultdict(list)
    for job_run in load_job_runs(conn, job_runs.c.run_id.in_([row.id for row in rows])):
        by_run[job_run.run_id].append(job_run)
    return [RunRecord(**row._mapping, job_runs=tuple(by_run[row.id])) for row in rows]


def run_filter(workflow_id: int | None, status: str | None, since: datetime | None,
               trigger: str | None = None, until: datetime | None = None) -> ColumnElement[bool] | None:
    parts = [c for c in (None if workflow_id is None else runs.c.workflow_id == workflow_id,
                         None if status is None else runs.c.status == status,
                         None if since is None else runs.c.started_at >= since,
                         None if until is None else runs.c.started_at < until,
                         None if trigger is None else runs.c.trigger == trigger) if c is not None]
    return and_(*parts) if parts else None


def latest_runs(conn: Connection, workflow_ids: list[int] | None = None) -> dict[str, RunRecord]:
    # One index seek per workflow on (workflow_id, started_at), then primary-key lookups: no scan of all runs.
    newest = (select(runs.c.id).where(runs.c.workflow_id == workflows.c.id)
              .order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1).correlate(workflows).scalar_subquery())
    per_workflow = select(workflows.c.name.label("workflow_name"), newest.label("run_id"))
    if workflow_ids is not None:
        per_workflow = per_workflow.where(workflows.c.id.in_(workflow_ids))
    sub = per_workflow.subquery()
    query = select(runs, sub.c.workflow_name).join(sub, runs.c.id == sub.c.run_id)
    return {row.workflow_name: RunRecord(**row._mapping, job_runs=()) for row in conn.execute(query)}


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def workflow_briefs(conn: Connection, *, team: str | None = None, environment: str | None = None,
                    status: str | None = None, tag: str | None = None, search: str | None = None,
                    offset: int = 0, limit: int | None = None) -> tuple[list[WorkflowBrief], int]:
    """One page of workflows (by name) without spec and jobs, with their number of jobs, and how many
    match in all: what a listing needs, filtered and paged in SQL."""
    w = workflows.c
    where = [c for c in (None if team is None else w.team == team,
                         None if environment is None else w.environment == environment,
                         None if status is None else w.status == status) if c is not None]
    if tag is not None:  # tags are a JSON list of strings: match the quoted element in its text
        where.append(cast(w.tags, Text).like(f"%{_like_literal(json.dumps(tag))}%", escape="\\"))
    if search:  # a plain substring: % and _ in it are characters, not wildcards
        needle = f"%{_like_literal(search.lower())}%"
        where.append(or_(func.lower(w.name).like(needle, escape="\\"),
                         func.lower(w.description).like(needle, escape="\\")))
    total = conn.execute(select(func.count()).select_from(workflows).where(*where)).scalar_one()
    counts = select(jobs.c.workflow_id, func.count().label("n")).group_by(jobs.c.workflow_id).subquery()
    query = (select(w.id, w.name, w.description, w.team, w.environment, w.tags, w.status,
                    w.spec["schedule"].as_string().label("schedule"), w.spec["triggers"].label("triggers"),
                    w.source_path, w.updated_at,
                    func.coalesce(counts.c.n, 0).label("jobs"))
             .outerjoin(counts, counts.c.workflow_id == w.id).where(*where).order_by(w.name)
             .offset(offset).limit(limit))
    return [WorkflowBrief(**{**row._mapping, "tags": tuple(row.tags), "jobs": int(row.jobs)})
            for row in conn.execute(query)], int(total)


def write_audit(
    conn: Connection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            at=now(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=None if before is None else jsonable(dict(before)),
            after=None if after is None else jsonable(dict(after)),
        )
    )


def dialect_insert(conn: Connection) -> Any:
    """The backend's own ``insert`` (with ``on_conflict_do_*``); its dialect module loads on first use,
    so a SQLite project never imports the PostgreSQL one."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def upsert(conn: Connection, table: Table, values: dict[str, Any], key: str) -> None:
    """Atomic insert-or-update on ``key`` (ON CONFLICT exists on both supported backends)."""
    stmt = dialect_insert(conn)(table).values(values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_={k: v for k, v in values.items() if k != key}))
