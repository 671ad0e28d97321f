from fastapi import APIRouter

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import (
    CloneRequest,
    JobCreate,
    JobPublic,
    JobSourcePublic,
    JobUpdate,
    ValidationIssuePublic,
    ValidationResult,
)

router = APIRouter(prefix="/workflows/{workflow}/jobs", tags=["jobs"])


@router.get("", response_model=list[JobPublic])
def list_jobs(workflow: str, _: CurrentUser, ctx: Ctx) -> list[JobPublic]:
    return [JobPublic.model_validate(j) for j in ctx.workflows.get(ctx.workflows.resolve(workflow)).jobs]


@router.post("", response_model=JobPublic, status_code=201)
def create_job(workflow: str, body: JobCreate, user: EditorUser, ctx: Ctx) -> JobPublic:
    return JobPublic.model_validate(ctx.workflows.add_job(workflow, body.source()))


@router.post("/validate", response_model=ValidationResult)
def validate_job(workflow: str, body: JobCreate, _: CurrentUser, ctx: Ctx) -> ValidationResult:
    """Problems of a new or edited job (matched by name) inside its workflow, with lines."""
    issues = [ValidationIssuePublic.model_validate(i) for i in ctx.workflows.validate_job(workflow, body.source())]
    return ValidationResult(valid=not issues, issues=issues)


@router.get("/{job}", response_model=JobPublic)
def get_job(workflow: str, job: str, _: CurrentUser, ctx: Ctx) -> JobPublic:
    return JobPublic.model_validate(ctx.workflows.get_job(workflow, job))


@router.get("/{job}/source", response_model=JobSourcePublic)
def job_source(workflow: str, job: str, _: CurrentUser, ctx: Ctx) -> JobSourcePublic:
    """The job as its workflow file writes it, and its YAML with comments (what an editor opens)."""
    return JobSourcePublic.model_validate(ctx.authoring.job_source(workflow, job))


@router.put("/{job}", response_model=JobPublic)
def update_job(workflow: str, job: str, body: JobUpdate, user: EditorUser, ctx: Ctx) -> JobPublic:
    return JobPublic.model_validate(ctx.workflows.update_job(workflow, job, body.source()))


@router.delete("/{job}", status_code=204)
def delete_job(workflow: str, job: str, user: EditorUser, ctx: Ctx) -> None:
    ctx.workflows.delete_job(workflow, job)


@router.post("/{job}/clone", response_model=JobPublic, status_code=201)
def clone_job(workflow: str, job: str, body: CloneRequest, user: EditorUser, ctx: Ctx) -> JobPublic:
    return JobPublic.model_validate(ctx.workflows.clone_job(workflow, job, body.new_name))
