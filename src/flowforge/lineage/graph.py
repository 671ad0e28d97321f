"""Table lineage from a workflow spec, and the node/edge graph the UI and API show."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowforge.spec.jobs import IngestJob

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata import LineageEdgeIn
    from flowforge.spec.workflow import Workflow


def source_node(connection: str, what: str) -> str:
    return f"source:{connection}.{what}"


def table_edges(wf: Workflow, label: Callable[[str], str] | None = None) -> list[LineageEdgeIn]:
    from flowforge.metadata import LineageEdgeIn

    edges = []
    for job in wf.jobs:
        if isinstance(job, IngestJob):
            for t in job.tables:
                edges.append(LineageEdgeIn(source=source_node(job.connection, t.table or t.files or "query"),
                                           target=t.target))
        elif hasattr(job, "lineage_pairs"):  # job kinds that state their own table edges (cdc)
            edges.extend(LineageEdgeIn(source=s, target=t) for s, t in job.lineage_pairs(source_node))
        else:
            for target in job.outputs():
                spec = next(s for s in job.tables if s.target == target)
                reads = (spec.source,) if hasattr(spec, "source") else spec.references
                edges.extend(LineageEdgeIn(source=src, target=target) for src in reads)
    return edges


def lineage_graph(ctx: Context, workflow: str) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}`` with layer, row count and last update per node."""
    return named_lineage_graph(ctx, workflow)[1]


def named_lineage_graph(ctx: Context, workflow: str) -> tuple[str, dict[str, Any]]:
    """The workflow's name (given its name or numeric id) and its ``lineage_graph``, from one read of the store."""
    found = ctx.metadata.pages.lineage(workflow)
    if found is None:
        from flowforge.errors import ConfigError

        raise ConfigError(f"Workflow '{workflow}' has not run or been registered yet.",
                          hint=f"Run it once: flowforge run {workflow}")
    edges = found.edges
    names = list(dict.fromkeys([e.source for e in edges] + [e.target for e in edges]))
    spec: Workflow | None = None
    nodes: list[dict[str, Any]] = []
    for name in names:
        if name.startswith("source:"):
            nodes.append({"id": name, "type": "source", "label": name.removeprefix("source:"), "layer": None,
                          "rows": None, "last_updated": None, "location": None})
            continue
        asset = found.assets.get(name)
        if asset is None and spec is None:  # a table not built yet: its layer comes from the spec
            from flowforge.core.spec_cache import spec_cache

            record = ctx.metadata.get_workflow(found.workflow)
            spec = spec_cache(ctx).registered(record.spec) if record is not None else None
        nodes.append({
            "id": name, "type": asset.layer if asset else "table", "label": name,
            "layer": asset.layer if asset else spec.layer_of(name) if spec else None,
            "rows": asset.row_count if asset else None,
            "last_updated": asset.last_updated.isoformat() if asset and asset.last_updated else None,
            "location": asset.location if asset else None,
        })
    return found.workflow, {"nodes": nodes, "edges": [{"source": e.source, "target": e.target} for e in edges]}
