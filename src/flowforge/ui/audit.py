"""Audit log: who changed what, when, with the before and after state."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.errors import AccessDenied
from flowforge.ui import services
from flowforge.ui.layout import current_user, denied, frame, login_redirect, table


def register() -> None:
    @ui.page("/audit")
    def audit_page(request: Request) -> RedirectResponse | None:
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Audit log", user):
            try:
                entries = services.audit(user, 500)
            except AccessDenied as exc:
                denied(exc)
                return None
            rows = [{"when": f"{a.at:%Y-%m-%d %H:%M:%S}", "who": a.actor, "action": a.action,
                     "object": f"{a.object_type} {a.object_id}",
                     "change": json.dumps(a.after, default=str)[:200] if a.after else ""} for a in entries]
            table(rows, pagination=50)
        return None
