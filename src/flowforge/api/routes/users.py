from fastapi import APIRouter

from flowforge.api.deps import AdminUser, Ctx, Id
from flowforge.api.models import TokenCreate, TokenCreated, TokenPublic, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("", response_model=list[UserPublic])
def list_users(_: AdminUser, ctx: Ctx) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in ctx.users.list_users()]


@router.post("", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, admin: AdminUser, ctx: Ctx) -> UserPublic:
    user = ctx.users.create_user(body.username, body.password.get_secret_value(), body.role)
    return UserPublic.model_validate(user)


@router.patch("/{username}", response_model=UserPublic)
def update_user(username: str, body: UserUpdate, admin: AdminUser, ctx: Ctx) -> UserPublic:
    user = ctx.users.get(username)
    if body.role is not None:
        user = ctx.users.set_role(username, body.role)
    if body.disabled is not None:
        user = ctx.users.disable(username, disabled=body.disabled)
    if body.password is not None:
        user = ctx.users.set_password(username, body.password.get_secret_value())
    return UserPublic.model_validate(user)


@router.get("/{username}/tokens", response_model=list[TokenPublic])
def list_tokens(username: str, _: AdminUser, ctx: Ctx) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in ctx.users.list_tokens(username)]


@router.post("/{username}/tokens", response_model=TokenCreated, status_code=201)
def create_token(username: str, body: TokenCreate, admin: AdminUser, ctx: Ctx) -> TokenCreated:
    return TokenCreated(name=body.name, token=ctx.users.create_token(username, body.name))


@router.delete("/{username}/tokens/{token_id}", status_code=204)
def revoke_token(username: str, token_id: Id, admin: AdminUser, ctx: Ctx) -> None:
    ctx.users.revoke_token(username, token_id)
