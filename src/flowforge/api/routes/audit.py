from fastapi import APIRouter, Query

from flowforge.api.deps import Ctx, EditorUser
from flowforge.api.models import AuditPublic

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=list[AuditPublic])
def audit_log(_: EditorUser, ctx: Ctx, actor: str | None = None, action: str | None = None,
              object_type: str | None = None, limit: int = Query(100, ge=1, le=10_000)) -> list[AuditPublic]:
    """Who did what and when, newest first (editors and admins; entries hold connection options)."""
    return [AuditPublic.model_validate(a)
            for a in ctx.audit_log(limit, actor=actor, action=action, object_type=object_type)]
