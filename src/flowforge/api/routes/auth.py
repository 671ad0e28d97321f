from fastapi import APIRouter, Request, Response

from flowforge.api.deps import BaseCtx, Ctx, CurrentUser, Id
from flowforge.api.models import (
    LoginRequest,
    LoginResponse,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserPublic,
)
from flowforge.core.users import SESSION_COOKIE

router = APIRouter(prefix="/auth", tags=["auth"])


def set_session_cookie(request: Request, response: Response, value: str, secure_setting: str) -> None:
    """HttpOnly, SameSite=Lax, and Secure behind TLS (or always/never as ``cookie_secure`` says)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    secure = secure_setting == "always" or (secure_setting == "auto" and "https" in (request.url.scheme, forwarded))
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/")


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/login", response_model=LoginResponse,
             responses={401: {"description": "Wrong user name or password"},
                        429: {"description": "Too many failed sign-ins; see Retry-After"}})
def login(body: LoginRequest, request: Request, response: Response, ctx: BaseCtx) -> LoginResponse:
    """Check the password; start a session (the cookie) and return a new API token when asked.
    Repeated failures lock the user name and the client address out for a growing while."""
    user = ctx.users.authenticate(body.username, body.password.get_secret_value(), client_address(request))
    set_session_cookie(request, response, ctx.users.issue_session(user), ctx.settings.cookie_secure)
    token = ctx.as_user(user).users.create_token(user.username, "login") if body.issue_token else None
    return LoginResponse(user=UserPublic.model_validate(user), token=token)


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, ctx: BaseCtx) -> None:
    """End the session: the cookie stops working at once, in every tab and server process."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        ctx.users.end_session(cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/password", response_model=UserPublic)
def change_own_password(body: PasswordChange, user: CurrentUser, ctx: Ctx) -> UserPublic:
    """Change the signed-in user's password (the current one is required); every other session ends."""
    changed = ctx.users.set_password(user.username, body.new_password.get_secret_value(),
                                     current=body.current_password.get_secret_value())
    return UserPublic.model_validate(changed)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_own_token(body: TokenCreate, user: CurrentUser, ctx: Ctx) -> TokenCreated:
    """A new API token for the signed-in user, shown once."""
    return TokenCreated(name=body.name, token=ctx.users.create_token(user.username, body.name))


@router.get("/tokens", response_model=list[TokenPublic])
def list_own_tokens(user: CurrentUser, ctx: Ctx) -> list[TokenPublic]:
    """The signed-in user's API tokens (names and dates; a token itself is never shown again)."""
    return [TokenPublic.model_validate(t) for t in ctx.users.list_tokens(user.username)]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_own_token(token_id: Id, user: CurrentUser, ctx: Ctx) -> None:
    """Revoke one of the signed-in user's own tokens (another user's token is a 404)."""
    ctx.users.revoke_token(user.username, token_id)
