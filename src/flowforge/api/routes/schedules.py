"""Triggers, their next fire times, fires and backfills; editing a workflow's triggers."""

from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import (
    BackfillPublic,
    BackfillRequest,
    FirePublic,
    TriggerPreview,
    TriggerPreviewPublic,
    TriggerPublic,
    TriggersUpdate,
)

router = APIRouter(tags=["schedules"])


@router.get("/schedules", response_model=list[TriggerPublic])
def schedules(_: CurrentUser, ctx: Ctx, workflow: str | None = None,
              count: int = Query(5, ge=1, le=50)) -> list[TriggerPublic]:
    """Every trigger of every workflow (or one), with its next fire times in UTC and its last fire."""
    return [TriggerPublic.model_validate(t) for t in ctx.schedules.overview(workflow, count)]


@router.post("/schedules/preview", response_model=TriggerPreviewPublic)
def preview(body: TriggerPreview, _: CurrentUser, ctx: Ctx) -> TriggerPreviewPublic:
    """The next fire times of a trigger being written; 422 saying what is wrong with it."""
    parsed = ctx.schedules.parse(body.trigger)
    return TriggerPreviewPublic(description=parsed.describe(),
                                next_fires=ctx.schedules.preview(body.trigger, body.count))


@router.get("/fires", response_model=list[FirePublic])
def fires(_: CurrentUser, ctx: Ctx, workflow: str | None = None,
          limit: int = Query(50, ge=1, le=1000)) -> list[FirePublic]:
    """What the triggers fired, newest first: pending, started (with the run), skipped or refused."""
    return [FirePublic.model_validate(f) for f in ctx.schedules.fires(workflow, limit)]


@router.put("/workflows/{name}/triggers", response_model=list[TriggerPublic])
def set_triggers(name: str, body: TriggersUpdate, user: EditorUser, ctx: Ctx) -> list[TriggerPublic]:
    """Replace a workflow's triggers (and optionally its concurrency); the workflow file is rewritten."""
    items = ctx.schedules.set_triggers(name, body.triggers, concurrency=body.concurrency)
    return [TriggerPublic.model_validate(t) for t in items]


@router.post("/workflows/{name}/backfill", response_model=BackfillPublic, status_code=202)
def backfill(name: str, body: BackfillRequest, user: EditorUser, ctx: Ctx) -> BackfillPublic:
    """Queue one run per schedule slot in [start, end]; the scheduler runs them one after another."""
    result = ctx.schedules.backfill(name, body.start, body.end, trigger=body.trigger)
    return BackfillPublic.model_validate(result)
