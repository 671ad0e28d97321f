from typing import Literal

from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser
from flowforge.api.models import SearchPublic, SearchTablePublic

router = APIRouter(prefix="/search", tags=["search"])


@router.get("", response_model=SearchPublic)
def search(_: CurrentUser, ctx: Ctx, table: str, q: str = Query(min_length=1, max_length=2000),
           k: int = Query(10, ge=1, le=1000), where: str | None = Query(None, max_length=2000),
           method: Literal["auto", "exact", "ann", "pgvector"] = "auto") -> SearchPublic:
    """Rows of ``table`` closest in meaning to ``q``, with score, source row, source version,
    lineage and data-quality status. ``where`` is one SQL condition on the table's columns."""
    return SearchPublic.model_validate(ctx.search.search(table, q, k=k, where=where, method=method))


@router.get("/tables", response_model=list[SearchTablePublic])
def searchable_tables(_: CurrentUser, ctx: Ctx) -> list[SearchTablePublic]:
    """Tables with embeddings: the embeddings table, the table it embeds, rows, model, template."""
    return [SearchTablePublic.model_validate(t) for t in ctx.search.tables()]
