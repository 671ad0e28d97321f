"""Which tables a ``--full-refresh`` rebuilds, and which jobs that takes.

``flowforge run wf --full-refresh`` rebuilds every table of the workflow from its sources;
``--select t1 t2`` only those tables and everything downstream of them (a silver table read
from a rebuilt bronze table is rebuilt too, a gold table over it recomputed). A rebuild is an
overwrite commit, so Delta history, and time travel to the versions before, is kept; a bronze
table's watermark restarts in the very commit that replaces its rows. Tables of other job kinds
(cdc, embed, export, publish) downstream of a rebuilt table run as usual; a cdc job starts over
with ``flowforge cdc reset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowforge.errors import SpecError
from flowforge.layers.base import Refresh

if TYPE_CHECKING:
    from flowforge.spec.jobs import JobSpec
    from flowforge.spec.workflow import Workflow


REBUILDS = ("ingest", "silver", "gold")  # job kinds whose tables a full refresh rebuilds from their sources


def table_inputs(job: JobSpec) -> dict[str, tuple[str, ...]]:
    """Output table → the tables it is built from (per table where the job kind says so)."""
    from flowforge.spec.jobs import GoldJob, SilverJob

    if isinstance(job, SilverJob):
        return {t.target: (t.source,) for t in job.tables}
    if isinstance(job, GoldJob):
        return {t.target: t.references for t in job.tables}
    return {out: job.inputs() for out in job.outputs()}


def plan_refresh(workflow: Workflow, *, full_refresh: bool = False, tables: Sequence[str] | None = None,
                 jobs: Sequence[str] | None = None, force: bool = False) -> tuple[Refresh, list[str] | None]:
    """The run's Refresh and its job selection (None: every job, or ``jobs`` as given)."""
    if tables and not full_refresh:
        raise SpecError("--select names tables to rebuild; it goes with --full-refresh.",
                        hint=f"flowforge run {workflow.name} --full-refresh --select {' '.join(tables)}")
    if not full_refresh:
        return Refresh(force=force), list(jobs) if jobs is not None else None
    built: dict[str, tuple[str, ...]] = {}
    producer: dict[str, str] = {}
    for job in workflow.jobs:
        for out, ins in table_inputs(job).items():
            built[out] = ins
            producer[out] = job.name
    if tables:
        unknown = sorted(set(tables) - set(built))
        if unknown:
            raise SpecError(f"Workflow '{workflow.name}' writes no table(s) {', '.join(unknown)}.",
                            hint=f"Tables: {', '.join(sorted(built))}.")
        other = sorted(t for t in tables if workflow.job(producer[t]).kind not in REBUILDS)
        if other:
            writer = workflow.job(producer[other[0]])
            kind = str(writer.kind)
            hint = (f"A cdc job starts over with 'flowforge cdc reset {workflow.name} {writer.name}'."
                    if kind == "cdc" else f"Run job '{writer.name}' again instead.")
            raise SpecError(f"Table(s) {', '.join(other)} of workflow '{workflow.name}' are written by a "
                            f"{kind} job, which --full-refresh does not rebuild.", hint=hint)
        chosen = set(tables)
    elif jobs:
        chosen = {t for t, j in producer.items() if j in set(jobs)}
    else:
        chosen = set(built)
    grown = True
    while grown:  # everything downstream of a rebuilt table is rebuilt as well
        more = {t for t, ins in built.items() if t not in chosen and set(ins) & chosen}
        grown = bool(more)
        chosen |= more
    selection = sorted({producer[t] for t in chosen} | set(jobs or ()))
    rebuilt = frozenset(t for t in chosen if workflow.job(producer[t]).kind in REBUILDS)
    return Refresh(rebuilt, force=force), selection
