"""Where a workflow declares tests: each table with its layer, how its commit changes it, and its tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowforge.quality.base import TestSpec
    from flowforge.spec.workflow import Workflow


@dataclass(frozen=True)
class TestedTable:
    """A table of a workflow and the tests declared on it."""

    __test__ = False  # not a pytest test class

    workflow: str
    job: str
    layer: str
    table: str
    tests: tuple[TestSpec, ...]
    mode: str  # append | merge | overwrite: how a commit changes the table
    keys: tuple[str, ...] = ()
    order_by: str | None = None
    change_table: bool = False  # applied from a change stream (cdc)


def tested_tables(wf: Workflow) -> Iterator[TestedTable]:
    """Every table of ``wf`` with at least one test, in job order."""
    from flowforge.spec.cdc import CdcJob
    from flowforge.spec.jobs import GoldJob, IngestJob, SilverJob

    for job in wf.jobs:
        if isinstance(job, IngestJob):
            for t in job.tables:
                if t.tests:
                    yield TestedTable(wf.name, job.name, "bronze", t.target, t.tests, "append")
        elif isinstance(job, SilverJob):
            for s in job.tables:
                if s.tests:
                    yield TestedTable(wf.name, job.name, "silver", s.target, s.tests,
                                      "merge" if s.strategy == "merge" else "append", s.keys, s.order_by)
        elif isinstance(job, GoldJob):
            for g in job.tables:
                if g.tests:
                    yield TestedTable(wf.name, job.name, "gold", g.target, g.tests, "overwrite")
        elif isinstance(job, CdcJob):
            for a in job.tables:
                if a.tests:
                    yield TestedTable(wf.name, job.name, "silver", a.target, a.tests,
                                      "merge" if a.strategy == "scd1" else "append", a.keys, change_table=True)
