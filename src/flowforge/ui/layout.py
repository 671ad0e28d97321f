"""The shared frame: header, navigation, the signed-in user, and page guards."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import services

PREFIX = "/ui"
# (label, path, icon, the role a user needs to see the entry)
NAV = (("Workflows", "/workflows", "account_tree", "viewer"),
       ("Templates", "/templates", "dashboard_customize", "viewer"),
       ("Runs", "/runs", "play_circle", "viewer"), ("Catalog", "/catalog", "table_view", "viewer"),
       ("Search", "/search", "search", "viewer"), ("Audit log", "/audit", "history", "editor"),
       ("Dashboards", "/dashboards", "insights", "viewer"), ("Alerts", "/alerts", "notifications", "editor"),
       ("Connections", "/connections", "cable", "viewer"), ("SQL", "/sql", "terminal", "viewer"),
       ("Users", "/users", "group", "admin"))
SESSION_CHECK_SECONDS = 15
# a page whose loads answer within this goes out whole in its first response; a slower load lets the
# page go out with a spinner where the rest will be, and builds the rest once the load answers
QUICK_SECONDS = 0.5
# a page goes out by this long after its request whatever its loads do (NiceGUI gives up on a page
# still building after its response_timeout of 3 s)
FIRST_RESPONSE_SECONDS = 1.5
# how long a page still being built waits for its browser to connect before giving up
CONNECT_SECONDS = 120.0
# NiceGUI's limit for a page's first response (its default is 3 s): the session check before it has
# no spinner to fall back on, and on a busy machine it may take more than the default
RESPONSE_TIMEOUT_SECONDS = 30.0
P = ParamSpec("P")
R = TypeVar("R")
# logs and other code blocks wrap long lines instead of scrolling sideways
PAGE_CSS = """
.ff-log, .ff-log pre, .ff-log code {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-word;
}
.ff-log pre { max-height: 32rem; overflow-y: auto; }
"""
LOGOUT_FORM = ('<form method="post" action="{action}" style="margin:0">'
               '<button type="submit" data-testid="sign-out" class="text-white px-3 py-1 rounded '
               'hover:bg-white/10">Sign out</button></form>')
STATUS_COLORS = {"success": "positive", "running": "info", "failed": "negative", "partial": "warning",
                 "skipped": "grey", "paused": "warning", "active": "positive", "never run": "grey",
                 "queued": "blue-grey", "cancelled": "orange"}


def url(path: str) -> str:
    return PREFIX + path


def go(path: str) -> None:
    """Open a UI page; NiceGUI adds the mount prefix to the path itself."""
    ui.navigate.to(path)


def current_user(request: Request) -> services.UiUser | None:
    return services.session_user(request.cookies.get(services.SESSION_COOKIE))


async def load(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``call(*args, **kwargs)`` (a blocking service call: the metadata store, the lakehouse, a source)
    in a worker thread, so the event loop keeps serving every other page, click and timer meanwhile.

    While a page is still being built, a call that has not answered within QUICK_SECONDS (or by
    FIRST_RESPONSE_SECONDS after the request) sends the page out with a spinner in its place; the rest
    of the page is built once the call answers."""
    task = asyncio.ensure_future(run.io_bound(call, *args, **kwargs))
    client = ui.context.client
    if client.has_socket_connection:
        return cast(R, await task)
    left = FIRST_RESPONSE_SECONDS - (time.time() - client.created)
    done, _ = await asyncio.wait({task}, timeout=max(0.0, min(QUICK_SECONDS, left)))
    if done:
        return cast(R, task.result())
    spinner = ui.spinner(size="lg").props("data-testid=loading")
    try:
        await client.connected(timeout=CONNECT_SECONDS)
        return cast(R, await task)
    finally:
        spinner.delete()


async def settle(result: object) -> None:
    """Wait for what a callback returned when it is awaitable (an async refresh of the page)."""
    if inspect.isawaitable(result):
        await result


