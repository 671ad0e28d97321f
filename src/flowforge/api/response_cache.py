"""Answers of the hot read routes kept as bytes, and API tokens' users kept, while nothing changed.

``GET /workflows``, ``GET /workflows/{name}``, ``GET /workflows/{name}/lineage``, ``GET /runs``,
``GET /runs/{id}``, ``GET /runs/{id}/jobs`` and the catalog's reads are asked far more often than
anything changes. An answer is kept under (path, query string, the asking user's role): these
routes answer every user of a role alike (they need only the viewer role, and show nothing per
user). It is served again only while

* the metadata store's change generation is the one read *before* the answer was made
  (metadata/generation.py: any committed write a page could show, by any FlowForge process, changes
  it; a write that commits while an answer is being made leaves that answer under the older
  generation, so it is not used);
* the workflow files (names, sizes, modification times) are the same: an edited file changes the
  detail page even when its registration does not change;
* for the catalog's table list, table pages and search (``GET /catalog/tables``,
  ``/catalog/tables/{name}``, ``/catalog/tables/{name}/docs``, ``/catalog/search``): every
  lakehouse table's log folder has the modification time it had (storage/summaries.py
  ``LakeState``, looked at twice a second at most: a commit by a writer other than FlowForge shows
  within half a second; FlowForge's own commits change the generation). Those answers are not kept
  while a log changed within the last two seconds, nor for a lakehouse in object storage;
* it does not show a run that may change with time alone: a run's own pages (``/runs/{id}``,
  ``/runs/{id}/jobs``) of a queued or running run say ``Cache-Control: no-store`` and are not kept
  (its heartbeats, or its process dying, change them); the run list is kept only when no run was
  queued or running as it was made (with no live run there is nothing to mark abandoned until a
  write starts one, and changes the generation);
* it is younger than its time limit, drawn for each answer between half ``ttl`` and ``ttl`` seconds (a
  bound for writes made by something other than FlowForge, which the generation does not see; drawn,
  so that answers made together after a restart or a write are not all made again in the same second).

Answers are made at most ``BUILDS`` at a time per process, first come first served; the others wait
their turn without a thread. Fifty requests for pages nobody has seen yet, each made in its own
thread at once, shared the interpreter's lock fifty ways and every one of them took as long as the
slowest (p99 200 to 500 ms on two cores); two or four at a time finish in the order they came
(p99 under 100 ms, and more answers a second).

A request is served from here only when its bearer token's user is known under the same
generation (so revoking a token, disabling a user, changing a role or a password all take effect
with the write that does it); everything else (cookies, unknown tokens, other routes, errors) goes
through the application as before. Nothing here changes what an answer contains.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.storage.summaries import LakeState

if TYPE_CHECKING:
    from flowforge.api.middleware import ASGIApp, Message, Receive, Scope, Send
    from flowforge.core.context import Context
    from flowforge.core.users import User
    from flowforge.metadata.generation import Generation

BUILDS = max(2, min(4, os.cpu_count() or 2))  # answers made at once per process (see above)
TOKEN_TTL = 30.0  # a token's user is looked up again at least this often (its last use gets recorded)
STATE_KEY = "flowforge.generation"  # scope key: the generation read when the request came in


@dataclass(frozen=True, slots=True)
class _Answer:
    generation: int
    files: tuple[Any, ...]
    expires: float  # time.monotonic() after which it is made again
    headers: list[tuple[bytes, bytes]]
    body: bytes


class TokenUsers:
    """The user of each API token seen lately, per generation: ``get`` answers only when nothing was
    written since the user was looked up (and not longer than ``TOKEN_TTL``).

    The one way to a token's user, for the answer cache (on the event loop) and the routes' sign-in
    (in a worker thread): ``known`` (no I/O) and, when it answers None, ``verified`` (one lookup)::

        digest, user = tokens.known(token, generation)
        user = user or await run_in_threadpool(tokens.verified, ctx, token, digest, generation)
    """

    def __init__(self, generation: Generation, size: int = 1024) -> None:
        self.generation = generation
        self._users: OrderedDict[str, tuple[int, float, User]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, digest: str, generation: int | None) -> User | None:
        if generation is None:
            return None
        with self._lock:
            found = self._users.get(digest)
        if found is None or found[0] != generation or time.monotonic() - found[1] > TOKEN_TTL:
            return None
        return found[2]

    def known(self, token: str, generation: int | None) -> tuple[str, User | None]:
        """(the token's digest, its user when known under ``generation``); no I/O."""
        from flowforge.core.users import token_hash

        digest = token_hash(token)
        return digest, self.get(digest, generation)

    def verified(self, ctx: Context, token: str, digest: str, generation: int | None) -> User | None:
        """The token's user looked up in the store, then known under ``generation`` (the one read before
        the lookup: a write that commits meanwhile leaves it under an older one, never used again)."""
        user = ctx.users.verify_token(token)
        if user is not None:
            self.put(digest, generation, user)
        return user

    def put(self, digest: str, generation: int | None, user: User) -> None:
        if generation is None:
            return
        with self._lock:
            self._users[digest] = (generation, time.monotonic(), user)
            self._users.move_to_end(digest)
            while len(self._users) > self._size:
                self._users.popitem(last=False)


class WorkflowFiles:
    """A cheap fingerprint of the workflow folder: each file's name, size and modification time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def fingerprint(self) -> tuple[Any, ...]:
        try:
            with os.scandir(self.folder) as entries:
                found = []
                for entry in entries:
                    if entry.name.endswith((".yml", ".yaml")):
                        st = entry.stat()
                        found.append((entry.name, st.st_size, st.st_mtime_ns))
        except OSError:
            return ()
        found.sort()
        return tuple(found)


_PREFIX = "/api/v1"
_RUNS_PATH = f"{_PREFIX}/runs"
_CATALOG = f"{_PREFIX}/catalog/"
CACHED_PATHS = re.compile(rf"^{_PREFIX}/(?:workflows(?:/[^/]+(?:/lineage)?)?|runs(?:/[0-9]+(?:/jobs)?)?"
                          r"|catalog/(?:tables(?:/[^/]+(?:/docs)?)?|search))$")


class ResponseCache:
    """ASGI middleware: GET answers of ``CACHED_PATHS`` kept as bytes (see the module's docstring)."""

    def __init__(self, app: ASGIApp, ctx: Context, tokens: TokenUsers, files: WorkflowFiles, ttl: float = 60.0,
                 size: int = 4096, max_bytes: int = 64 << 20) -> None:
        self.app = app
        self.ctx = ctx
        self.tokens = tokens
        self.files = files
        self.ttl = ttl
        self._answers: OrderedDict[tuple[str, bytes, str], _Answer] = OrderedDict()
        self._size = size
        self._max_bytes = max_bytes  # all kept bodies together; one larger than an eighth is not kept
        self._bytes = 0
        self._lock = threading.Lock()
        # answers being made: a request for the same key under the same generation and files waits for
        # that one instead of making it again (50 clients asking at once after a change make it once)
        self._making: dict[tuple[str, bytes, str], tuple[int, tuple[Any, ...], asyncio.Future[_Answer | None]]] = {}
        self._builds: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None  # per event loop
        self._lake = LakeState(ctx.store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or not CACHED_PATHS.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        generation = await self.tokens.generation.read()
        scope[STATE_KEY] = generation
        if generation is None:
            await self.app(scope, receive, send)
            return
        files = self._depends(scope["path"])
        if files is None:  # cannot tell when it would change: made afresh, not kept
            async with self._turn():
                await self.app(scope, receive, send)
            return
        user = await self._token_user(scope, generation)
        if user is None:  # no token, or not a valid one: the application answers (and refuses) as ever
            await self._through(scope, receive, send, generation, files)
            return
        key = (scope["path"], scope.get("query_string", b""), user.role)
        with self._lock:
            answer = self._answers.get(key)
        if (answer is None or answer.generation != generation or answer.files != files
                or time.monotonic() > answer.expires):
            answer = None
            making = self._making.get(key)
            if making is not None and making[0] == generation and making[1] == files:
                # read the same generation later: nothing was committed in between, so the answer being
                # made is as new as one made now
                answer = await asyncio.shield(making[2])
        if answer is not None:
            await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        if key in self._making:  # being made under another generation: make ours alone
            await self._through(scope, receive, send, generation, files)
            return
        future: asyncio.Future[_Answer | None] = asyncio.get_running_loop().create_future()
        self._making[key] = (generation, files, future)
        made = None
        try:
            if scope["path"] == _RUNS_PATH and await self._live_runs():
                async with self._turn():
                    await self.app(scope, receive, send)  # made afresh while a run may die any moment
                return
            made = await self._through(scope, receive, send, generation, files)
        finally:
            del self._making[key]
            future.set_result(made)

    def _depends(self, path: str) -> tuple[Any, ...] | None:
        """What else than the metadata the answer shows: the catalog's, the lakehouse tables (their
        logs' modification times); the others', the workflow files."""
        if path.startswith(_CATALOG):
            return self._lake.fingerprint()
        return self.files.fingerprint()

    def _turn(self) -> asyncio.Semaphore:
        """The right to make an answer (``BUILDS`` at a time, in the order asked)."""
        loop = asyncio.get_running_loop()
        if self._builds is None or self._builds[0] is not loop:
            self._builds = (loop, asyncio.Semaphore(BUILDS))
        return self._builds[1]

    async def _live_runs(self) -> bool:
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(self.ctx.metadata.leases.any_live)
        except Exception:  # the application meets it again and answers it as it answers errors
            return True

    async def _token_user(self, scope: Scope, generation: int) -> User | None:
        """The user of the request's bearer token: known under this generation, else looked up (in a
        worker thread, as the routes do) and then known."""
        from starlette.concurrency import run_in_threadpool

        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                text = value.decode("latin-1")
                if text[:7].lower() != "bearer ":
                    return None
                token = text[7:].strip()
                digest, user = self.tokens.known(token, generation)
                if user is None:
                    try:
                        user = await run_in_threadpool(self.tokens.verified, self.ctx, token, digest, generation)
                    except Exception:  # the application meets it again and answers it as it answers errors
                        return None
                return user
        return None

    async def _through(self, scope: Scope, receive: Receive, send: Send, generation: int,
                       files: tuple[Any, ...]) -> _Answer | None:
        """The application answers; a complete 200 is kept under the generation read before it ran."""
        start: Message | None = None
        chunks: list[bytes] = []
        keep = True

        async def capture(message: Message) -> None:
            nonlocal start, keep
            if message["type"] == "http.response.start":
                start = message
                keep = message.get("status") == 200
            elif message["type"] == "http.response.body" and keep:
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        async with self._turn():
            await self.app(scope, receive, capture)
        user = scope.get("state", {}).get("user")
        headers = list(start.get("headers", [])) if start is not None else []
        if not keep or user is None or any(name.lower() == b"set-cookie" or (
                name.lower() == b"cache-control" and b"no-store" in value.lower()) for name, value in headers):
            return None
        key = (scope["path"], scope.get("query_string", b""), user.role)
        expires = time.monotonic() + self.ttl * (0.5 + random.random() / 2)
        answer = _Answer(generation, files, expires, headers, b"".join(chunks))
        if len(answer.body) > self._max_bytes // 8:
            return None
        with self._lock:
            old = self._answers.pop(key, None)
            self._bytes += len(answer.body) - (len(old.body) if old is not None else 0)
            self._answers[key] = answer
            while len(self._answers) > self._size or self._bytes > self._max_bytes:
                self._bytes -= len(self._answers.popitem(last=False)[1].body)
        return answer
