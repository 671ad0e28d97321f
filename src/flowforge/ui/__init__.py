"""The web UI: NiceGUI pages mounted on the FastAPI app that serves the REST API.

``mount(app, settings)`` adds the pages under ``/ui`` and two small form routes for signing
in and out (the session cookie comes from the users service). Every page reads and changes
things only through ``flowforge.ui.services``, which calls the Context facade.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from flowforge.settings import Settings

_mounted: list[bool] = []


def mount(app: FastAPI, settings: Settings) -> None:
    """Serve the UI from ``app`` at ``/ui`` (``/`` redirects there).

    NiceGUI keeps one page registry per process: a second call (another app in the same
    process, as in tests) mounts the same pages on that app and points them at its settings.
    """
    from fastapi.responses import RedirectResponse
    from nicegui import core, ui

    from flowforge.ui import (
        alerts,
        audit,
        catalog,
        connections,
        dashboards,
        job_editor,
        lineage,
        login,
        runs,
        search,
        services,
        sql_console,
        templates,
        users,
        workflow_detail,
        workflows,
    )
    from flowforge.ui.layout import PREFIX

    services.configure(settings)
    login.add_routes(app)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/workflows", status_code=307)

    if _mounted:
        app.mount(PREFIX, core.app)
        return
    _mounted.append(True)
    for module in (login, workflows, workflow_detail, job_editor, templates, lineage, runs, catalog, audit, search,
                   dashboards, alerts, connections, users, sql_console):
        module.register()
    ui.run_with(app, mount_path=PREFIX, title="FlowForge", favicon="🌊", storage_secret=secrets.token_urlsafe(32),
                show_welcome_message=False)
