"""Dependencies every route declares: the project's Context acting as the signed-in user.

``Ctx`` is the Context seen by the user of the request (an API token, or the session cookie);
its services check that user's role themselves, so a route that forgets a role check still
cannot do more than the user may. ``EditorUser`` and ``AdminUser`` answer 403 early as well.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, TypeAdapter

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
        return _token_user(request, ctx, header[7:].strip())
    if cookie := request.cookies.get(SESSION_COOKIE):
        return ctx.users.verify_session(cookie)
    return None


def _token_user(request: Request, ctx: Context, token: str) -> User | None:
    """The token's user; known again without a query while nothing was written (api/response_cache.py)."""
    from flowforge.api.response_cache import STATE_KEY, TokenUsers
    from flowforge.core.users import token_hash

    tokens: TokenUsers | None = getattr(request.app.state, "token_users", None)
    if tokens is None:
        return ctx.users.verify_token(token)
    generation = request.scope[STATE_KEY] if STATE_KEY in request.scope else tokens.generation.current()
    digest = token_hash(token)
    user = tokens.get(digest, generation)
    if user is None:
        user = ctx.users.verify_token(token)
        if user is not None:
            tokens.put(digest, generation, user)
    return user


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


def json_answer(value: BaseModel | list[BaseModel], adapter: TypeAdapter[Any] | None = None, *,
                changing: bool = False) -> Response:
    """``value`` as JSON bytes in one step. A route returning it keeps its declared ``response_model`` for
    the OpenAPI schema, but FastAPI does not validate the model again (it was just built from a
    service's result) nor pass it through a dict first. An answer ``changing`` with time alone (a live
    run) says ``Cache-Control: no-store``, so neither a client nor the server's answer cache keeps it."""
    body = adapter.dump_json(value, by_alias=True) if adapter is not None else \
        value.model_dump_json(by_alias=True).encode()  # type: ignore[union-attr]
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"} if changing else None)
