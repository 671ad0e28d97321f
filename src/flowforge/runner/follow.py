"""Continuous CDC: run a workflow's cdc jobs in micro-batches until stopped.

Each cycle first asks, cheaply, whether anything is pending (new files or offsets at the
source, or bronze versions a silver table has not applied); only then does it start a
recorded run, so an idle stream does not fill the run history. Every micro-batch is an
ordinary run: bronze and silver commit with their positions, so stopping (Ctrl-C finishes
the micro-batch in progress; kill -9 at any moment) and following again resumes exactly where the
commits say.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowforge.errors import ConfigError, RunCancelled

if TYPE_CHECKING:
    from flowforge.connectors.base import Connector
    from flowforge.runner.executor import JobEvent, Runner, RunSummary
    from flowforge.spec.cdc import CdcJob
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore


@dataclass(frozen=True)
class FollowOptions:
    interval: float | None = None   # seconds between polls; default: the smallest job setting
    max_cycles: int | None = None   # stop after this many micro-batch runs (tests, benchmarks)
    idle_timeout: float | None = None  # stop after this long without anything pending


def cdc_jobs(workflow: Workflow) -> list[CdcJob]:
    from flowforge.spec.cdc import CdcJob

    jobs: list[CdcJob] = [j for j in workflow.jobs if isinstance(j, CdcJob)]  # type: ignore[misc]
    if not jobs:
        raise ConfigError(f"Workflow '{workflow.name}' has no cdc jobs to follow.",
                          hint="--follow runs jobs of kind 'cdc'; run the workflow without it.")
    return jobs


def pending(job: CdcJob, store: LakehouseStore, connector: Callable[[str], Connector]) -> bool:
    """Whether a micro-batch of ``job`` would do anything."""
    from flowforge.connectors.base import ReadRequest
    from flowforge.layers.cdc import CDC_STATE
    from flowforge.layers.silver import SOURCE_VERSION

    found = store.progress("bronze", job.target, CDC_STATE)
    with connector(job.connection) as conn:
        if conn.plan(ReadRequest(files=job.files, batch_size=job.batch_size), found[0] if found else None).has_data:
            return True
    bronze = store.open("bronze", job.target)
    if bronze is None:
        return False
    for table in job.tables:
        done = store.progress("silver", table.target, SOURCE_VERSION)
        if done is None or done[0].get("version") != bronze.version():
            return True
    return False


def follow(workflow: Workflow, runner: Runner, *, actor: str, options: FollowOptions,
           on_event: Callable[[JobEvent], None] | None = None,
           on_cycle: Callable[[RunSummary], None] | None = None,
           stop: threading.Event | None = None) -> int:
    """Loop until ``stop`` is set (or Ctrl-C, or a limit in ``options``); returns the runs made."""
    jobs = cdc_jobs(workflow)
    interval = options.interval if options.interval is not None else min(j.follow_interval for j in jobs)
    stop = stop or threading.Event()
    names = [j.name for j in jobs]
    cycles = 0
    idle_since = time.monotonic()
    restore = _stop_on_signals(stop)
    lease = ExitStack()
    try:
        runner = lease.enter_context(runner.holding(workflow, stop))  # the workflow's lease, for the whole loop
        while not stop.is_set():
            started = time.monotonic()
            if any(pending(j, runner.store, runner.connector) for j in jobs):
                summary = runner.run(workflow, trigger="follow", actor=actor, on_event=on_event, select=names)
                cycles += 1
                idle_since = time.monotonic()
                if on_cycle is not None:
                    on_cycle(summary)
                if options.max_cycles is not None and cycles >= options.max_cycles:
                    break
                if summary.status != "success":
                    stop.wait(max(interval, 1.0))  # do not spin on a failing job
                    continue
            elif options.idle_timeout is not None and time.monotonic() - idle_since >= options.idle_timeout:
                break
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    except (KeyboardInterrupt, RunCancelled):  # RunCancelled: stopped while waiting for the lease
        pass
    finally:
        lease.close()
        restore()
    return cycles


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Ctrl-C or SIGTERM end the loop after the micro-batch in progress (its commits stay whole);
    a second Ctrl-C interrupts at once. Signal handlers exist only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
