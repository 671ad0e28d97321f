from fastapi import APIRouter

from flowforge.api.deps import Ctx, CurrentUser
from flowforge.api.models import LineagePublic

router = APIRouter(prefix="/workflows", tags=["lineage"])


@router.get("/{workflow}/lineage", response_model=LineagePublic)
def workflow_lineage(workflow: str, _: CurrentUser, ctx: Ctx) -> LineagePublic:
    """Nodes (source, bronze, silver, gold) with row count and last update, and the edges between them.
    ``workflow`` is the name or the numeric id."""
    name = ctx.workflows.resolve(workflow)
    return LineagePublic.model_validate({"workflow": name, **ctx.lineage(name)})
