"""Continuous CDC: run a workflow's cdc jobs in micro-batches until stopped.

Each cycle first asks, cheaply, whether anything is pending (changes of the captured tables at
the source, or bronze rows a silver table has not applied); only then does it start a recorded
run, so an idle stream does not fill the run history: WAL or binlog written by other databases
is no change. When the source asks to release what it retains (a replication slot holding WAL),
the loop commits the position alone, without a run. Connectors stay open between polls.

Every micro-batch is an ordinary run (trigger ``follow``), recorded like any other so whatever
watches runs (a dead owner, a lease) covers it: bronze and silver commit with their positions,
so stopping (Ctrl-C or SIGTERM finishes the micro-batch in progress; kill -9 at any moment) and
following again resumes exactly where the commits say.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError, RunCancelled

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from flowforge.connectors.base import Connector
    from flowforge.runner.executor import JobEvent, Runner, RunSummary
    from flowforge.spec.cdc import CdcJob
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore

log = logging.getLogger("flowforge.follow")

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


class TableWatch:
    """What the polls read from Delta tables, kept while a table's log has no newer commit (for a
    local table, one ``stat``; an idle ``--follow`` then opens no table at all)."""

    def __init__(self, store: LakehouseStore) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], tuple[int, Any]] = {}

    def read(self, layer: str, table: str, what: Callable[[DeltaTable], Any]) -> Any:
        import os

        from flowforge.storage.options import is_remote

        key = (layer, table)
        loc = self.store.location(layer, table)
        hit = self.cache.get(key)
        if hit is not None and not is_remote(loc) and not os.path.exists(
                os.path.join(loc, "_delta_log", f"{hit[0] + 1:020d}.json")):
            return hit[1]
        dt = self.store.open(layer, table)
        if dt is None:
            self.cache.pop(key, None)
            return None
        value = what(dt)
        self.cache[key] = (dt.version(), value)
        return value


def pending(job: CdcJob, store: LakehouseStore, conn: Connector, watch: TableWatch | None = None) -> bool:
    """Whether a micro-batch of ``job`` would do anything; commits a position the source asks to
    release when nothing else is pending."""
    from flowforge.connectors.base import ReadRequest
    from flowforge.layers.bronze_versions import last_data_version
    from flowforge.layers.cdc import CDC_STATE, commit_advance, stored_state
    from flowforge.layers.silver import SOURCE_VERSION

    watch = watch or TableWatch(store)

    def position(dt: DeltaTable) -> tuple[dict[str, Any] | None, int | None]:
        found = store.progress_many("bronze", job.target, (CDC_STATE,), dt)
        return stored_state(store, job.target, found), last_data_version(dt)

    def applied(dt: DeltaTable, table: str) -> Any:
        return store.progress_many("silver", table, (SOURCE_VERSION,), dt).get(SOURCE_VERSION)

    bronze = watch.read("bronze", job.target, position)
    state, newest = bronze if bronze is not None else (None, None)
    poll = conn.cdc_poll(ReadRequest(files=job.files, batch_size=job.batch_size), state)
    if poll.changes:
        return True
    if bronze is None:
        return False  # no events yet, and the source has none either
    for table in job.tables:
        done = watch.read("silver", table.target, partial(applied, table=table.target))
        if newest is not None and (done is None or int(done[0].get("version", -1)) < newest):
            return True
    if poll.advance is not None:
        version = commit_advance(store, job.target, poll.advance, job.name)
        log.info("%s: no change of the captured tables; position %s committed so the source can release it "
                 "(bronze version %s)", job.name, poll.advance, version)
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
    cycles = failures = 0
    idle_since = time.monotonic()
    restore = _stop_on_signals(stop)
    lease = ExitStack()
    conns: dict[str, Connector] = {}
    watch = TableWatch(runner.store)
    try:
        runner = lease.enter_context(runner.holding(workflow, stop))  # the workflow's lease, for the whole loop
        while not stop.is_set():
            started = time.monotonic()
            for j in jobs:
                if j.name not in conns:
                    conns[j.name] = runner.connector(j.connection)
            if any(pending(j, runner.store, conns[j.name], watch) for j in jobs):
                summary = runner.run(workflow, trigger="follow", actor=actor, on_event=on_event, select=names)
                cycles += 1
                idle_since = time.monotonic()
                if on_cycle is not None:
                    on_cycle(summary)
                if options.max_cycles is not None and cycles >= options.max_cycles:
                    break
                if summary.status != "success":
                    # do not spin on a failing job: 1, 2, 4... up to 60 seconds between attempts
                    failures += 1
                    stop.wait(min(60.0, max(interval, 1.0) * 2 ** (failures - 1)))
                    continue
                failures = 0
            elif options.idle_timeout is not None and time.monotonic() - idle_since >= options.idle_timeout:
                break
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    except (KeyboardInterrupt, RunCancelled):  # RunCancelled: stopped while waiting for the lease
        pass
    finally:
        lease.close()
        restore()
        for conn in conns.values():
            if not conn.shared:
                conn.close()
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
