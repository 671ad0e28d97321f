"""A small, thread-safe pool of idle DB-API connections for the discovery and planning statements
of the SQL connectors (streaming reads keep a connection of their own: one long statement each).

A checkout lends one connection to one caller: an idle one that passes ``ping`` (else it is
closed and another tried), or a new one. Coming back it is ``reset`` (an open transaction rolled
back) and kept while fewer than ``size`` are idle, unless the caller's block raised a driver error
(its state is unknown) or ``discard``-ed it. A timer closes connections idle for ``idle_timeout``.
``close()`` closes the idle ones now, the lent ones when they come back, and leaves the pool usable.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from flowforge.errors import FlowForgeError

C = TypeVar("C")
DEFAULT_SIZE = 2
IDLE_TIMEOUT = 300.0  # seconds; well below the servers' own idle limits (MySQL's wait_timeout is 8 h)
POOL_SIZE_HELP = ("Idle discovery and planning connections kept open for reuse (0: connect for every "
                  "call). Reads stream on connections of their own.")


def suspect(exc: BaseException) -> bool:
    """Whether a connection that raised ``exc`` may be in an unknown state: anything but one of our
    own errors raised without an underlying (driver) exception."""
    return not (isinstance(exc, FlowForgeError) and exc.__cause__ is None and exc.__context__ is None)


def close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # already closed or broken: nothing left to release
        conn.close()


class Pool(Generic[C]):
    """Up to ``size`` idle connections made by ``connect``; thread-safe, never lends one twice."""

    def __init__(self, connect: Callable[[], C], *, ping: Callable[[C], object], reset: Callable[[C], object],
                 size: int = DEFAULT_SIZE, idle_timeout: float = IDLE_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 0 or idle_timeout <= 0:
            raise ValueError("size must be >= 0 and idle_timeout > 0")
        self.size, self.idle_timeout = size, idle_timeout
        self._connect, self._ping, self._reset, self._clock = connect, ping, reset, clock
        self._lock = threading.Lock()
        self._idle: list[tuple[C, float]] = []  # (connection, idle since), oldest first
        self._lent: dict[int, int] = {}  # id(connection) → the pool's generation when lent
        self._doomed: set[int] = set()
        self._generation = 0  # close() starts a new one; connections of an older one are not kept
        self._timer: threading.Timer | None = None

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    @contextmanager
    def connection(self, *, fresh: bool = False) -> Iterator[C]:
        """Lend a connection for the block; ``fresh`` skips the idle ones (a connection test
        proves that a new login works now). It joins the pool afterwards."""
        conn = self._checkout(fresh)
        try:
            yield conn
        except BaseException as exc:
            self._checkin(conn, keep=not suspect(exc))
            raise
        self._checkin(conn, keep=True)

    def discard(self, conn: C) -> None:
        """Close ``conn`` when it comes back instead of keeping it (e.g. a result left unread)."""
        with self._lock:
            if id(conn) in self._lent:
                self._doomed.add(id(conn))

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for conn, _ in idle:
            close_quietly(conn)

    # -- internals ----------------------------------------------------------------------------

    def _checkout(self, fresh: bool) -> C:
        while not fresh:
            with self._lock:
                expired = self._expire()
                conn = self._idle.pop()[0] if self._idle else None  # the most recently used one
                if conn is not None:
                    self._lent[id(conn)] = self._generation
            for old in expired:
                close_quietly(old)
            if conn is None:
                break
            try:
                self._ping(conn)
            except Exception:  # dropped by the server, timed out, killed: make another
                self._forget(conn)
                close_quietly(conn)
                continue
            return conn
        with self._lock:
            generation = self._generation
        conn = self._connect()
        with self._lock:
            self._lent[id(conn)] = generation
        return conn

    def _forget(self, conn: C) -> tuple[int, bool]:
        with self._lock:
            doomed = id(conn) in self._doomed
            self._doomed.discard(id(conn))
            return self._lent.pop(id(conn)), doomed

    def _checkin(self, conn: C, *, keep: bool) -> None:
        generation, doomed = self._forget(conn)
        if keep and not doomed and self.size > 0 and generation == self._generation:
            try:
                self._reset(conn)
            except Exception:
                keep = False
            with self._lock:
                if keep and generation == self._generation and len(self._idle) < self.size:
                    self._idle.append((conn, self._clock()))
                    self._schedule()
                    return
        close_quietly(conn)

    def _expire(self) -> list[C]:
        """Take the idle connections past the timeout out of the pool (lock held; caller closes)."""
        cutoff = self._clock() - self.idle_timeout
        expired = [conn for conn, since in self._idle if since <= cutoff]
        self._idle = [(conn, since) for conn, since in self._idle if since > cutoff]
        return expired

    def _schedule(self) -> None:
        """Arm the timer for the oldest idle connection (lock held). The timer holds the pool
        weakly: a pool nobody uses any more is collected, and its connections with it."""
        if self._timer is None and self._idle:
            delay = max(0.0, self._idle[0][1] + self.idle_timeout - self._clock())
            self._timer = threading.Timer(delay, _reap, (weakref.ref(self),))
            self._timer.daemon = True
            self._timer.start()

    def _reap(self) -> None:
        with self._lock:
            self._timer = None
            expired = self._expire()
            self._schedule()
        for conn in expired:
            close_quietly(conn)


def _reap(ref: weakref.ref[Pool[Any]]) -> None:
    pool = ref()
    if pool is not None:
        pool._reap()
