"""CDC resets and table maintenance: ``POST /workflows/{name}/jobs/{job}/cdc/reset`` (editor),
``POST /maintenance/optimize`` (editor) and ``POST /maintenance/vacuum`` (admin: it deletes files)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from flowforge.api.deps import AdminUser, Ctx, EditorUser

router = APIRouter(tags=["maintenance"])


class CdcResetPublic(BaseModel):
    workflow: str
    job: str
    target: str
    previous: dict[str, Any] | None
    source: str
    bronze_version: int | None
    message: str


class MaintenanceRequest(BaseModel):
    tables: list[str] | None = Field(None, description="Table names; none: every table.")


class VacuumRequest(MaintenanceRequest):
    retention: str | None = Field(None, description="36h, 7d, 2w; default: the project's vacuum_retention.")
    versions: bool = Field(False, description="Also delete files of versions older than the retention.")
    dry_run: bool = False


class MaintenancePublic(BaseModel):
    table: str
    layer: str
    action: str
    detail: str


@router.post("/workflows/{name}/jobs/{job}/cdc/reset", response_model=CdcResetPublic)
def reset_cdc(name: str, job: str, user: EditorUser, ctx: Ctx) -> CdcResetPublic:
    """Forget the job's source position; its next run takes a new snapshot that replaces silver."""
    r = ctx.cdc.reset(ctx.workflows.resolve(name), job)
    return CdcResetPublic(workflow=r.workflow, job=r.job, target=r.target, previous=r.previous, source=r.source,
                          bronze_version=r.version, message=r.message)


@router.post("/maintenance/optimize", response_model=list[MaintenancePublic])
def optimize(body: MaintenanceRequest, user: EditorUser, ctx: Ctx) -> list[MaintenancePublic]:
    return [MaintenancePublic(table=d.table, layer=d.layer, action=d.action, detail=d.detail)
            for d in ctx.maintenance.optimize(body.tables)]


@router.post("/maintenance/vacuum", response_model=list[MaintenancePublic])
def vacuum(body: VacuumRequest, user: AdminUser, ctx: Ctx) -> list[MaintenancePublic]:
    done = ctx.maintenance.vacuum(body.tables, retention=body.retention, versions=body.versions,
                                  dry_run=body.dry_run)
    return [MaintenancePublic(table=d.table, layer=d.layer, action=d.action, detail=d.detail) for d in done]
