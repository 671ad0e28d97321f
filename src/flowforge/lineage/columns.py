"""Column lineage: which input columns each column of each table comes from, for every job kind.

Derived from the spec and the tables' schemas (the catalog's, once a table was written):

* **ingest** lands each source column one to one (``core_banking.accounts.balance`` → ``bronze_…balance``);
* **silver** keeps bronze columns, casts (``CAST AS type``), derived columns (their SQL, parsed with
  sqlglot), the surrogate key (a hash of the keys) and the SCD2 validity columns;
* **gold** is its SQL, traced with sqlglot's lineage (stars and ``EXCLUDE`` expanded from the schemas);
* **cdc** lands the change-event envelope in bronze (``_after.<field>`` ← ``after.<field>``) and maps
  each payload field to the silver column of that name;
* **embed** keeps its keys and embeds the template's fields; **publish** and **export** copy the
  columns they carry into warehouse tables and files (``sink:`` nodes).

A node is ``(table, column)``; sources are ``source:<connection>.<what>`` and sinks ``sink:<where>``,
as in the table lineage. Each edge says how: ``DIRECT`` (IDENTITY, TRANSFORMATION, AGGREGATION) or
``INDIRECT`` (the keys a silver table deduplicates on, the join and filter columns of gold SQL: their
target column is ``*``, the whole table), as OpenLineage's ColumnLineage facet names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowforge.spec.jobs import AUDIT_COLUMNS, GoldJob, GoldTable, IngestJob, JobSpec, SilverJob, SilverTable

if TYPE_CHECKING:
    from flowforge.spec.workflow import Workflow

log = logging.getLogger("flowforge.lineage")

Schemas = Callable[[str], Sequence[str] | None]
"""Table name → its column names, or None when the table's schema is not known yet."""

WHOLE = "*"  # the target column of INDIRECT edges: they shape the whole table (joins, filters, keys)
# CDC envelope fields that land in bronze under FlowForge's names
CDC_ENVELOPE = {"_op": "op", "_before": "before", "_after": "after", "_key": "key", "_schema": "schema",
                "_source_ts": "source.ts_ms", "_table": "source.table", "_source_position": "source.position"}
CDC_META = {"_op": "_op", "_position": "_source_position", "_source_ts": "_source_ts"}


@dataclass(frozen=True, order=True)
class ColumnRef:
    table: str
    column: str

    def __str__(self) -> str:
        return f"{self.table.removeprefix('source:').removeprefix('sink:')}.{self.column}"


@dataclass(frozen=True)
class ColumnEdge:
    source: ColumnRef
    target: ColumnRef
    job: str
    type: str = "DIRECT"  # DIRECT | INDIRECT
    subtype: str = "IDENTITY"  # IDENTITY | TRANSFORMATION | AGGREGATION | JOIN | FILTER | GROUP_BY | SORT
    description: str = ""
    masking: bool = False
    workflow: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"source": {"table": self.source.table, "column": self.source.column},
                "target": {"table": self.target.table, "column": self.target.column}, "job": self.job,
                "type": self.type, "subtype": self.subtype, "description": self.description,
                "masking": self.masking, "workflow": self.workflow}


def source_node(connection: str, what: str) -> str:
    return f"source:{connection}.{what}"


def ingest_source(job: IngestJob, table: Any) -> str:
    return source_node(job.connection, table.table or table.files or "query")


def workflow_column_edges(wf: Workflow, schemas: Schemas) -> list[ColumnEdge]:
    """Every column edge of every job of ``wf`` (jobs whose schemas are unknown give what they can)."""
    from dataclasses import replace

    return [replace(e, workflow=wf.name) for job in wf.jobs for e in job_column_edges(job, schemas)]


