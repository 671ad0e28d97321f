"""Audit log: who changed what, when, with the before and after state."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import RedirectResponse

from flowforge.errors import AccessDenied
from flowforge.ui import services
from flowforge.ui.layout import denied, frame, load, login_redirect, page, page_user, table


def register() -> None:
    @page("/audit")
    async def audit_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Audit log", user):
            try:
                entries = await load(services.audit, user, 500)
            except AccessDenied as exc:
                denied(exc)
                return None
            rows = [{"when": f"{a.at:%Y-%m-%d %H:%M:%S}", "who": a.actor, "action": a.action,
                     "object": f"{a.object_type} {a.object_id}",
                     "change": json.dumps(a.after, default=str)[:200] if a.after else ""} for a in entries]
            table(rows, pagination=50).props("data-testid=audit-table")
        return None
