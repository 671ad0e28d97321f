import json
import time
from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from flowforge.api.deps import BaseCtx, Ctx, CurrentUser, EditorUser, Id, authenticate, json_answer
from flowforge.api.models import JobLogPublic, RerunRequest, RunCreate, RunDetailPublic, RunPublic

router = APIRouter(prefix="/runs", tags=["runs"])

_RUNS = TypeAdapter(list[RunPublic])
STREAM_TIMEOUT_SECONDS = 6 * 3600
RECHECK_SECONDS = 10.0


@router.post("", response_model=RunPublic, status_code=202)
def trigger_run(body: RunCreate, user: EditorUser, ctx: Ctx) -> RunPublic:
    """Start a workflow (or one of its jobs) in the background; follow it at /runs/{id}/events."""
    run_id = ctx.run_service.trigger(body.workflow, job=body.job, trigger="api", force=body.force,
                                     full_refresh=body.full_refresh, tables=body.select)
    return RunPublic.model_validate(ctx.run_service.status(run_id))


@router.get("", response_model=list[RunPublic])
def run_history(_: CurrentUser, ctx: Ctx, workflow: str | None = None, status: str | None = None,
                since: datetime | None = None, until: datetime | None = None, trigger: str | None = None,
                limit: int = Query(50, ge=1, le=1000)) -> Response:
    """Newest first; a run whose process is gone is failed (abandoned), never running."""
    return json_answer([RunPublic.model_validate(r) for r in ctx.run_service.history(
        workflow, status, since, limit, trigger=trigger, until=until)], _RUNS)


@router.post("/{run_id}/cancel", response_model=RunPublic, status_code=202)
def cancel_run(run_id: int, user: EditorUser, ctx: Ctx) -> RunPublic:
    """Ask a queued or running run to stop at its next safe point (nothing half-committed)."""
    return RunPublic.model_validate(ctx.run_service.cancel(run_id))


@router.post("/{run_id}/rerun", response_model=RunPublic, status_code=202)
def rerun(run_id: int, body: RerunRequest, user: EditorUser, ctx: Ctx) -> RunPublic:
    """A new run of the same jobs, or (from_failure) of the failed ones and what depends on them."""
    new_id = ctx.run_service.rerun(run_id, from_failure=body.from_failure)
    return RunPublic.model_validate(ctx.run_service.status(new_id))


@router.get("/{run_id}", response_model=RunPublic)
def run_status(run_id: Id, _: CurrentUser, ctx: Ctx) -> Response:
    run = ctx.run_service.status(run_id)
    return json_answer(RunPublic.model_validate(run), changing=run.live)


@router.get("/{run_id}/jobs", response_model=RunDetailPublic)
def run_detail(run_id: Id, _: CurrentUser, ctx: Ctx) -> Response:
    """Each job run with rows, timings and error."""
    detail = ctx.run_service.detail(run_id)
    return json_answer(RunDetailPublic.model_validate(detail), changing=detail.run.live)


@router.get("/{run_id}/logs", response_model=list[JobLogPublic])
def run_logs(run_id: Id, _: CurrentUser, ctx: Ctx) -> list[JobLogPublic]:
    return [JobLogPublic.model_validate(j) for j in ctx.run_service.logs(run_id)]


@router.get("/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def run_events(run_id: Id, request: Request, _: CurrentUser, ctx: Ctx, base: BaseCtx) -> StreamingResponse:
    """Server-Sent Events: the run's events so far, then each new one until it ends
    (``event: job`` per job start/end, ``event: run`` at start and end). The stream stops when the
    session or token that opened it stops being valid."""
    events = ctx.run_service.subscribe(run_id, timeout=STREAM_TIMEOUT_SECONDS)

    def stream() -> Iterator[str]:
        checked = time.monotonic()
        for event in events:
            if time.monotonic() - checked > RECHECK_SECONDS:
                if authenticate(request, base) is None:
                    return
                checked = time.monotonic()
            yield f"event: {event['type']}\ndata: {json.dumps(event, default=str)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
