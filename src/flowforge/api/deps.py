"""Dependencies every route declares: the project's Context acting as the signed-in user.

``Ctx`` is the Context seen by the user of the request (an API token, or the session cookie);
its services check that user's role themselves, so a route that forgets a role check still
cannot do more than the user may. ``EditorUser`` and ``AdminUser`` answer 403 early as well.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from flowforge.core.context import Context
from flowforge.core.users import SESSION_COOKIE, User


def base_ctx(request: Request) -> Context:
    """The server's Context, acting as nobody (sign-in and health only)."""
    ctx: Context = request.app.state.ctx
    return ctx


BaseCtx = Annotated[Context, Depends(base_ctx)]


def authenticate(request: Request, ctx: Context) -> User | None:
    """The user of the ``Authorization: Bearer <token>`` header or of the session cookie, if valid now."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return ctx.users.verify_token(header[7:].strip())
    if cookie := request.cookies.get(SESSION_COOKIE):
        return ctx.users.verify_session(cookie)
    return None


def current_user(request: Request, ctx: BaseCtx) -> User:
    """The user of the ``Authorization: Bearer <token>`` header or of the session cookie; 401 otherwise."""
    user = authenticate(request, ctx)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in (POST /api/v1/auth/login) or send "
                            "'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def user_ctx(user: CurrentUser, ctx: BaseCtx) -> Context:
    return ctx.as_user(user)


Ctx = Annotated[Context, Depends(user_ctx)]


def _role(role: str) -> object:
    def check(user: CurrentUser) -> User:
        if not user.can(role):  # type: ignore[arg-type]
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"User '{user.username}' has the {user.role} role; this needs {role}.")
        return user

    return check


EditorUser = Annotated[User, Depends(_role("editor"))]
AdminUser = Annotated[User, Depends(_role("admin"))]


# a database id: a positive 64-bit integer (a larger one is a 422, never an overflow)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
