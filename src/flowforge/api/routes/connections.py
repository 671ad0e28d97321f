from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import (
    ConnectionCreate,
    ConnectionPublic,
    ConnectionTestPublic,
    ConnectionViewerPublic,
    DialectPublic,
    RowsPublic,
    SourceColumnPublic,
    SourceTablePublic,
)
from flowforge.api.models_admin import ConnectionUpdate, ConnectionUse

router = APIRouter(prefix="/connections", tags=["connections"])


def _public(item: object, full: bool) -> ConnectionViewerPublic:
    """Viewers get kind, host and database (or path) only; secrets are never part of either model."""
    return ConnectionPublic.model_validate(item) if full else ConnectionViewerPublic.model_validate(item)


@router.get("", response_model=list[ConnectionPublic | ConnectionViewerPublic])
def list_connections(user: CurrentUser, ctx: Ctx) -> list[ConnectionViewerPublic]:
    return [_public(c, user.can("editor")) for c in ctx.connections.details()]


@router.post("", response_model=ConnectionPublic, status_code=201)
def create_connection(body: ConnectionCreate, user: EditorUser, ctx: Ctx) -> ConnectionViewerPublic:
    """Store a connection; its secret fields are encrypted and can never be read back."""
    if body.test:
        ctx.connections.check(body.name, body.data())
    ctx.connections.save(body.name, body.data())
    return _public(ctx.connections.detail(body.name), True)


@router.get("/{name}", response_model=ConnectionPublic | ConnectionViewerPublic)
def get_connection(name: str, user: CurrentUser, ctx: Ctx) -> ConnectionViewerPublic:
    return _public(ctx.connections.detail(name), user.can("editor"))


@router.put("/{name}", response_model=ConnectionPublic)
def update_connection(name: str, body: ConnectionUpdate, user: EditorUser, ctx: Ctx) -> ConnectionViewerPublic:
    """Save a stored connection again; a secret left out keeps its stored value while the address is unchanged."""
    ctx.connections.update(name, body.data())
    return _public(ctx.connections.detail(name), True)


@router.get("/{name}/usage", response_model=list[ConnectionUse])
def connection_usage(name: str, _: CurrentUser, ctx: Ctx) -> list[ConnectionUse]:
    """The workflow jobs (and file triggers) that use this connection."""
    ctx.connections.detail(name)  # 404 for an unknown name
    return [ConnectionUse(workflow=w, job=j) for w, j in ctx.connections.usage().get(name, [])]


@router.delete("/{name}", status_code=204)
def delete_connection(name: str, user: EditorUser, ctx: Ctx) -> None:
    ctx.connections.remove(name)


@router.post("/{name}/test", response_model=ConnectionTestPublic)
def test_connection(name: str, _: EditorUser, ctx: Ctx) -> ConnectionTestPublic:
    return ConnectionTestPublic.model_validate(ctx.connections.test(name))


@router.get("/{name}/tables", response_model=list[SourceTablePublic])
def source_tables(name: str, _: EditorUser, ctx: Ctx) -> list[SourceTablePublic]:
    return [SourceTablePublic.model_validate(t) for t in ctx.connections.tables(name)]


@router.get("/{name}/schema", response_model=list[SourceColumnPublic])
def source_schema(name: str, _: EditorUser, ctx: Ctx, table: str = Query(...)) -> list[SourceColumnPublic]:
    return [SourceColumnPublic(name=c.name, source_type=c.source_type, arrow_type=str(c.arrow_type),
                               nullable=c.nullable, primary_key=c.primary_key, default=c.default)
            for c in ctx.connections.schema(name, table)]


@router.get("/{name}/preview", response_model=RowsPublic)
def source_preview(name: str, _: EditorUser, ctx: Ctx, table: str = Query(...),
                   limit: int = Query(10, ge=1, le=1000)) -> RowsPublic:
    rows = ctx.connections.preview(name, table, limit)
    return RowsPublic(rows=rows, count=len(rows))


@router.get("/{name}/dialect", response_model=DialectPublic | None)
def source_dialect(name: str, _: EditorUser, ctx: Ctx, table: str = Query(...)) -> DialectPublic | None:
    """How a file of a files connection looks (null for databases and non-text files)."""
    found = ctx.connections.dialect(name, table)
    return DialectPublic.model_validate(found) if found else None
