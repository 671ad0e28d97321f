"""Dependencies every route declares: the Context and the signed-in user with a role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from flowforge.core.context import Context
from flowforge.core.users import SESSION_COOKIE, User


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_ctx)]


def current_user(request: Request, ctx: Ctx) -> User:
    """The user of the ``Authorization: Bearer <token>`` header or of the session cookie; 401 otherwise."""
    header = request.headers.get("authorization", "")
    user = None
    if header.lower().startswith("bearer "):
        user = ctx.users.verify_token(header[7:].strip())
    elif cookie := request.cookies.get(SESSION_COOKIE):
        user = ctx.users.verify_session(cookie)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in (POST /api/v1/auth/login) or send "
                            "'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def _role(role: str) -> object:
    def check(user: CurrentUser) -> User:
        if not user.can(role):  # type: ignore[arg-type]
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"User '{user.username}' has the {user.role} role; this needs {role}.")
        return user

    return check


EditorUser = Annotated[User, Depends(_role("editor"))]
AdminUser = Annotated[User, Depends(_role("admin"))]
