"""One router per noun; ``ROUTERS`` is what ``create_app`` mounts under ``/api/v1``."""

from fastapi import APIRouter

from flowforge.api.routes import (
    audit,
    auth,
    catalog,
    connections,
    health,
    jobs,
    lineage,
    maintenance,
    runs,
    templates,
    users,
    workflows,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router, auth.router, users.router, workflows.router, jobs.router, lineage.router,
    connections.router, runs.router, catalog.router, templates.router, audit.router, maintenance.router,
)