async def page_user(request: Request) -> services.UiUser | None:
    """The signed-in user of a page request, the session checked off the event loop (without a spinner:
    the page may still answer with a redirect to the sign-in page)."""
    return await run.io_bound(current_user, request)


def page(path: str) -> ui.page:
    """``ui.page`` for a signed-in page (see RESPONSE_TIMEOUT_SECONDS)."""
    return ui.page(path, response_timeout=RESPONSE_TIMEOUT_SECONDS)


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(url(f"/login?next={request.url.path}"), status_code=303)


@contextmanager
def frame(title: str, user: services.UiUser) -> Iterator[ui.label]:
    """Header with navigation; the page body goes inside. Yields the title's label (a page that learns
    its title from a load renames it)."""
    ui.page_title(f"{title} · FlowForge")
    ui.colors(primary="#1f4e79")
    ui.add_css(PAGE_CSS)
    with ui.header(fixed=False).classes("items-center justify-between px-4 py-2"):
        with ui.row().classes("items-center gap-6"):
            ui.link("FlowForge", "/workflows").classes("text-xl font-bold text-white no-underline")
            for label, path, icon, role in NAV:
                if not user.record.can(role):  # type: ignore[arg-type]
                    continue
                with ui.link(target=path).classes("text-white no-underline flex items-center gap-1"):
                    ui.icon(icon)
                    ui.label(label)
        with ui.row().classes("items-center gap-2"):
            with ui.link(target="/account").classes("text-white no-underline flex items-center gap-1").props(
                    "data-testid=my-account"):
                ui.icon("account_circle")
                ui.label(f"{user.name} ({user.role})").props("data-testid=current-user")
            ui.html(LOGOUT_FORM.format(action=url("/auth/logout")), sanitize=False)
    _watch_session(user)
    with ui.column().classes("w-full max-w-7xl mx-auto p-4 gap-4"):
        yield ui.label(title).classes("text-2xl font-semibold")


def _watch_session(user: services.UiUser) -> None:
    """An open page leaves for the sign-in page soon after its session ends (signed out elsewhere,
    password changed, account disabled, timed out); every action it sends is refused before that."""
    async def check() -> None:
        if await load(services.session_user, user.session, touch=False) is None:
            timer.cancel()
            ui.navigate.to("/login")

    # not at once: the page was just checked, and a timer that starts at once would send the page out
    # before an async page has built it
    timer = ui.timer(SESSION_CHECK_SECONDS, check, immediate=False)


def denied(exc: BaseException) -> bool:
    """Show why a page cannot be shown to this user; True when ``exc`` was an access refusal."""
    from flowforge.errors import AccessDenied

    if not isinstance(exc, AccessDenied):
        return False
    ui.label(error_message(exc)).classes("text-negative").props("data-testid=access-denied")
    return True


def status_badge(status: str) -> None:
    ui.badge(status, color=STATUS_COLORS.get(status, "grey")).props(f"data-testid=status-{status}")


def error_message(exc: BaseException) -> str:
    hint = getattr(exc, "hint", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{message} {hint}" if hint else message


def notify_error(exc: BaseException) -> None:
    ui.notify(error_message(exc), type="negative", multi_line=True, timeout=8000)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None, **props: Any) -> ui.table:
    """A plain Quasar table whose columns are the keys of the rows."""
    keys = columns or (list(rows[0]) if rows else [])
    cols = [{"name": k, "label": k, "field": k, "align": "left", "sortable": True} for k in keys]
    return ui.table(columns=cols, rows=rows, **props).classes("w-full").props("dense flat bordered wrap-cells")


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 job', '3 jobs', '0 jobs' (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def empty_state(message: str, testid: str = "empty-state") -> ui.column:
    """What an empty page or list says: what is missing and what to do; buttons go inside."""
    box = ui.column().classes("w-full items-start gap-2 p-6 border border-dashed rounded text-gray-700").props(
        f"data-testid={testid}")
    with box:
        ui.label(message)
    return box
