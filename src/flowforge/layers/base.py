"""What a layer executor receives and returns; executors register per job kind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.connectors.base import Connector
    from flowforge.settings import Settings
    from flowforge.spec.jobs import IngestJob, JobSpec
    from flowforge.storage import CommitResult, LakehouseStore


class ProgressMirror(Protocol):
    """Where executors mirror what they committed (the metadata store, in practice)."""

    def table_committed(self, *, table: str, layer: str, job: str, commit: CommitResult,
                        schema: pa.Schema, progress: dict[str, Any] | None) -> None: ...

    def tests_checked(self, *, job: str, table: str, layer: str, results: Sequence[Any]) -> None: ...

    def table_accounted(self, *, job: str, accounting: Any) -> None: ...

    def sources_found(self, *, job: IngestJob, pairs: Sequence[tuple[str, str]]) -> None:
        """The (source node, target table) pairs an ingest of every table found this run."""


@dataclass(frozen=True)
class Refresh:
    """What a run rebuilds beyond new data: ``tables`` from their sources (``--full-refresh``), and
    with ``force`` also gold tables whose inputs did not change (``--force``)."""

    tables: frozenset[str] = frozenset()
    force: bool = False

    def rebuilds(self, table: str) -> bool:
        return table in self.tables

    def forces(self, table: str) -> bool:
        return self.force or table in self.tables


@dataclass
class JobContext:
    job: JobSpec
    workflow: str
    run_id: int
    batch_id: str
    store: LakehouseStore
    mirror: ProgressMirror
    connector: Callable[[str], Connector]
    log: logging.Logger
    lines: list[str] = field(default_factory=list)
    on_progress: Callable[[int, int], None] | None = None
    settings: Settings | None = None  # the project's (job kinds that resolve paths against it need it)
    results: list[Any] = field(default_factory=list)  # test results (flowforge.quality), in order
    accounting: list[Any] = field(default_factory=list)  # where checked rows went, per committed table
    # raises RunCancelled or LeaseLost; executors call it between batches and before each commit
    checkpoint: Callable[[], None] = field(default=lambda: None)
    on_note: Callable[[list[str]], None] | None = None  # the log so far, for live logs while it runs
    refresh: Refresh = field(default_factory=Refresh)

    def note(self, message: str) -> None:
        """A line for the job run's log (kept in the metadata store and shown by the CLI)."""
        self.lines.append(message)
        self.log.info("%s: %s", self.job.name, message)
        if self.on_note is not None:
            self.on_note(self.lines)

    def progress(self, done: int, total: int) -> None:
        """How far a long job is (the CLI draws a progress bar from it)."""
        if self.on_progress is not None:
            self.on_progress(done, total)


@dataclass(frozen=True)
class TableResult:
    table: str
    layer: str
    rows_read: int
    rows_written: int
    rows_updated: int = 0
    bytes_written: int = 0
    version: int | None = None
    note: str = ""


@dataclass(frozen=True)
class JobResult:
    tables: tuple[TableResult, ...]

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.tables)

    @property
    def rows_written(self) -> int:
        return sum(t.rows_written + t.rows_updated for t in self.tables)

    @property
    def bytes_written(self) -> int:
        return sum(t.bytes_written for t in self.tables)


Executor = Callable[[JobContext], JobResult]
EXECUTORS: dict[str, Executor] = {}
E = TypeVar("E", bound=Executor)


def register_executor(kind: str) -> Callable[[E], E]:
    def deco(fn: E) -> E:
        EXECUTORS[kind] = fn
        return fn

    return deco


# The module whose import registers each built-in kind's executor: a job loads its own layer only
# (an ingest needs neither the SQL engine's layers nor export's or embed's).
_BUILTIN = {"ingest": "flowforge.layers.bronze", "cdc": "flowforge.layers.cdc", "embed": "flowforge.layers.embed",
            "export": "flowforge.layers.export", "gold": "flowforge.layers.gold",
            "publish": "flowforge.layers.publish", "silver": "flowforge.layers.silver"}


def executor_for(kind: str) -> Executor:
    if kind not in EXECUTORS and kind in _BUILTIN:
        import importlib

        importlib.import_module(_BUILTIN[kind])
    return EXECUTORS[kind]
