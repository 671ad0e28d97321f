"""One router per noun; ``ROUTERS`` is what ``create_app`` mounts under ``/api/v1``."""

from fastapi import APIRouter

from flowforge.api.routes import (
    alerts,
    audit,
    auth,
    catalog,
    connections,
    dashboards,
    health,
    jobs,
    lineage,
    maintenance,
    quality,
    runs,
    schedules,
    search,
    templates,
    users,
    workflows,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router, auth.router, users.router, workflows.router, jobs.router, lineage.router,
    connections.router, runs.router, catalog.router, templates.router, audit.router,
    search.router, dashboards.router, quality.router, schedules.router, alerts.router, maintenance.router,
)
