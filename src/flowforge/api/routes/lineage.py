from typing import Annotated

from fastapi import APIRouter, Query, Response

from flowforge.api.deps import Ctx, CurrentUser, json_answer
from flowforge.api.models import ColumnGraphPublic, ColumnLineagePublic, LineagePublic

router = APIRouter(tags=["lineage"])


@router.get("/workflows/{workflow}/lineage", response_model=LineagePublic)
def workflow_lineage(workflow: str, _: CurrentUser, ctx: Ctx) -> Response:
    """Nodes (source, bronze, silver, gold) with row count and last update, and the edges between them.
    ``workflow`` is the name or the numeric id."""
    name, graph = ctx.lineage_of(workflow)
    return json_answer(LineagePublic.model_validate({"workflow": name, **graph}))


@router.get("/workflows/{workflow}/lineage/columns", response_model=ColumnGraphPublic)
def workflow_column_lineage(workflow: str, _: CurrentUser, ctx: Ctx) -> ColumnGraphPublic:
    """The tables of a workflow with their columns, and the direct column edges between them."""
    name = ctx.workflows.resolve(workflow)
    return ColumnGraphPublic.model_validate(ctx.column_lineage.graph(name))


@router.get("/lineage/columns", response_model=ColumnLineagePublic)
def column_lineage(_: CurrentUser, ctx: Ctx,
                   table: Annotated[str, Query(max_length=300, description="A lakehouse table, 'connection.table' "
                                               "of a source, or the name without its layer prefix")],
                   column: Annotated[str | None, Query(max_length=300)] = None,
                   indirect: bool = False) -> ColumnLineagePublic:
    """Every column upstream and downstream of ``table.column`` across workflows, nearest first
    (``indirect=true`` adds the key, join and filter columns that shape those tables). Without a
    column: the table's columns and their direct edges."""
    return ColumnLineagePublic.model_validate(ctx.column_lineage.columns(table, column, indirect=indirect))
