from fastapi import APIRouter, HTTPException, Response, status

from flowforge.api.deps import Ctx, CurrentUser
from flowforge.api.models import LoginRequest, LoginResponse, TokenCreate, TokenCreated, UserPublic
from flowforge.core.users import SESSION_COOKIE, SESSION_SECONDS

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, response: Response, ctx: Ctx) -> LoginResponse:
    """Check the password; set the session cookie, and return a new API token when asked."""
    user = ctx.users.authenticate(body.username, body.password.get_secret_value())
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong user name or password.")
    response.set_cookie(SESSION_COOKIE, ctx.users.issue_session(user), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax")
    token = ctx.users.create_token(user.username, "login", actor=user.username) if body.issue_token else None
    return LoginResponse(user=UserPublic.model_validate(user), token=token)


@router.post("/logout", status_code=204)
def logout(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_own_token(body: TokenCreate, user: CurrentUser, ctx: Ctx) -> TokenCreated:
    """A new API token for the signed-in user, shown once."""
    return TokenCreated(name=body.name, token=ctx.users.create_token(user.username, body.name, actor=user.username))
