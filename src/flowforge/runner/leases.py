"""Holding leases from a process: acquire (waiting or not, per the workflow's ``concurrency``),
keep them alive with a heartbeat thread, release them.

One :class:`LeaseKeeper` is one holder (a run, a ``--follow`` loop, a worker's job): it is
re-entrant for its own leases, so a follow loop that holds ``workflow:x`` runs its micro-batches
under the same lease. Its heartbeat thread renews every lease and run it keeps every
``timeout / 4`` seconds; if a renewal finds a lease gone (another process took it over after this
one stalled past the timeout), :meth:`check` raises :class:`LeaseLost` at the next safe point, so
the stalled holder stops before committing anything more.

Example::

    with LeaseKeeper(ctx.metadata, timeout=60) as keeper:
        keeper.acquire(["workflow:daily"], run_id=7, wait=True, should_stop=cancelled)
        ...
        keeper.release(["workflow:daily"])
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from flowforge.errors import LeaseLost
from flowforge.metadata.leases import LeaseGrant
from flowforge.runner.owner import is_dead, new_holder

if TYPE_CHECKING:
    from flowforge.metadata import MetadataStore

log = logging.getLogger("flowforge.leases")
DEFAULT_TIMEOUT = 60.0


def workflow_lease(name: str) -> str:
    return f"workflow:{name}"


def table_lease(name: str) -> str:
    return f"table:{name}"


class LeaseKeeper:
    def __init__(self, metadata: MetadataStore, *, timeout: float = DEFAULT_TIMEOUT, holder: str | None = None,
                 poll: float = 0.5) -> None:
        self.metadata = metadata
        self.timeout = timeout
        self.holder = holder or new_holder()
        self.poll = poll
        self._held: Counter[str] = Counter()
        self._runs: set[int] = set()
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- leases -------------------------------------------------------------------------------------
    def try_acquire(self, names: Sequence[str], *, run_id: int | None = None, job: str | None = None,
                    abandon: bool = False) -> LeaseGrant:
        """One attempt at all of ``names``; held ones count once more (re-entrant)."""
        with self._lock:
            mine = [n for n in names if self._held[n] > 0]
            fresh = [n for n in names if self._held[n] == 0]
        grant = LeaseGrant(True)
        if fresh:
            grant = self.metadata.leases.acquire(fresh, self.holder, timeout=self.timeout, is_dead=is_dead,
                                                 run_id=run_id, job=job, abandon=abandon)
            if not grant.acquired:
                return grant
            for lease in grant.took_over:
                log.warning("took over lease %s from a holder last seen at %s", lease.name, lease.heartbeat_at)
        with self._lock:
            self._held.update(mine + fresh)
        self._start()
        return grant

    def acquire(self, names: Sequence[str], *, run_id: int | None = None, job: str | None = None,
                abandon: bool = False, should_stop: Callable[[], None] | None = None,
                on_wait: Callable[[LeaseGrant], None] | None = None) -> LeaseGrant:
        """Wait until all of ``names`` are held. ``should_stop`` is called between attempts (it raises
        to give up, e.g. on a cancel request); ``on_wait`` hears about the first refusal."""
        told = False
        while True:
            grant = self.try_acquire(names, run_id=run_id, job=job, abandon=abandon)
            if grant.acquired:
                return grant
            if not told and on_wait is not None:
                on_wait(grant)
                told = True
            if should_stop is not None:
                should_stop()
            if self._stop.wait(self.poll):
                raise LeaseLost("The lease keeper was closed while waiting for a lease.")

    def release(self, names: Sequence[str]) -> None:
        done = []
        with self._lock:
            for name in names:
                if self._held[name] > 0:
                    self._held[name] -= 1
                    if self._held[name] == 0:
                        del self._held[name]
                        self._lost.discard(name)
                        done.append(name)
        if done:
            self.metadata.leases.release(done, self.holder)

    def bind(self, name: str, run_id: int) -> None:
        """Note in a held lease which run it is for now."""
        self.metadata.leases.bind(name, self.holder, run_id)

    def holds(self, name: str) -> bool:
        with self._lock:
            return self._held[name] > 0 and name not in self._lost

    # -- runs kept alive --------------------------------------------------------------------------------
    def keep_alive(self, run_id: int) -> None:
        with self._lock:
            self._runs.add(run_id)
        self._start()

    def forget(self, run_id: int) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def check(self) -> None:
        """Raise :class:`LeaseLost` if another process took over one of our leases."""
        with self._lock:
            lost = sorted(self._lost)
        if lost:
            raise LeaseLost(f"Lease {', '.join(lost)} was taken over by another process (this one did not renew "
                            f"it for {self.timeout:.0f}s); stopping before committing anything more.",
                            hint="Check for stalls (CPU, swap, a blocked metadata store), or raise "
                                 "scheduler.lease_timeout in flowforge.yml.")

    # -- heartbeat ----------------------------------------------------------------------------------------
    def beat(self) -> None:
        with self._lock:
            names, run_ids = list(self._held), list(self._runs)
        if not names and not run_ids:
            return
        lost = self.metadata.leases.renew(self.holder, names, run_ids, timeout=self.timeout)
        if lost:
            with self._lock:
                self._lost |= {n for n in lost if self._held[n] > 0}
            log.error("lost lease(s) %s: another process took them over", ", ".join(sorted(lost)))

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="flowforge-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = max(0.05, self.timeout / 4)
        while not self._stop.wait(interval):
            started = time.monotonic()
            try:
                self.beat()
            except Exception:  # a blip of the metadata store: the next beat retries well before expiry
                log.exception("lease heartbeat failed")
            if time.monotonic() - started > self.timeout / 2:
                log.warning("a lease heartbeat took %.1fs (timeout %.0fs)", time.monotonic() - started, self.timeout)

    def close(self) -> None:
        """Stop the heartbeat and release everything still held."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._lock:
            names = list(self._held)
            self._held.clear()
            self._runs.clear()
        if names:
            try:
                self.metadata.leases.release(names, self.holder)
            except Exception:  # they expire on their own
                log.exception("could not release leases %s", ", ".join(names))
