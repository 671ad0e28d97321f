"""Sign-in page: a plain HTML form posted to ``/ui/auth/login``, which sets the session cookie."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from flowforge.errors import AccessDenied
from flowforge.ui import services
from flowforge.ui.layout import url


def _safe_next(target: str) -> str:
    return target if target.startswith(url("/")) and not target.startswith("//") else url("/workflows")


def add_routes(app: FastAPI) -> None:
    from flowforge.api.routes.auth import client_address, set_session_cookie
    from flowforge.errors import TooManyAttempts

    @app.post(url("/auth/login"), include_in_schema=False)
    def _login(request: Request, username: Annotated[str, Form(max_length=256)],
               password: Annotated[str, Form(max_length=1024)],
               next: Annotated[str, Form(max_length=2048)] = "") -> RedirectResponse:
        try:
            token = services.login(username, password, client_address(request))
        except TooManyAttempts as exc:
            return RedirectResponse(url(f"/login?error=locked&wait={exc.retry_after}&next={quote(_safe_next(next))}"),
                                    status_code=303)
        except AccessDenied:
            return RedirectResponse(url(f"/login?error=1&next={quote(_safe_next(next))}"), status_code=303)
        response = RedirectResponse(_safe_next(next), status_code=303)
        set_session_cookie(request, response, token, services.settings().cookie_secure)
        return response

    @app.post(url("/auth/logout"), include_in_schema=False)
    def _logout(request: Request) -> RedirectResponse:
        """Signing out ends the session on the server: the cookie is worthless everywhere at once."""
        services.logout(request.cookies.get(services.SESSION_COOKIE))
        response = RedirectResponse(url("/login"), status_code=303)
        response.delete_cookie(services.SESSION_COOKIE, path="/")
        return response


FORM = """
<form method="post" action="{action}" class="flex flex-col gap-4 w-80">
  <input type="hidden" name="next" value="{next}">
  <label class="flex flex-col text-sm">User name
    <input name="username" autocomplete="username" required autofocus
           class="border rounded px-3 py-2 text-base" data-testid="username"></label>
  <label class="flex flex-col text-sm">Password
    <input name="password" type="password" autocomplete="current-password" required
           class="border rounded px-3 py-2 text-base" data-testid="password"></label>
  <button type="submit" class="bg-[#1f4e79] text-white rounded px-4 py-2" data-testid="sign-in">Sign in</button>
</form>
"""


def register() -> None:
    @ui.page("/login")
    def login_page(request: Request) -> None:
        import html

        ui.page_title("Sign in · FlowForge")
        with ui.card().classes("absolute-center items-center gap-4 p-8"):
            ui.label("FlowForge").classes("text-3xl font-bold text-[#1f4e79]")
            ui.label("Sign in to manage pipelines").classes("text-gray-600")
            error = request.query_params.get("error")
            if error == "locked":
                wait = request.query_params.get("wait", "")
                ui.label(f"Too many failed sign-ins; try again in {wait if wait.isdigit() else 'a few'} s.").classes(
                    "text-negative").props("data-testid=login-error")
            elif error:
                ui.label("Wrong user name or password.").classes("text-negative").props("data-testid=login-error")
            next_url = html.escape(_safe_next(request.query_params.get("next", "")), quote=True)
            ui.html(FORM.format(action=url("/auth/login"), next=next_url), sanitize=False)
