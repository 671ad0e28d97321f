"""Metadata store: workflows, runs, watermark mirror, catalog, lineage and audit log.

SQLite by default, PostgreSQL for teams; the schema is managed by the Alembic
migrations shipped in ``migrations/`` (``MetadataStore.migrate()``).
"""

from flowforge.metadata.records import (
    AssetIn,
    AssetRecord,
    AuditRecord,
    ConnectionRecord,
    EdgeKind,
    JobIn,
    JobRecord,
    JobRunRecord,
    JobRunStatus,
    Layer,
    LineageEdgeIn,
    LineageEdgeRecord,
    RunRecord,
    RunStatus,
    WatermarkRecord,
    WorkflowIn,
    WorkflowRecord,
    WorkflowStatus,
)
from flowforge.metadata.store import MetadataStore

__all__ = [
    "AssetIn",
    "AssetRecord",
    "AuditRecord",
    "ConnectionRecord",
    "EdgeKind",
    "JobIn",
    "JobRecord",
    "JobRunRecord",
    "JobRunStatus",
    "Layer",
    "LineageEdgeIn",
    "LineageEdgeRecord",
    "MetadataStore",
    "RunRecord",
    "RunStatus",
    "WatermarkRecord",
    "WorkflowIn",
    "WorkflowRecord",
    "WorkflowStatus",
]