def job_column_edges(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    """The column edges of one job; never raises for SQL it cannot trace (that table gets no edges)."""
    builder = _BUILDERS.get(job.kind)
    if builder is None:
        return []
    try:
        return builder(job, schemas)
    except Exception as exc:  # lineage is information: a job it cannot trace still runs and shows its tables
        log.debug("column lineage of job %s: %s", job.name, exc)
        return []


_MEMO: dict[tuple[str, tuple[tuple[str, tuple[str, ...] | None], ...]], list[ColumnEdge]] = {}


def cached_job_column_edges(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    """``job_column_edges`` remembered per job spec and schemas of the tables it touches: a workflow that
    runs again unchanged does not trace its SQL again."""
    tables = sorted({*job.inputs(), *job.outputs(), *(str(getattr(t, "target", "")) for t in getattr(
        job, "tables", ()))} - {""})
    key = (job.model_dump_json(), tuple((t, tuple(cols) if (cols := schemas(t)) is not None else None)
                                        for t in tables))
    found = _MEMO.get(key)
    if found is None:
        if len(_MEMO) > 512:
            _MEMO.clear()
        found = _MEMO[key] = job_column_edges(job, schemas)
    return list(found)


# -- ingest --------------------------------------------------------------------------------------
def _ingest(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    assert isinstance(job, IngestJob)
    edges = []
    for t in job.tables:
        src = ingest_source(job, t)
        traced = query_columns(t.query) if t.query else {}
        for col in schemas(t.target) or ():
            if col in AUDIT_COLUMNS:
                continue
            origins = traced.get(col.lower())
            if not origins:  # a table, files, or a query column it cannot trace: one to one
                edges.append(ColumnEdge(ColumnRef(src, col), ColumnRef(t.target, col), job.name))
            edges += [ColumnEdge(ColumnRef(source_node(job.connection, table), column), ColumnRef(t.target, col),
                                 job.name, "DIRECT", subtype, text) for table, column, subtype, text in origins or ()]
    return edges


def query_tables(sql: str) -> list[str]:
    """The source tables a source query reads (``schema.table`` as written), or [] if it does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql)
    except Exception:  # a dialect sqlglot does not read: the query stays one dataset
        return []
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    names = [".".join(p for p in (t.catalog, t.db, t.name) if p) for t in tree.find_all(exp.Table)
             if t.name.lower() not in ctes]
    return list(dict.fromkeys(names))


def query_columns(sql: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """Output column (lower case) → (source table, column, subtype, expression) of a source query."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    try:
        roots = lineage(None, sql, schema={})
    except Exception:  # unparseable, or stars over tables whose columns only the source knows
        return {}
    assert isinstance(roots, dict)
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, root in roots.items():
        for leaf, subtype in _leaves(root, exp):
            if not isinstance(leaf.source, exp.Table):
                continue
            table = ".".join(p for p in (leaf.source.catalog, leaf.source.db, leaf.source.name) if p)
            column = leaf.name.rsplit(".", 1)[-1]
            if column != "*":
                text = root.expression.sql() if subtype != "IDENTITY" else ""
                out.setdefault(name.lower(), []).append((table, column, subtype, text[:500]))
    return out


# -- silver --------------------------------------------------------------------------------------
def _silver(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    assert isinstance(job, SilverJob)
    return [e for t in job.tables for e in silver_table_edges(t, schemas, job.name)]


def silver_columns(spec: SilverTable, bronze: Sequence[str]) -> list[str]:
    """The columns a silver table gets from its bronze columns and spec (before its first run)."""
    base = list(spec.columns) if spec.columns else [c for c in bronze if c not in AUDIT_COLUMNS]
    base += [c for c in spec.casts if c not in base]
    cols = ([spec.surrogate_key] if spec.surrogate_key else []) + base + list(spec.derived)
    if spec.strategy == "scd2":
        cols += [spec.valid_from, spec.valid_to, spec.is_current]
    return cols


def silver_table_edges(spec: SilverTable, schemas: Schemas, job: str) -> list[ColumnEdge]:
    bronze = list(schemas(spec.source) or ())
    if not bronze:
        return []
    have = {c.lower(): c for c in bronze}
    target = list(schemas(spec.target) or silver_columns(spec, bronze))
    edges: list[ColumnEdge] = []

    def edge(src: str, col: str, subtype: str = "IDENTITY", description: str = "", kind: str = "DIRECT",
             masking: bool = False) -> None:
        if src.lower() in have:
            edges.append(ColumnEdge(ColumnRef(spec.source, have[src.lower()]), ColumnRef(spec.target, col), job,
                                    kind, subtype, description, masking))

    changed = spec.changed_at or spec.order_by
    for col in target:
        if col in spec.derived:
            for ref in expression_columns(spec.derived[col]):
                edge(ref, col, "TRANSFORMATION", spec.derived[col])
        elif col == spec.surrogate_key:
            for key in spec.keys:
                edge(key, col, "TRANSFORMATION", f"md5 of {', '.join(spec.keys)}", masking=True)
        elif col in spec.casts:
            edge(col, col, "TRANSFORMATION", f"CAST AS {spec.casts[col]}")
        elif spec.strategy == "scd2" and col in (spec.valid_from, spec.valid_to) and changed:
            edge(changed, col, "TRANSFORMATION", f"version {'start' if col == spec.valid_from else 'end'} "
                                                 f"from {changed}")
        elif col.lower() in have and col != "_batch_id":
            edge(col, col)
    # the whole table depends on the keys it deduplicates on and the column that orders versions
    for key in spec.keys:
        edge(key, WHOLE, "GROUP_BY", "latest row per key", kind="INDIRECT")
    if spec.order_by:
        edge(spec.order_by, WHOLE, "SORT", "latest row per key", kind="INDIRECT")
    return edges


def expression_columns(sql: str) -> list[str]:
    """Column names a SQL expression reads (a derived column's inputs)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column)))


# -- gold ----------------------------------------------------------------------------------------
def _gold(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    assert isinstance(job, GoldJob)
    edges: list[ColumnEdge] = []
    for t in job.tables:
        try:
            edges.extend(gold_table_edges(t, schemas, job.name))
        except Exception as exc:
            log.debug("column lineage of %s: %s", t.target, exc)
    return edges


def gold_table_edges(spec: GoldTable, schemas: Schemas, job: str) -> list[ColumnEdge]:
    """Trace each output column of a gold table's SQL to the columns of the tables it reads."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    refs = spec.references
    schema: dict[str, dict[str, str]] = {}
    names: dict[str, dict[str, str]] = {}
    for ref in refs:
        cols = schemas(ref)
        if cols is None:
            continue
        schema[ref] = dict.fromkeys(cols, "TEXT")
        names[ref.lower()] = {c.lower(): c for c in cols}
    roots = lineage(None, spec.sql, schema=schema, dialect="duckdb")
    assert isinstance(roots, dict)
    out = {c.lower(): c for c in schemas(spec.target) or ()}
    edges: list[ColumnEdge] = []
    seen: set[tuple[str, str, str]] = set()
    for name, root in roots.items():
        if name == "*":  # a star over a table whose schema is unknown: nothing to say per column yet
            continue
        target = ColumnRef(spec.target, out.get(name.lower(), name))
        for leaf, subtype in _leaves(root, exp):
            table = leaf.source.name if isinstance(leaf.source, exp.Table) else ""
            column = leaf.name.rsplit(".", 1)[-1]
            if column == "*":
                continue
            real = names.get(table.lower(), {})
            origin = ColumnRef(next((r for r in refs if r.lower() == table.lower()), table),
                               real.get(column.lower(), column))
            if (origin.table, origin.column, target.column) in seen:
                continue
            seen.add((origin.table, origin.column, target.column))
            text = root.expression.sql(dialect="duckdb") if subtype != "IDENTITY" else ""
            edges.append(ColumnEdge(origin, target, job, "DIRECT", subtype, text[:500]))
    edges.extend(_gold_indirect(spec, schema, names, job))
    return edges


def _leaves(root: Any, exp: Any) -> Iterable[tuple[Any, str]]:
    """(leaf node, subtype) pairs: AGGREGATION if an aggregate lies on the path, IDENTITY if every step is
    a plain column, else TRANSFORMATION."""
    stack = [(root, "IDENTITY")]
    while stack:
        node, subtype = stack.pop()
        if isinstance(node.expression, exp.Table):
            yield node, subtype
            continue
        inner = node.expression.this if isinstance(node.expression, exp.Alias) else node.expression
        if subtype != "AGGREGATION":
            if inner.find(exp.AggFunc) is not None:
                subtype = "AGGREGATION"
            elif not isinstance(inner, exp.Column):
                subtype = "TRANSFORMATION"
        stack.extend((child, subtype) for child in node.downstream)


def _gold_indirect(spec: GoldTable, schema: dict[str, dict[str, str]], names: dict[str, dict[str, str]],
                   job: str) -> list[ColumnEdge]:
    """Columns of the read tables used to join, filter or group: they shape every output row."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    known: dict[str, object] = dict(schema)
    tree = qualify(sqlglot.parse_one(spec.sql, read="duckdb"), schema=known, dialect="duckdb",
                   validate_qualify_columns=False)
    root = build_scope(tree)
    if root is None:
        return []
    found: dict[tuple[str, str], str] = {}
    for scope in root.traverse():
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        parts: list[tuple[str, Any]] = [("FILTER", select.args.get("where")), ("GROUP_BY", select.args.get("group")),
                                        ("FILTER", select.args.get("having"))]
        parts += [("JOIN", j.args.get("on")) for j in select.args.get("joins") or ()]
        for subtype, node in parts:
            if node is None:
                continue
            for col in node.find_all(exp.Column):
                source = scope.sources.get(col.table)
                if isinstance(source, exp.Table) and source.name.lower() in names:
                    real = names[source.name.lower()]
                    table = next(r for r in spec.references if r.lower() == source.name.lower())
                    found.setdefault((table, real.get(col.name.lower(), col.name)), subtype)
    whole = ColumnRef(spec.target, WHOLE)
    return [ColumnEdge(ColumnRef(t, c), whole, job, "INDIRECT", sub, "") for (t, c), sub in sorted(found.items())]


# -- cdc, embed, publish, export ----------------------------------------------------------------
def _cdc(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    from flowforge.layers.cdc_sql import META_COLUMNS
    from flowforge.spec.cdc import CdcJob

    assert isinstance(job, CdcJob)
    stream = source_node(job.connection, job.files or "events")
    edges = [ColumnEdge(ColumnRef(stream, field), ColumnRef(job.target, col), job.name)
             for col, field in CDC_ENVELOPE.items() if col in (schemas(job.target) or CDC_ENVELOPE)]
    fields: dict[str, None] = {}
    for t in job.tables:
        cols = schemas(t.target) or ()
        for col in cols:
            if col in CDC_META:
                edges.append(ColumnEdge(ColumnRef(job.target, CDC_META[col]), ColumnRef(t.target, col), job.name))
            elif col not in META_COLUMNS:
                fields[col] = None
                cast = t.casts.get(col)
                edges.append(ColumnEdge(ColumnRef(job.target, f"_after.{col}"), ColumnRef(t.target, col), job.name,
                                        subtype="TRANSFORMATION" if cast else "IDENTITY",
                                        description=f"payload field {col}" + (f", CAST AS {cast}" if cast else "")))
    edges += [ColumnEdge(ColumnRef(stream, f"after.{f}"), ColumnRef(job.target, f"_after.{f}"), job.name)
              for f in fields]
    return edges


def _embed(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    from flowforge.embed.text import template_fields
    from flowforge.spec.embed import EmbedJob

    assert isinstance(job, EmbedJob)
    edges = [ColumnEdge(ColumnRef(job.source, k), ColumnRef(job.target, k), job.name) for k in job.key]
    for field in template_fields(job.text):
        edges += [ColumnEdge(ColumnRef(job.source, field), ColumnRef(job.target, out), job.name, "DIRECT",
                             "TRANSFORMATION", what, masking=out != "_text")
                  for out, what in (("_text", job.text), ("_text_hash", "md5 of the text"),
                                    ("_embedding", f"{job.model.name} embedding of the text"))]
    if job.serve and job.serve.pgvector:
        pg = job.serve.pgvector
        sink = f"sink:{pg.connection}.{pg.table}"
        edges += [ColumnEdge(ColumnRef(job.target, c), ColumnRef(sink, c), job.name)
                  for c in (*job.key, "_embedding")]
    return edges


def _publish(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    from flowforge.spec.publish import PublishJob

    assert isinstance(job, PublishJob)
    return [ColumnEdge(ColumnRef(t.table, c), ColumnRef(f"sink:{job.connection}.{job.target_schema}.{t.name}", c),
                       job.name) for t in job.tables for c in schemas(t.table) or ()]


def _export(job: JobSpec, schemas: Schemas) -> list[ColumnEdge]:
    from flowforge.spec.export import LAYER_NAMES, ExportJob

    assert isinstance(job, ExportJob)
    if job.source not in LAYER_NAMES:
        return []  # a connection's tables: their columns are the source's, not lakehouse columns
    return [ColumnEdge(ColumnRef(t, c), ColumnRef(f"sink:{job.to.rstrip('/')}/{t}", c), job.name)
            for t in job.tables for c in schemas(t) or ()]


_BUILDERS: dict[str, Callable[[JobSpec, Schemas], list[ColumnEdge]]] = {
    "ingest": _ingest, "silver": _silver, "gold": _gold, "cdc": _cdc, "embed": _embed, "publish": _publish,
    "export": _export,
}


# -- walking the graph ---------------------------------------------------------------------------
def trace(edges: Sequence[ColumnEdge], start: ColumnRef, direction: str, *,
          direct_only: bool = True) -> list[tuple[ColumnEdge, int]]:
    """Edges reached from ``start`` upstream or downstream, with their distance (1 = adjacent)."""
    follow = [e for e in edges if e.type == "DIRECT" or not direct_only]
    index: dict[ColumnRef, list[ColumnEdge]] = {}
    for e in follow:
        index.setdefault(e.target if direction == "upstream" else e.source, []).append(e)
    out: list[tuple[ColumnEdge, int]] = []
    seen = {start}
    frontier = [start]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for ref in frontier:
            for e in index.get(ref, ()):
                out.append((e, depth))
                other = e.source if direction == "upstream" else e.target
                if other not in seen:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return out
