"""What every request to ``flowforge serve`` passes through, before any route or page runs.

* ``BodyLimit``: a body over ``max_request_bytes`` gets 413 before anything parses it (by its
  Content-Length, or while it streams when there is none).
* ``SameOrigin``: a state-changing request authenticated by the session cookie (no bearer token)
  must come from the server's own origin (Origin, else Referer), or one in ``allowed_origins``;
  a browser page on another site can therefore not act with a signed-in user's cookie. The UI's
  websocket is held to the same rule.
* ``SecurityHeaders``: ``nosniff``, no framing, no referrer to other sites, and a Content
  Security Policy: strict for the API, as strict as the UI's framework allows for pages (NiceGUI
  evaluates its own inline scripts, so scripts may be inline, but nothing loads or connects
  anywhere but this server).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'")
PAGE_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")


async def _json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail, "error": "HTTPError"}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        too_large = f"The request body is larger than {self.max_bytes:,} bytes."
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _json(send, 413 if declared.isdigit() else 400, too_large if declared.isdigit()
                        else "Content-Length is not a number.")
            return
        seen = 0
        state = {"started": False, "refused": False}

        async def limited() -> Message:
            nonlocal seen
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # answer now; the app sees the client gone
                    state["refused"] = True
                    if not state["started"]:
                        state["started"] = True
                        await _json(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if state["refused"]:
                return  # the 413 is already out; whatever the app answers is dropped
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited, guarded)


class SameOrigin:
    def __init__(self, app: ASGIApp, cookie: str, allowed: list[str]) -> None:
        self.app = app
        self.cookie = cookie
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        rule = self._rule(scope) if kind in ("http", "websocket") else None
        if rule is not None and not self._same_origin(scope, strict=rule == "strict"):
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _json(send, 403, "This change came from another site's page; FlowForge refuses it. "
                                       "Use the FlowForge page itself, or an API token.")
            return
        await self.app(scope, receive, send)

    def _rule(self, scope: Scope) -> str | None:
        """'strict' (Origin or Referer required and ours), 'given' (checked when the browser sent one), None."""
        if scope["type"] == "websocket":
            return "given"  # browsers always send Origin on a websocket
        if scope.get("method") not in UNSAFE_METHODS:
            return None
        if (_header(scope, b"authorization") or "").lower().startswith("bearer "):
            return None  # a token is never sent by a browser on its own
        if f"{self.cookie}=" in (_header(scope, b"cookie") or ""):
            return "strict"
        return "given" if scope.get("path", "").endswith(("/auth/login", "/auth/logout")) else None

    def _same_origin(self, scope: Scope, strict: bool) -> bool:
        origin = _header(scope, b"origin") or _header(scope, b"referer")
        if origin is None or origin == "null":
            return not strict and origin is None
        parts = urlsplit(origin)
        claimed = f"{parts.scheme}://{parts.netloc}".lower()
        host = (_header(scope, b"host") or "").lower()
        return parts.netloc.lower() == host or claimed in self.allowed


class SecurityHeaders:
    def __init__(self, app: ASGIApp, api_prefix: str, docs_prefix: str) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.docs_prefix = docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(self.docs_prefix) else API_CSP if path.startswith(self.api_prefix) \
            else PAGE_CSP
        extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"same-origin"), (b"content-security-policy", csp.encode()),
                 (b"cross-origin-opener-policy", b"same-origin")]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)
