"""Frozen records the metadata store accepts (``*In``) and returns (``*Record``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

WorkflowStatus = Literal["active", "paused"]
RunStatus = Literal["queued", "running", "success", "failed", "partial", "cancelled"]
JobRunStatus = Literal["queued", "running", "success", "failed", "skipped", "cancelled"]
Layer = Literal["bronze", "silver", "gold"]
# "discovered": a table edge a run found (an ingest of every table, tables: "*"); kept when the workflow is
# registered again, replaced by that job's next discovery
EdgeKind = Literal["table", "column", "discovered"]


@dataclass(frozen=True, slots=True)
class JobIn:
    name: str
    kind: str
    spec: dict[str, Any]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowIn:
    """A workflow as registered from a validated spec; ``jobs`` keep their order."""

    name: str
    description: str
    team: str | None
    environment: str
    tags: tuple[str, ...]
    spec: dict[str, Any]
    source_path: str | None = None
    jobs: tuple[JobIn, ...] = ()


@dataclass(frozen=True, slots=True)
class AssetIn:
    table_name: str
    layer: Layer
    location: str
    schema: tuple[dict[str, Any], ...]
    row_count: int | None = None
    delta_version: int | None = None
    workflow_name: str | None = None


@dataclass(frozen=True, slots=True)
class LineageEdgeIn:
    source: str
    target: str
    kind: EdgeKind = "table"
    source_column: str | None = None
    target_column: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    workflow_id: int
    name: str
    kind: str
    spec: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    id: int
    name: str
    description: str
    team: str | None
    environment: str
    tags: tuple[str, ...]
    status: WorkflowStatus
    spec: dict[str, Any]
    source_path: str | None
    created_at: datetime
    updated_at: datetime
    jobs: tuple[JobRecord, ...]


@dataclass(frozen=True, slots=True)
class WorkflowBrief:
    """A workflow as a listing shows it: no spec, no jobs, just their count."""

    id: int
    name: str
    description: str
    team: str | None
    environment: str
    tags: tuple[str, ...]
    status: WorkflowStatus
    schedule: str | None
    source_path: str | None
    updated_at: datetime
    jobs: int
    triggers: list[dict[str, Any]] | None = None  # the spec's triggers as written


@dataclass(frozen=True, slots=True)
class JobRunRecord:
    id: int
    run_id: int
    job_name: str
    status: JobRunStatus
    started_at: datetime
    ended_at: datetime | None
    rows_read: int
    rows_written: int
    bytes_written: int
    error: str | None
    log: str | None
    rows_dropped: int = 0
    rows_quarantined: int = 0
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One workflow run; ``workflow_name`` is joined in so callers need no second lookup."""

    id: int
    workflow_id: int
    workflow_name: str
    trigger: str
    status: RunStatus
    actor: str
    started_at: datetime
    ended_at: datetime | None
    rows_read: int
    rows_written: int
    error: str | None
    job_runs: tuple[JobRunRecord, ...]
    owner: str | None = None  # host:pid:start:token of the process running it
    heartbeat_at: datetime | None = None  # last seen alive
    expires_at: datetime | None = None  # presumed dead after this without a heartbeat
    cancel_requested: bool = False
    reason: str | None = None  # 'abandoned' when its process died (status failed)
    slot: datetime | None = None  # the schedule slot it ran for
    parent_run_id: int | None = None  # the run it re-runs
    selection: list[str] | None = None  # the jobs it ran when not all

    @property
    def status_label(self) -> str:
        """The status as people read it: ``failed (abandoned)`` for a run whose process died."""
        return f"{self.status} ({self.reason})" if self.reason else self.status


@dataclass(frozen=True, slots=True)
class WatermarkRecord:
    """Mirror of the progress a Delta commit holds; the commit stays the source of truth."""

    table_name: str
    job_name: str
    state: dict[str, Any]
    delta_version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AssetRecord:
    id: int
    table_name: str
    layer: Layer
    location: str
    schema: tuple[dict[str, Any], ...]
    row_count: int | None
    delta_version: int | None
    last_updated: datetime
    workflow_name: str | None


@dataclass(frozen=True, slots=True)
class LineageEdgeRecord:
    id: int
    workflow_id: int
    source: str
    target: str
    kind: EdgeKind
    source_column: str | None
    target_column: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A stored connection: non-secret options in clear, secrets as one Fernet token."""

    id: int
    name: str
    kind: str
    options: dict[str, Any]
    secret: str | None
    created_at: datetime
    updated_at: datetime
    updated_by: str
