"""Column lineage as the CLI, API and UI ask for it: one column's upstream and downstream columns, across
every registered workflow (a gold table of one workflow may read the silver table of another).

Edges come from ``lineage.columns`` over the workflows' specs and the catalog's schemas; they are
recomputed only when a workflow or a table's version changes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flowforge.errors import NotFoundError
from flowforge.lineage.columns import WHOLE, ColumnEdge, ColumnRef, trace, workflow_column_edges

if TYPE_CHECKING:
    from flowforge.core.context import Context

_CACHE: dict[str, tuple[Any, list[ColumnEdge]]] = {}
_LOCK = threading.Lock()
LAYER_PREFIXES = ("bronze_", "silver_", "gold_", "stg_", "dim_", "fact_", "mart_")


def display(table: str) -> str:
    return table.removeprefix("source:").removeprefix("sink:")


def node_kind(table: str) -> str:
    return "source" if table.startswith("source:") else "sink" if table.startswith("sink:") else "table"


class LineageService:
    """Reads need the viewer role."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- edges ----------------------------------------------------------------------------------
    def edges(self, workflow: str | None = None) -> list[ColumnEdge]:
        """Every column edge (of one workflow, or of all registered workflows)."""
        self.ctx.require("viewer")
        return [e for e in self._all() if workflow is None or e.workflow == workflow]

    def _all(self) -> list[ColumnEdge]:
        from flowforge.spec.workflow import Workflow

        metadata = self.ctx.metadata
        records = metadata.list_workflows()
        assets = metadata.list_assets()
        key = (tuple((w.name, w.updated_at) for w in records),
               tuple((a.table_name, a.delta_version, len(a.schema)) for a in assets))
        cache_key = self.ctx.settings.metadata_database_url
        with _LOCK:
            hit = _CACHE.get(cache_key)
            if hit is not None and hit[0] == key:
                return hit[1]
        schemas = {a.table_name: [str(c["name"]) for c in a.schema] for a in assets}
        edges: list[ColumnEdge] = []
        for record in records:
            try:
                wf = Workflow.model_validate(record.spec)
            except ValueError:
                continue  # a spec written by an older FlowForge: its table lineage still shows
            edges.extend(workflow_column_edges(wf, schemas.get))
        with _LOCK:
            _CACHE[cache_key] = (key, edges)
        return edges

    # -- one table / one column -----------------------------------------------------------------
    def resolve(self, table: str, edges: list[ColumnEdge] | None = None) -> str:
        """The node name of ``table``: a lakehouse table, ``connection.table`` of a source, a sink, or the
        name without its layer prefix (``customer_360`` for ``gold_customer_360``) when that is unique."""
        edges = self._all() if edges is None else edges
        known = {n for e in edges for n in (e.source.table, e.target.table)}
        known |= {a.table_name for a in self.ctx.metadata.list_assets()}
        for candidate in (table, f"source:{table}", f"sink:{table}"):
            if candidate in known:
                return candidate
        short = [n for n in known if node_kind(n) == "table" and any(
            n == p + table for p in LAYER_PREFIXES)]
        if len(short) == 1:
            return short[0]
        near = sorted(short) or sorted(display(n) for n in known if table.lower() in n.lower())[:10]
        raise NotFoundError(f"No table '{table}' in the lineage of any workflow.",
                            hint=f"Did you mean {', '.join(near)}?" if near else
                            "Run the workflow that writes it once, then ask again ('flowforge catalog').")

    def columns(self, table: str, column: str | None = None, *, indirect: bool = False) -> dict[str, Any]:
        """Upstream and downstream columns of ``table.column`` (every hop, nearest first); without a
        column, each column of the table with its direct inputs and outputs."""
        self.ctx.require("viewer")
        edges = self._all()
        node = self.resolve(table, edges)
        cols = self._columns_of(node, edges)
        base = {"table": display(node), "node": node, "kind": node_kind(node),
                "workflow": next((e.workflow for e in edges if node in (e.target.table, e.source.table)),
                                 None), "columns": cols}
        if column is None:
            return {**base, "column": None, "edges": [_edge(e) for e in edges
                                                       if node in (e.source.table, e.target.table)]}
        match = next((c for c in cols if c == column), None) or next(
            (c for c in cols if c.lower() == column.lower()), None)
        if match is None:
            raise NotFoundError(f"Table '{display(node)}' has no column '{column}' in its lineage.",
                                hint=f"Columns: {', '.join(cols) or 'none known yet (run its workflow once)'}.")
        start = ColumnRef(node, match)
        up = trace(edges, start, "upstream")
        down = trace(edges, start, "downstream")
        result = {**base, "column": match,
                  "upstream": [_hop(e, d, e.source) for e, d in up],
                  "downstream": [_hop(e, d, e.target) for e, d in down]}
        if indirect:
            tables = {node} | {e.source.table for e, _ in up} | {e.target.table for e, _ in down}
            result["indirect"] = [_edge(e) for e in edges
                                  if e.type == "INDIRECT" and e.target.table in tables]
        return result

    def graph(self, workflow: str) -> dict[str, Any]:
        """The column graph of one workflow's tables, for the lineage page: tables with their columns,
        and the direct column edges between them."""
        self.ctx.require("viewer")
        edges = self._all()
        mine = [e for e in edges if e.workflow == workflow and e.type == "DIRECT"]
        tables: dict[str, dict[str, None]] = {}
        for e in mine:
            tables.setdefault(e.source.table, {})[e.source.column] = None
            tables.setdefault(e.target.table, {})[e.target.column] = None
        return {"workflow": workflow,
                "tables": [{"node": t, "table": display(t), "kind": node_kind(t), "columns": list(c)}
                           for t, c in tables.items()],
                "edges": [_edge(e) for e in mine]}

    def _columns_of(self, node: str, edges: list[ColumnEdge]) -> list[str]:
        asset = self.ctx.metadata.get_asset(node) if node_kind(node) == "table" else None
        cols = [str(c["name"]) for c in asset.schema] if asset else []
        for e in edges:
            for ref in (e.source, e.target):
                if ref.table == node and ref.column != WHOLE and ref.column not in cols:
                    cols.append(ref.column)
        return cols


def _hop(e: ColumnEdge, depth: int, ref: ColumnRef) -> dict[str, Any]:
    return {"table": display(ref.table), "node": ref.table, "kind": node_kind(ref.table), "column": ref.column,
            "depth": depth, "job": e.job, "workflow": e.workflow, "subtype": e.subtype,
            "description": e.description,
            "via": {"source": str(e.source), "target": str(e.target)}}


def _edge(e: ColumnEdge) -> dict[str, Any]:
    return {**e.as_dict(),
            "source": {"table": display(e.source.table), "node": e.source.table, "column": e.source.column},
            "target": {"table": display(e.target.table), "node": e.target.table, "column": e.target.column}}
