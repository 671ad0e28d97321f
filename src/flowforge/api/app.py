"""``create_app(settings)``: the FastAPI application serving ``/api/v1`` (and the UI when mounted)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from flowforge.core.context import Context
from flowforge.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    ConnectorError,
    FlowForgeError,
    NotFoundError,
    SpecError,
)
from flowforge.settings import Settings

log = logging.getLogger("flowforge.api")

API_PREFIX = "/api/v1"

# Most specific first: the first class an error is an instance of decides the status.
_STATUS: tuple[tuple[type[FlowForgeError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (AccessDenied, 403),
    (SpecError, 422),
    (ConfigError, 400),
    (ConnectorError, 502),
)


def create_app(settings: Settings, ctx: Context | None = None, *, scheduler: bool = False) -> FastAPI:
    """The API for one project. ``ctx`` lets a caller share its Context (tests, the UI); ``scheduler``
    runs the scheduler (runner/scheduler.py) in a thread while the app runs (``flowforge serve``)."""
    from flowforge import __version__
    from flowforge.api.routes import ROUTERS

    context = ctx or Context(settings)
    context.metadata  # noqa: B018 - migrate now, not inside the first concurrent requests

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = _start_scheduler(settings) if scheduler else None
        yield
        if stop is not None:
            stop()
        if ctx is None:
            context.close()

    app = FastAPI(title="FlowForge", version=__version__, lifespan=lifespan,
                  description="Lakehouse pipelines: workflows, jobs, connections, runs, catalog, lineage, "
                              "templates and the audit log. Sign in with POST /api/v1/auth/login or send "
                              "'Authorization: Bearer <token>'.",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None)
    app.state.ctx = context
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    _add_metrics(app, settings)

    @app.exception_handler(FlowForgeError)
    async def flowforge_error(_request: Request, exc: FlowForgeError) -> JSONResponse:
        code = next((c for cls, c in _STATUS if isinstance(exc, cls)), 500)
        if code == 500:
            log.error("request failed: %s", exc)
        body: dict[str, object] = {"detail": exc.message, "hint": exc.hint, "error": type(exc).__name__}
        if isinstance(exc, SpecError):
            body.update(file=exc.file, line=exc.line)
        return JSONResponse(body, status_code=code)

    return app


def _add_metrics(app: FastAPI, settings: Settings) -> None:
    """``GET /metrics`` (Prometheus): any signed-in user or API token, or anyone with metrics_public."""
    from fastapi import Depends
    from fastapi.responses import PlainTextResponse

    from flowforge.api.deps import current_user, get_ctx
    from flowforge.core.metrics import CONTENT_TYPE, render

    def reader(request: Request, ctx: Context = Depends(get_ctx)) -> None:
        if not settings.metrics_public:
            current_user(request, ctx)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(reader)])
    def metrics(ctx: Context = Depends(get_ctx)) -> PlainTextResponse:
        return PlainTextResponse(render(ctx), media_type=CONTENT_TYPE)


def _start_scheduler(settings: Settings) -> Callable[[], None]:
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
