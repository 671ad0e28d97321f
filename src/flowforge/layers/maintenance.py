"""Automatic maintenance of micro-batch tables, and the on-demand commands behind it.

After a run, the tables written by its CDC jobs and by ingest jobs reading a files connection
(with the silver tables fed from those) are checked against the maintenance policy
(``spec/maintenance.py``): a table with ``optimize_every`` commits since its last compaction, or
``max_small_files`` small files, is compacted and checkpointed, then vacuumed with the policy's
retention. A bronze table waits while a table reading it has not processed all of its rows: a
compaction must never be mistaken for new data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowforge.spec.maintenance import MaintenancePolicy
    from flowforge.spec.workflow import Workflow
    from flowforge.storage import LakehouseStore
    from flowforge.storage.maintenance import OptimizeResult, VacuumResult

log = logging.getLogger("flowforge.maintenance")
_MB = 1 << 20
# table location -> version of its last compaction seen by this process (spares a history read
# on every micro-batch of --follow)
_last_optimize: dict[str, int] = {}
_last_check: dict[str, int] = {}  # table location -> version whose files were last counted
_SMALL_FILES_EVERY = 4
_lock = threading.Lock()


@dataclass(frozen=True)
class MaintenanceDone:
    table: str
    layer: str
    action: str   # optimize | vacuum | skipped
    detail: str


def readers(workflow: Workflow) -> dict[str, set[str]]:
    """Bronze table → the silver tables of the workflow that read it."""
    from flowforge.spec.cdc import CdcJob
    from flowforge.spec.jobs import SilverJob

    out: dict[str, set[str]] = {}
    for job in workflow.jobs:
        if isinstance(job, CdcJob):
            out.setdefault(job.target, set()).update(t.target for t in job.tables)
        elif isinstance(job, SilverJob):
            for t in job.tables:
                out.setdefault(t.source, set()).add(t.target)
    return out


def micro_batch_tables(workflow: Workflow, connection_kind: object) -> list[tuple[str, str, MaintenancePolicy | None]]:
    """(layer, table, the job's own policy) for CDC targets and file-stream ingest targets of a
    workflow, plus the silver tables fed from those. ``connection_kind(name)`` gives a
    connection's type."""
    from flowforge.spec.cdc import CdcJob
    from flowforge.spec.jobs import IngestJob, SilverJob

    out: list[tuple[str, str, MaintenancePolicy | None]] = []
    streamed: set[str] = set()
    for job in workflow.jobs:
        if isinstance(job, CdcJob):
            out.append(("bronze", job.target, job.maintenance))
            out += [("silver", t.target, job.maintenance) for t in job.tables]
        elif isinstance(job, IngestJob):
            try:
                kind = connection_kind(job.connection)  # type: ignore[operator]
            except Exception:  # an unknown connection: the run already said so
                continue
            if kind == "files":
                out += [("bronze", t.target, None) for t in job.tables]
                streamed |= {t.target for t in job.tables}
    for job in workflow.jobs:
        if isinstance(job, SilverJob):
            out += [("silver", t.target, None) for t in job.tables if t.source in streamed]
    return out


def consumers_behind(store: LakehouseStore, bronze: str, declared: set[str] | None = None) -> list[str]:
    """Silver tables that read ``bronze`` and have not processed its newest rows yet (a ``declared``
    reader that does not exist yet counts too)."""
    from flowforge.layers.bronze_versions import last_data_version
    from flowforge.layers.silver import SOURCE_VERSION

    dt_ = store.open("bronze", bronze)
    if dt_ is None:
        return []
    newest = last_data_version(dt_)
    behind = sorted(n for n in declared or () if store.open("silver", n) is None)
    for layer, name in store.tables():
        if layer != "silver":
            continue
        done = store.progress("silver", name, SOURCE_VERSION)
        reads_it = done is not None and isinstance(done[0], dict) and done[0].get("table") == bronze
        if reads_it and newest is not None and int(done[0].get("version", -1)) < newest:  # type: ignore[index]
            behind.append(name)
    return behind


def due(store: LakehouseStore, layer: str, table: str, policy: MaintenancePolicy,
        version: int | None = None) -> str | None:
    """Why the table needs compacting now, or None. ``version``, the table's version as the caller
    just committed it, lets a check between compactions skip opening the table."""
    from flowforge.storage.maintenance import health

    loc = store.location(layer, table)
    with _lock:
        last, checked = _last_optimize.get(loc), _last_check.get(loc)
    if (version is not None and last is not None and checked is not None and version - last < policy.optimize_every
            and version - checked < _SMALL_FILES_EVERY):
        return None  # small files are counted every few commits, not on every micro-batch
    dt_ = store.open(layer, table)
    if dt_ is None:
        return None
    version = dt_.version()
    with _lock:
        _last_check[loc] = version
    if last is not None and version - last < policy.optimize_every:
        from flowforge.storage.delta import add_actions_table

        sizes = add_actions_table(dt_).column("size_bytes").to_pylist()
        small = sum(1 for s in sizes if (s or 0) < policy.small_file_mb * _MB)
        return f"{small} small files" if small >= policy.max_small_files else None
    state = health(dt_, int(policy.small_file_mb * _MB))
    with _lock:
        _last_optimize[loc] = state.version - state.commits_since_optimize
    if state.commits_since_optimize >= policy.optimize_every:
        return f"{state.commits_since_optimize} commits since the last compaction"
    if state.small_files >= policy.max_small_files:
        return f"{state.small_files} small files"
    return None


def maintain(store: LakehouseStore, tables: Iterable[tuple[str, str, MaintenancePolicy | None]],
             default: MaintenancePolicy, declared: dict[str, set[str]] | None = None,
             written: dict[tuple[str, str], int] | None = None) -> list[MaintenanceDone]:
    """Apply the policy to each table (of those in ``written``, when given: layer and table → the
    version the run committed); what was done, for the log and the audit trail."""
    from flowforge.storage.maintenance import optimize, vacuum

    done: list[MaintenanceDone] = []
    for layer, table, own in tables:
        policy = own or default
        if not policy.auto or (written is not None and (layer, table) not in written):
            continue
        reason = due(store, layer, table, policy, (written or {}).get((layer, table)))
        if reason is None:
            continue
        if layer == "bronze":
            behind = consumers_behind(store, table, (declared or {}).get(table))
            if behind:
                done.append(MaintenanceDone(table, layer, "skipped", f"compaction due ({reason}) but "
                                            f"{', '.join(behind)} has not read its newest rows yet"))
                continue
        result = optimize(store, layer, table, int(policy.target_file_mb * _MB), reason=reason)
        with _lock:
            _last_optimize[store.location(layer, table)] = result.version
        done.append(MaintenanceDone(table, layer, "optimize", describe_optimize(result, reason)))
        if policy.vacuum:
            gone = vacuum(store, layer, table, policy.retention, versions=True)
            if gone.files_deleted:
                done.append(MaintenanceDone(table, layer, "vacuum", describe_vacuum(gone, policy.vacuum_retention)))
    for item in done:
        log.info("%s %s: %s", item.action, item.table, item.detail)
    return done


def describe_optimize(result: OptimizeResult, reason: str = "") -> str:
    why = f" ({reason})" if reason else ""
    if not result.files_removed:
        return f"already compact{why}"
    return (f"{result.files_removed} files compacted into {result.files_added}{why}, "
            f"checkpoint at version {result.version}")


def describe_vacuum(result: VacuumResult, retention: str) -> str:
    what = "never-committed table folder removed" if result.uncommitted else "files deleted"
    return f"{result.files_deleted} {what} ({result.bytes_deleted / _MB:.1f} MB), retention {retention}"
