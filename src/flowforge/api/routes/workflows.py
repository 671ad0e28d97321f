from fastapi import APIRouter, Query, Response

from flowforge.api.deps import Ctx, CurrentUser, EditorUser, json_answer
from flowforge.api.models import (
    CloneRequest,
    IngestPlanRowPublic,
    ValidationIssuePublic,
    ValidationResult,
    WorkflowCreate,
    WorkflowDetailPublic,
    WorkflowDetails,
    WorkflowPublic,
    WorkflowsPublic,
    WorkflowUpdate,
)

router = APIRouter(prefix="/workflows", tags=["workflows"])


@router.get("", response_model=WorkflowsPublic)
def list_workflows(_: CurrentUser, ctx: Ctx, team: str | None = None, environment: str | None = None,
                   status: str | None = None, tag: str | None = None, search: str | None = None,
                   offset: int = Query(0, ge=0, le=2**31), limit: int = Query(100, ge=1, le=10_000)) -> Response:
    """A page of workflows by name; ``count`` is how many match in all. Workflow files that do not
    parse are listed under ``invalid`` with the reason."""
    page = ctx.workflows.page(team=team, environment=environment, status=status, tag=tag, search=search,
                              offset=offset, limit=limit)
    return json_answer(WorkflowsPublic(data=[WorkflowPublic.model_validate(w) for w in page.items], count=page.total,
                                       invalid=[WorkflowPublic.model_validate(w) for w in page.invalid]))


@router.post("", response_model=WorkflowDetailPublic, status_code=201)
def create_workflow(body: WorkflowCreate, user: EditorUser, ctx: Ctx) -> WorkflowDetailPublic:
    return WorkflowDetailPublic.model_validate(ctx.workflows.create(body.source()))


@router.post("/validate", response_model=ValidationResult)
def validate_workflow(body: WorkflowCreate, _: CurrentUser, ctx: Ctx) -> ValidationResult:
    issues = [ValidationIssuePublic.model_validate(i) for i in ctx.workflows.check(body.source())]
    return ValidationResult(valid=not issues, issues=issues)


@router.get("/{name}", response_model=WorkflowDetailPublic)
def get_workflow(name: str, _: CurrentUser, ctx: Ctx) -> Response:
    """``name`` is the name or the numeric id."""
    return json_answer(WorkflowDetailPublic.model_validate(ctx.workflows.get(name)))


@router.put("/{name}", response_model=WorkflowDetailPublic)
def update_workflow(name: str, body: WorkflowUpdate, user: EditorUser, ctx: Ctx) -> WorkflowDetailPublic:
    return WorkflowDetailPublic.model_validate(ctx.workflows.update(name, body.source()))


@router.patch("/{name}", response_model=WorkflowDetailPublic)
def set_workflow_details(name: str, body: WorkflowDetails, user: EditorUser, ctx: Ctx) -> WorkflowDetailPublic:
    """Change the name, description, team, environment or tags; the file keeps its comments."""
    return WorkflowDetailPublic.model_validate(ctx.authoring.set_details(
        name, new_name=body.new_name, description=body.description, team=body.team,
        environment=body.environment, tags=body.tags))


@router.delete("/{name}", status_code=204)
def delete_workflow(name: str, user: EditorUser, ctx: Ctx) -> None:
    ctx.workflows.delete(name)


@router.post("/{name}/clone", response_model=WorkflowDetailPublic, status_code=201)
def clone_workflow(name: str, body: CloneRequest, user: EditorUser, ctx: Ctx) -> WorkflowDetailPublic:
    return WorkflowDetailPublic.model_validate(ctx.workflows.clone(name, body.new_name))


@router.post("/{name}/pause", response_model=WorkflowPublic)
def pause_workflow(name: str, user: EditorUser, ctx: Ctx) -> WorkflowPublic:
    return WorkflowPublic.model_validate(ctx.workflows.pause(name))


@router.post("/{name}/resume", response_model=WorkflowPublic)
def resume_workflow(name: str, user: EditorUser, ctx: Ctx) -> WorkflowPublic:
    return WorkflowPublic.model_validate(ctx.workflows.resume(name))


@router.get("/{name}/ingest-plan", response_model=list[IngestPlanRowPublic])
def ingest_plan(name: str, _: EditorUser, ctx: Ctx) -> list[IngestPlanRowPublic]:
    """The tables the workflow's ingest jobs find in their sources (``tables: "*"``), with key and delta column."""
    plans = ctx.onboarding.plan_of(name)
    return [IngestPlanRowPublic(job=job, source=f.source, target=f.target, keys=list(f.keys),
                                delta_column=f.delta_column, load=f.load, listed=f.listed)
            for job, found in plans.items() for f in found]
