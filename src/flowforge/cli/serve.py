"""``flowforge serve``: the REST API and the web UI on one port."""


import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from flowforge.cli.common import _context

if TYPE_CHECKING:
    from flowforge.settings import Settings

log = logging.getLogger("flowforge.serve")

ADMIN_PASSWORD_ENV = "FLOWFORGE_ADMIN_PASSWORD"
ADMIN_USER_ENV = "FLOWFORGE_ADMIN_USER"


def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
          ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Also serve the web UI.")] = True,
          scheduler: Annotated[bool, typer.Option("--scheduler/--no-scheduler", help="Also run the scheduler "
                                                  "(triggers fire; off when 'flowforge scheduler' runs apart).")]
          = True,
          log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
          access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request "
                                                   "(off: at hundreds of requests a second it costs more than "
                                                   "many answers).")] = False,
          workers: Annotated[int, typer.Option(min=1, max=64, help="API processes sharing the port (more than 1 "
                                               "needs --no-ui; the scheduler still runs once).")] = 1) -> None:
    """Serve the REST API (/api/v1, docs at /api/v1/docs) and the web UI on one port.

    On first start, with no users yet, it creates the admin: the password comes from
    FLOWFORGE_ADMIN_PASSWORD or a prompt; there is no default password.
    """
    from flowforge.cli import output

    if workers > 1 and ui:
        output.error("The web UI keeps each open page's state in the process that served it, so it runs in one "
                     "process: use --workers with --no-ui (and serve the UI from a second 'flowforge serve' "
                     "on another port).")
        raise typer.Exit(2)

    try:
        import uvicorn

        from flowforge.api import create_app
    except ModuleNotFoundError as exc:
        output.error(f"'flowforge serve' needs the server extra ({exc.name} is missing): "
                     "pip install 'flowforge[server]'")
        raise typer.Exit(1) from None
    with _context() as ctx:
        if not ctx.users.has_users():
            _create_first_admin(ctx)
        settings = ctx.settings
    run_scheduler = scheduler and settings.scheduler.in_serve
    if workers > 1:
        _serve_workers(settings, host, port, log_level, workers, run_scheduler, access_log)
        return
    app = create_app(settings, scheduler=run_scheduler, settle=True)
    if ui:
        _mount_ui(app, settings)
    output.info(f"FlowForge on http://{host}:{port}  (API docs: http://{host}:{port}/api/v1/docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)


def _serve_workers(settings: "Settings", host: str, port: int, log_level: str, workers: int,
                   run_scheduler: bool, access_log: bool = False) -> None:
    """``workers`` uvicorn processes serve the API on one port; this process supervises them and runs
    the one scheduler (so it fires once, however many workers there are)."""
    import uvicorn

    from flowforge.api.app import start_scheduler
    from flowforge.api.workers import PROJECT_ENV
    from flowforge.cli import output

    os.environ[PROJECT_ENV] = str(settings.project_dir)  # the spawned workers load the same project
    stop = start_scheduler(settings) if run_scheduler else None
    output.info(f"FlowForge API on http://{host}:{port} with {workers} worker processes "
                f"(API docs: http://{host}:{port}/api/v1/docs)")
    try:
        uvicorn.run("flowforge.api.workers:app", factory=True, host=host, port=port, log_level=log_level,
                    workers=workers, access_log=access_log)
    finally:
        if stop is not None:
            stop()


def _create_first_admin(ctx: object) -> None:
    from flowforge.cli import output
    from flowforge.core.context import Context

    assert isinstance(ctx, Context)
    username = os.environ.get(ADMIN_USER_ENV, "admin")
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if not password:
        if not sys.stdin.isatty():
            output.error(f"No users yet and no terminal to ask for the first admin's password: set "
                         f"{ADMIN_PASSWORD_ENV} (and optionally {ADMIN_USER_ENV}), or run "
                         "'flowforge users create NAME --role admin' first.")
            raise typer.Exit(1)
        output.info(f"No users yet: creating the admin user '{username}'.")
        password = typer.prompt("Admin password", hide_input=True, confirmation_prompt=True)
    ctx.users.create_user(username, password, "admin")
    output.info(f"created admin user '{username}'")


def _mount_ui(app: object, settings: object) -> None:
    try:
        from flowforge import ui
    except ImportError as exc:
        log.warning("web UI not served: flowforge.ui cannot be imported (%s); the API works alone", exc)
        return
    mount = getattr(ui, "mount", None)
    if mount is None:
        log.warning("web UI not served: flowforge.ui has no mount(app, settings)")
        return
    mount(app, settings)
