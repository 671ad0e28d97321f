from fastapi import APIRouter

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import (
    TemplateDetailPublic,
    TemplateInstantiate,
    TemplatePlanPublic,
    TemplatePublic,
    WorkflowDetailPublic,
)

router = APIRouter(prefix="/templates", tags=["templates"])


def _public(tpl: object) -> dict[str, object]:
    return {k: getattr(tpl, k) for k in ("name", "title", "category", "industry", "description", "parameters")}


@router.get("", response_model=list[TemplatePublic])
def list_templates(_: CurrentUser, category: str | None = None, industry: str | None = None) -> list[TemplatePublic]:
    from flowforge.templates.registry import list_templates

    return [TemplatePublic.model_validate(_public(t)) for t in list_templates(industry, category)]


@router.get("/{name}", response_model=TemplateDetailPublic)
def get_template(name: str, _: CurrentUser) -> TemplateDetailPublic:
    from flowforge.templates.registry import get_template

    tpl = get_template(name)
    return TemplateDetailPublic.model_validate({**_public(tpl), "readme": tpl.readme, "workflow_yaml": tpl.render()})


@router.post("/{name}/instantiate", response_model=WorkflowDetailPublic, status_code=201)
def instantiate(name: str, body: TemplateInstantiate, user: EditorUser, ctx: Ctx) -> WorkflowDetailPublic:
    """Create a workflow from the template with the given parameters."""
    path = ctx.instantiate_template(name, body.params, overwrite=body.overwrite,
                                    tags=body.tags, tables=body.tables)
    return WorkflowDetailPublic.model_validate(ctx.workflows.get(path.stem))


@router.post("/{name}/plan", response_model=TemplatePlanPublic)
def plan(name: str, body: TemplateInstantiate, _: CurrentUser, ctx: Ctx) -> TemplatePlanPublic:
    """What instantiating would create: the workflow's YAML, the tables it writes, and warnings for
    tables another workflow already writes (rename them with ``tables``)."""
    result = ctx.authoring.template_plan(name, body.params, tags=body.tags, tables=body.tables)
    return TemplatePlanPublic.model_validate({**result.__dict__, "conflicts": list(result.conflicts),
                                              "writes": list(result.writes), "warnings": list(result.warnings)})
