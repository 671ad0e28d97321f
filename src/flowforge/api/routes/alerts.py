"""Alert channels: list (no secrets), create or replace, delete, send a test."""

from fastapi import APIRouter

from flowforge.api.deps import Ctx, CurrentUser, EditorUser
from flowforge.api.models import AlertChannelPublic, AlertChannelUpdate, AlertTestPublic

router = APIRouter(prefix="/alert-channels", tags=["alerts"])


@router.get("", response_model=list[AlertChannelPublic])
def list_channels(_: CurrentUser, ctx: Ctx) -> list[AlertChannelPublic]:
    return [AlertChannelPublic.model_validate(c) for c in ctx.alerts.summaries()]


@router.put("/{name}", response_model=AlertChannelPublic)
def save_channel(name: str, body: AlertChannelUpdate, user: EditorUser, ctx: Ctx) -> AlertChannelPublic:
    """Create or replace a channel; secret fields left out keep their stored values."""
    return AlertChannelPublic.model_validate(ctx.alerts.save_channel(name, body.data()))


@router.delete("/{name}", status_code=204)
def delete_channel(name: str, user: EditorUser, ctx: Ctx) -> None:
    ctx.alerts.remove_channel(name)


@router.post("/{name}/test", response_model=AlertTestPublic)
def test_channel(name: str, _: EditorUser, ctx: Ctx) -> AlertTestPublic:
    """Send a test alert now; 502 saying why when it cannot be delivered."""
    return AlertTestPublic(channel=name, result=ctx.alerts.test_channel(name))
