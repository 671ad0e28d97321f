from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import QueryRequest, QueryResultPublic, TableDetailPublic, TableSummaryPublic
from flowforge.api.models_admin import CatalogHit, HistoryEntry, TableDocs

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("/tables", response_model=list[TableSummaryPublic])
def list_tables(_: CurrentUser, ctx: Ctx, layer: str | None = None) -> list[TableSummaryPublic]:
    """Tables with SQL type names (BIGINT, DECIMAL(15,2)...) and their location under the lakehouse root."""
    return [TableSummaryPublic(name=t.name, layer=t.layer, location=t.location, rows=t.rows, version=t.version,
                               columns=[{"name": c.name, "type": c.type, "comment": c.comment} for c in t.columns])
            for t in ctx.catalog.tables(layer)]


@router.get("/search", response_model=list[CatalogHit])
def search_catalog(_: CurrentUser, ctx: Ctx, q: str = Query(..., min_length=1, max_length=200)) -> list[CatalogHit]:
    """Tables and columns whose name, description or comment contains ``q`` (any case)."""
    return [CatalogHit.model_validate(h) for h in ctx.catalog.search(q)]


@router.get("/tables/{name}/docs", response_model=TableDocs)
def table_docs(name: str, _: CurrentUser, ctx: Ctx) -> TableDocs:
    ctx.catalog.table(name)  # 404 for an unknown table
    description, columns = ctx.catalog.docs(name)
    return TableDocs(description=description, columns=columns)


@router.put("/tables/{name}/docs", response_model=TableDocs)
def set_table_docs(name: str, body: TableDocs, _: EditorUser, ctx: Ctx) -> TableDocs:
    """Set the description and/or column comments (given columns only; empty text removes one)."""
    description, columns = ctx.catalog.describe(name, body.description, body.columns)
    return TableDocs(description=description, columns=columns)


@router.get("/query/history", response_model=list[HistoryEntry])
def query_history(_: CurrentUser, ctx: Ctx, limit: int = Query(50, ge=1, le=200)) -> list[HistoryEntry]:
    """The signed-in user's own SQL console queries, newest first."""
    return [HistoryEntry.model_validate(h) for h in ctx.console.history(limit)]


@router.get("/tables/{name}", response_model=TableDetailPublic)
def table_detail(name: str, _: CurrentUser, ctx: Ctx, sample: int = Query(10, ge=0, le=1000)) -> TableDetailPublic:
    """Schema, row count, last update, Delta version history and sample rows."""
    return TableDetailPublic.model_validate(ctx.table_detail(name, sample))


@router.post("/query", response_model=QueryResultPublic)
def query(body: QueryRequest, _: CurrentUser, ctx: Ctx) -> QueryResultPublic:
    """Run one read-only SELECT over lakehouse tables by name, in the sandbox every user query runs in
    (no files, settings, extensions or other databases)."""
    from flowforge.core.catalog import sample_rows
    from flowforge.core.catalog_docs import sql_type

    result = ctx.query(body.sql, limit=body.limit + 1)
    rows = sample_rows(result.slice(0, body.limit))
    return QueryResultPublic(columns=[{"name": f.name, "type": sql_type(f.type)} for f in result.schema], rows=rows,
                             count=len(rows), truncated=result.num_rows > body.limit)
