"""Stopping a run at a safe point: a cancel request, or a lease taken over by another process.

A cancel is a flag on the run in the metadata store (``flowforge cancel``, the API, the UI), so the
process running it may be another one, on another machine. Executors call
:meth:`RunControl.checkpoint` between jobs, between a bronze stream's batches, before a silver
commit and between a gold stream's batches; it reads the flag at most every ``poll`` seconds, and
at once when the cancel came from this same process. It never interrupts a commit: a cancelled job
leaves its tables at their previous version.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final

from flowforge.errors import LeaseLost, RunCancelled

if TYPE_CHECKING:
    from flowforge.metadata import MetadataStore
    from flowforge.runner.leases import LeaseKeeper

POLL_SECONDS: Final = 0.5
_local: dict[int, threading.Event] = {}  # cancels asked in this process, by run id
_local_lock = threading.Lock()


def cancel_here(run_id: int) -> None:
    """Tell a run executing in this process at once (the flag in the store tells the others)."""
    with _local_lock:
        event = _local.get(run_id)
    if event is not None:
        event.set()


class RunControl:
    def __init__(self, metadata: MetadataStore, run_id: int, keeper: LeaseKeeper | None = None,
                 poll: float = POLL_SECONDS) -> None:
        self.metadata = metadata
        self.run_id = run_id
        self.keeper = keeper
        self.poll = poll
        self._next_read = time.monotonic() + poll  # a run just recorded has no flag yet
        with _local_lock:
            self._event = _local.setdefault(run_id, threading.Event())

    def checkpoint(self) -> None:
        """Raise :class:`RunCancelled` or :class:`LeaseLost` if the run must stop now."""
        if self.keeper is not None:
            self.keeper.check()
        if self._event.is_set():
            raise self._cancelled()
        now = time.monotonic()
        if now < self._next_read:
            return
        self._next_read = now + self.poll
        status, requested = self.metadata.leases.run_flags(self.run_id)
        if requested:
            self._event.set()
            raise self._cancelled()
        if status not in ("queued", "running"):
            raise LeaseLost(f"Run {self.run_id} was marked {status} by another process (its heartbeat was "
                            "late); stopping before committing anything more.")

    def cancelled(self) -> bool:
        return self._event.is_set()

    def close(self) -> None:
        with _local_lock:
            _local.pop(self.run_id, None)

    def _cancelled(self) -> RunCancelled:
        return RunCancelled(f"Run {self.run_id} was cancelled; it stopped at a safe point and committed "
                            "nothing partial.")
