"""The job graph: edges come from the tables jobs read and write, plus explicit depends_on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowforge.errors import SpecError

if TYPE_CHECKING:
    from flowforge.spec.workflow import Workflow


def upstream(workflow: Workflow) -> dict[str, set[str]]:
    """Job name → the jobs it waits for."""
    producers = workflow.producers()
    deps: dict[str, set[str]] = {}
    for job in workflow.jobs:
        wanted = {producers[t] for t in job.inputs() if t in producers} | set(job.depends_on)
        wanted.discard(job.name)
        deps[job.name] = wanted
    return deps


def job_order(workflow: Workflow) -> list[str]:
    """Jobs in dependency order; ties keep the order of the file (Kahn's algorithm)."""
    deps = upstream(workflow)
    order: list[str] = []
    placed: set[str] = set()
    names = [j.name for j in workflow.jobs]
    while len(order) < len(names):
        ready = [n for n in names if n not in placed and deps[n] <= placed]
        if not ready:
            cycle = _cycle(deps, [n for n in names if n not in placed])
            raise SpecError(f"workflow '{workflow.name}': jobs depend on each other in a cycle: "
                            f"{' → '.join(cycle)}",
                            hint="A job waits for the jobs that write the tables it reads, and for its depends_on; "
                                 "remove one of these dependencies.")
        order.extend(ready)
        placed.update(ready)
    return order


def _cycle(deps: dict[str, set[str]], left: list[str]) -> list[str]:
    """One cycle among the jobs that could not be placed, as a path that returns to its start."""
    path: list[str] = []
    node = left[0]
    while node not in path:
        path.append(node)
        node = sorted(d for d in deps[node] if d in left)[0]  # every unplaced job waits for an unplaced one
    return [*path[path.index(node):], node][::-1]


def downstream_closure(workflow: Workflow, job: str) -> set[str]:
    """Every job that (transitively) waits for ``job``."""
    deps = upstream(workflow)
    out: set[str] = set()
    frontier = {job}
    while frontier:
        nxt = {n for n, ups in deps.items() if ups & frontier and n not in out}
        out |= nxt
        frontier = nxt
    return out
