from fastapi import APIRouter

from flowforge.api.deps import BaseCtx
from flowforge.api.models import HealthPublic

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=HealthPublic)
def health(ctx: BaseCtx) -> HealthPublic:
    """Liveness and metadata store reachability; needs no credentials."""
    from flowforge import __version__

    return HealthPublic(status="ok", version=__version__, metadata=ctx.health())
