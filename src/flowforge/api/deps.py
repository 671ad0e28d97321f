"""Dependencies every route declares: the project's Context acting as the signed-in user.

``Ctx`` is the Context seen by the user of the request (an API token, or the session cookie);
its services check that user's role themselves, so a route that forgets a role check still
cannot do more than the user may. ``EditorUser`` and ``AdminUser`` answer 403 early as well.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from flowforge.api.response_cache import STATE_KEY, TokenUsers
from flowforge.core.context import Context
from flowforge.core.users import SESSION_COOKIE, User


async def base_ctx(request: Request) -> Context:
    """The server's Context, acting as nobody (sign-in and health only)."""
    ctx: Context = request.app.state.ctx
    return ctx


BaseCtx = Annotated[Context, Depends(base_ctx)]


def authenticate(request: Request, ctx: Context) -> User | None:
    """The user of the ``Authorization: Bearer <token>`` header or of the session cookie, if valid now."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        tokens = _token_users(request)
        token = header[7:].strip()
        if tokens is None:
            return ctx.users.verify_token(token)
        generation = _generation(request, tokens)
        digest, user = tokens.known(token, generation)
        return user or tokens.verified(ctx, token, digest, generation)
    if cookie := request.cookies.get(SESSION_COOKIE):
        return ctx.users.verify_session(cookie)
    return None


async def current_user(request: Request, ctx: BaseCtx) -> User:
    """The user of the ``Authorization: Bearer <token>`` header or of the session cookie; 401 otherwise.
    A token whose user is known under the generation the answer cache read answers on the event loop;
    any other sign-in is looked up in a worker thread (api/response_cache.py)."""
    user = None
    tokens = _token_users(request)
    header = request.headers.get("authorization", "")
    if tokens is not None and STATE_KEY in request.scope and header.lower().startswith("bearer "):
        user = tokens.known(header[7:].strip(), request.scope[STATE_KEY])[1]
    if user is None:
        user = await run_in_threadpool(authenticate, request, ctx)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in (POST /api/v1/auth/login) or send "
                            "'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
    request.state.user = user
    return user


def _token_users(request: Request) -> TokenUsers | None:
    tokens: TokenUsers | None = getattr(request.app.state, "token_users", None)
    return tokens


def _generation(request: Request, tokens: TokenUsers) -> int | None:
    """The generation the answer cache read for this request, else read now (a route it does not keep)."""
    return request.scope[STATE_KEY] if STATE_KEY in request.scope else tokens.generation.current()


CurrentUser = Annotated[User, Depends(current_user)]


async def user_ctx(user: CurrentUser, ctx: BaseCtx) -> Context:
    return ctx.as_user(user)


Ctx = Annotated[Context, Depends(user_ctx)]


def _role(role: str) -> object:
    async def check(user: CurrentUser) -> User:
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
