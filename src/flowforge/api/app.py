"""``create_app(settings)``: the FastAPI application serving ``/api/v1`` (and the UI when mounted)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from flowforge.core.context import Context
from flowforge.errors import (
    AccessDenied,
    CheckFailed,
    ConfigError,
    ConflictError,
    ConnectorError,
    FlowForgeError,
    NotFoundError,
    NotSignedIn,
    SourceNotFound,
    SpecError,
    TooManyAttempts,
    UserCodeError,
)
from flowforge.settings import Settings

log = logging.getLogger("flowforge.api")

API_PREFIX = "/api/v1"

# Most specific first: the first class an error is an instance of decides the status.
_STATUS: tuple[tuple[type[FlowForgeError], int], ...] = (
    (TooManyAttempts, 429),
    (NotSignedIn, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (AccessDenied, 403),
    (SpecError, 422),
    (CheckFailed, 422),
    (UserCodeError, 400),
    (ConfigError, 400),
    (SourceNotFound, 404),
    (ConnectorError, 502),
)


def create_app(settings: Settings, ctx: Context | None = None, *, scheduler: bool = False,
               settle: bool = False) -> FastAPI:
    """The API for one project. ``ctx`` lets a caller share its Context's stores (tests, the UI); the
    app itself acts as nobody until a request signs in. ``scheduler`` runs the scheduler
    (runner/scheduler.py) in a thread while the app runs; ``settle`` freezes the process's heap before
    the first request (``api/heap.py``; both for ``flowforge serve``)."""
    from flowforge import __version__
    from flowforge.api.middleware import BodyLimit, SameOrigin, SecurityHeaders
    from flowforge.api.routes import ROUTERS
    from flowforge.core.users import SESSION_COOKIE

    context = ctx.as_user(None) if ctx is not None else Context(settings, principal=None)
    context.metadata  # noqa: B018 - migrate now, not inside the first concurrent requests

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = start_scheduler(settings) if scheduler else None
        if settle:
            from flowforge.api import heap

            log.debug("heap settled: %d objects frozen", heap.settle())
        yield
        if stop is not None:
            stop()
        generation.close()
        if ctx is None:
            context.close()

    app = FastAPI(title="FlowForge", version=__version__, lifespan=lifespan,
                  description="Lakehouse pipelines: workflows, jobs, connections, runs, catalog, lineage, "
                              "templates and the audit log. Sign in with POST /api/v1/auth/login or send "
                              "'Authorization: Bearer <token>'.",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    app.state.ctx = context
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    _offline_docs(app)
    # the last added runs first: headers on every answer, then the origin check, then the size limit,
    # then the kept answers of the hot read routes (api/response_cache.py)
    from flowforge.api.response_cache import ResponseCache, TokenUsers, WorkflowFiles
    from flowforge.metadata.generation import Generation

    generation = Generation(context.metadata.engine)
    app.state.token_users = tokens = TokenUsers(generation)
    app.add_middleware(ResponseCache, ctx=context, tokens=tokens, files=WorkflowFiles(settings.workflows_path))
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SameOrigin, cookie=SESSION_COOKIE, allowed=settings.allowed_origins)
    app.add_middleware(SecurityHeaders, api_prefix=API_PREFIX, docs_prefix=DOCS_PATH)

    _add_metrics(app, settings)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 body, each problem worded in plain words (``spec/messages.py``)."""
        from flowforge.spec.messages import plain_message

        detail = [{"loc": list(e.get("loc", ())), "msg": plain_message(e), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(FlowForgeError)
    async def flowforge_error(_request: Request, exc: FlowForgeError) -> JSONResponse:
        code = next((c for cls, c in _STATUS if isinstance(exc, cls)), 500)
        if code == 500:
            log.error("request failed: %s", exc)
        body: dict[str, object] = {"detail": exc.message, "hint": exc.hint, "error": type(exc).__name__}
        if isinstance(exc, SpecError):
            body.update(file=exc.file, line=exc.line)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        return JSONResponse(body, status_code=code, headers=headers)

    return app


DOCS_PATH = f"{API_PREFIX}/docs"


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /api/v1/docs from the installed swagger-ui-bundle package (no CDN: it works
    on a server without internet)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ModuleNotFoundError:  # the server extra installs it; without it the docs page says so
        swagger_ui_path = None

    if swagger_ui_path is not None:
        app.mount(f"{DOCS_PATH}/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger_ui_path is None:
            return HTMLResponse("<p>API docs need the swagger-ui-bundle package (pip install "
                                "'flowforge[server]'). The schema is at /api/v1/openapi.json.</p>")
        return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title="FlowForge API",
                                   swagger_js_url=f"{DOCS_PATH}/static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_PATH}/static/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_PATH}/static/favicon-32x32.png")


def _add_metrics(app: FastAPI, settings: Settings) -> None:
    """``GET /metrics`` (Prometheus): any signed-in user or API token, or anyone with metrics_public."""
    from fastapi import Depends
    from fastapi.responses import PlainTextResponse

    from flowforge.api.deps import base_ctx, current_user
    from flowforge.core.metrics import CONTENT_TYPE, render

    async def reader(request: Request, ctx: Context = Depends(base_ctx)) -> None:
        if not settings.metrics_public:
            await current_user(request, ctx)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(reader)])
    def metrics(ctx: Context = Depends(base_ctx)) -> PlainTextResponse:
        return PlainTextResponse(render(ctx), media_type=CONTENT_TYPE)


def start_scheduler(settings: Settings) -> Callable[[], None]:
    """The scheduler on its own Context in a thread; returns what stops it (after its runs end)."""
    import threading

    from flowforge.runner.scheduler import Scheduler

    stop = threading.Event()
    own = Context(settings.model_copy(update={"actor": "flowforge scheduler"}))
    thread = threading.Thread(target=Scheduler(own).run, args=(stop,), name="flowforge-scheduler", daemon=True)
    thread.start()
    log.info("scheduler started inside the server")

    def halt() -> None:
        stop.set()
        thread.join(timeout=60)
        own.close()

    return halt
