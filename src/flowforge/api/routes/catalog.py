from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser
from flowforge.api.models import TableDetailPublic, TableSummaryPublic

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("/tables", response_model=list[TableSummaryPublic])
def list_tables(_: CurrentUser, ctx: Ctx, layer: str | None = None) -> list[TableSummaryPublic]:
    return [TableSummaryPublic(name=t.name, layer=t.layer, location=t.location, rows=t.rows, version=t.version,
                               columns=[{"name": n, "type": ty} for n, ty in t.columns]) for t in ctx.tables(layer)]


@router.get("/tables/{name}", response_model=TableDetailPublic)
def table_detail(name: str, _: CurrentUser, ctx: Ctx, sample: int = Query(10, ge=0, le=1000)) -> TableDetailPublic:
    """Schema, row count, last update, Delta version history and sample rows."""
    return TableDetailPublic.model_validate(ctx.table_detail(name, sample))
