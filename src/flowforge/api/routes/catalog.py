from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser
from flowforge.api.models import QueryRequest, QueryResultPublic, TableDetailPublic, TableSummaryPublic

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("/tables", response_model=list[TableSummaryPublic])
def list_tables(_: CurrentUser, ctx: Ctx, layer: str | None = None) -> list[TableSummaryPublic]:
    return [TableSummaryPublic(name=t.name, layer=t.layer, location=t.location, rows=t.rows, version=t.version,
                               columns=[{"name": n, "type": ty} for n, ty in t.columns]) for t in ctx.tables(layer)]


@router.get("/tables/{name}", response_model=TableDetailPublic)
def table_detail(name: str, _: CurrentUser, ctx: Ctx, sample: int = Query(10, ge=0, le=1000)) -> TableDetailPublic:
    """Schema, row count, last update, Delta version history and sample rows."""
    return TableDetailPublic.model_validate(ctx.table_detail(name, sample))


@router.post("/query", response_model=QueryResultPublic)
def query(body: QueryRequest, _: CurrentUser, ctx: Ctx) -> QueryResultPublic:
    """Run one read-only SELECT over lakehouse tables by name, in the sandbox every user query runs in
    (no files, settings, extensions or other databases)."""
    from flowforge.core.catalog import sample_rows

    result = ctx.query(body.sql, limit=body.limit + 1)
    rows = sample_rows(result.slice(0, body.limit))
    return QueryResultPublic(columns=[{"name": f.name, "type": str(f.type)} for f in result.schema], rows=rows,
                             count=len(rows), truncated=result.num_rows > body.limit)
