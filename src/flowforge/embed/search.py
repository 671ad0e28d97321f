"""Semantic search over embeddings tables, and the provenance of every hit.

``method``:

* ``exact`` — DuckDB's ``array_cosine_similarity`` over every vector of the Delta embeddings
  table (held in an in-memory DuckDB table per table version, so repeated searches in a server
  do not re-read Parquet). No extension, nothing downloaded.
* ``ann`` — the in-memory IVF index (``ivf``), built on first use per table version.
* ``pgvector`` — ``ORDER BY embedding <=> q LIMIT k`` in the PostgreSQL table the embed job
  serves (its HNSW index).
* ``auto`` — ``ann`` from ``ANN_MIN_ROWS`` vectors on (where ``bench/vector_search.py`` showed the
  exact scan leaving the 50 ms budget), ``exact`` below, and always ``exact`` with a filter.

A filter (``where``) is one SQL boolean expression over the source table's columns; it is parsed
with sqlglot, re-rendered from the parse tree and run through ``DuckDBEngine.query``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge.engine.sql import quote
from flowforge.errors import ConfigError, NotFoundError, SpecError, UserCodeError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from deltalake import DeltaTable

    from flowforge.core.context import Context
    from flowforge.embed.ivf import IvfIndex
    from flowforge.engine.duckdb_engine import DuckDBEngine

METHODS = ("auto", "exact", "ann", "pgvector")
ANN_MIN_ROWS = 200_000
MAX_K = 1000


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    key: dict[str, Any]
    text: str
    row: dict[str, Any] | None  # the source row as it is now; None when it was deleted since
    source_table: str
    source_version: int  # the source version whose text the vector encodes
    lineage: tuple[str, ...]  # upstream tables, source first, ending with the source table
    quality: str  # data-quality status of the source table at source_version


@dataclass(frozen=True)
class SearchResult:
    table: str  # the embeddings table
    source_table: str
    source_current_version: int
    embeddings_version: int
    query: str
    method: str
    k: int
    where: str | None
    model: str
    seconds: float
    hits: tuple[Hit, ...]


@dataclass(frozen=True)
class SearchableTable:
    table: str  # embeddings table
    source: str
    rows: int
    version: int
    model: str
    text: str
    pgvector: str | None


@dataclass
class _Loaded:
    """One embeddings table version, loaded for searching."""

    engine: DuckDBEngine
    rows: int
    dims: int
    key: tuple[str, ...]
    lock: threading.Lock = field(default_factory=threading.Lock)
    ivf: IvfIndex | None = None


class SearchService:
    """Reached as ``ctx.search``; keeps loaded tables and ANN indexes between searches."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # loaded tables outlive one request: the Context's views share them
        self._loaded: dict[tuple[str, int], _Loaded] = ctx.shared_cache("search.loaded", dict)
        self._lock: threading.Lock = ctx.shared_cache("search.lock", threading.Lock)

    # -- which tables ------------------------------------------------------------------------
    def tables(self) -> list[SearchableTable]:
        """Every embeddings table in the lakehouse (those an embed job wrote)."""
        from flowforge.layers.embed import LAYER
        from flowforge.storage.delta import row_count

        self.ctx.require("viewer")
        out = []
        for layer, name in self.ctx.store.tables():
            if layer != LAYER:
                continue
            state = self._state(name)
            dt = self.ctx.store.open(layer, name)
            if state is None or dt is None:
                continue
            pg = state.get("pgvector")
            out.append(SearchableTable(name, str(state["source"]), row_count(dt), dt.version(), str(state["model"]),
                                       str(state["text"]), pg["table"] if pg else None))
        return out

    def _state(self, table: str) -> dict[str, Any] | None:
        from flowforge.layers.embed import EMBED_STATE, LAYER

        dt = self.ctx.store.open(LAYER, table)
        if dt is None or "_embedding" not in dt.schema().to_arrow().names:
            return None
        found = self.ctx.store.progress(LAYER, table, EMBED_STATE)
        return found[0] if found else None

    def resolve(self, table: str) -> tuple[str, dict[str, Any]]:
        """The embeddings table for ``table`` (an embeddings table, or the table it embeds)."""
        state = self._state(table)
        if state is not None:
            return table, state
        tables = self.tables()
        for t in tables:
            if t.source == table:
                state = self._state(t.table)
                assert state is not None
                return t.table, state
        known = ", ".join(f"{t.table} (of {t.source})" for t in tables) or "none yet"
        raise NotFoundError(f"No embeddings for table '{table}' (searchable: {known}).",
                            hint="Add an embed job for it to a workflow and run it.")

    # -- search ------------------------------------------------------------------------------
    def search(self, table: str, query: str, *, k: int = 10, where: str | None = None,
               method: str = "auto") -> SearchResult:
        from flowforge.embed.models import load_model
        from flowforge.spec.embed import EmbedModel

        self.ctx.require("viewer")
        if not query.strip():
            raise SpecError("The search text is empty.", hint="Give words to search for.")
        if not 1 <= k <= MAX_K:
            raise SpecError(f"k must be between 1 and {MAX_K}, not {k}.")
        if method not in METHODS:
            raise SpecError(f"Unknown search method '{method}' (methods: {', '.join(METHODS)}).")
        start = time.perf_counter()
        name, state = self.resolve(table)
        model = load_model(EmbedModel(**(state.get("model_spec") or {"name": state["model"]})))
        if model.version != state["model_version"]:
            raise ConfigError(f"The vectors of '{name}' were computed with {state['model']} {state['model_version']}, "
                              f"but the installed model is {model.version}; a search would compare unlike vectors.",
                              hint="Run the embed job again: a new model re-embeds every row.")
        vector = model.encode([query])[0]
        emb = self._embeddings(name)
        loaded = self._load(name, emb, state)
        source = self._source(state)
        allowed = self._filter(loaded, source, state, where) if where else None
        if method == "auto":
            method = "ann" if loaded.rows >= ANN_MIN_ROWS and allowed is None else "exact"
        if method == "pgvector":
            if where:
                raise SpecError("A filter (--where) runs on the embedded search, not on pgvector.",
                                hint="Drop --method pgvector, or the filter.")
            ranked: list[tuple[Any, float]] = list(self._pgvector(state, vector, k))
        elif method == "ann":
            if where:
                raise SpecError("A filter (--where) runs on the exact search.", hint="Use method exact or auto.")
            ranked = list(self._ann(loaded, vector, k))
        else:
            ranked = list(self._exact(loaded, vector, k, allowed))
        hits = self._hits(name, loaded, source, state, ranked)
        return SearchResult(table=name, source_table=str(state["source"]), source_current_version=source.version(),
                            embeddings_version=emb.version(), query=query, method=method, k=k, where=where,
                            model=f"{model.name} ({model.version})", seconds=time.perf_counter() - start,
                            hits=hits)

    def _embeddings(self, name: str) -> DeltaTable:
        from flowforge.layers.embed import LAYER

        dt = self.ctx.store.open(LAYER, name)
        if dt is None:
            raise NotFoundError(f"Embeddings table '{name}' is gone.")
        return dt

    def _source(self, state: dict[str, Any]) -> DeltaTable:
        found = self.ctx.store.find(str(state["source"]))
        if found is None:
            raise NotFoundError(f"The embedded table '{state['source']}' is no longer in the lakehouse.")
        return found[1]

    def _load(self, name: str, dt: DeltaTable, state: dict[str, Any]) -> _Loaded:
        from flowforge.engine.duckdb_engine import DuckDBEngine

        key = (self.ctx.store.location("gold", name), dt.version())
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None:
                return loaded
            for old in [k for k in self._loaded if k[0] == key[0]]:  # an older version of this table
                self._loaded.pop(old).engine.close()
            dims = int(state["dimensions"])
            keys = tuple(state["key"])
            engine = DuckDBEngine()
            engine.register_delta("__emb_delta", dt)
            cols = ", ".join(quote(c) for c in keys)
            engine.con.execute(
                f"CREATE TABLE __emb AS SELECT row_number() OVER () - 1 AS __row, {cols}, _text, _source_version, "
                f"CAST(_embedding AS FLOAT[{dims}]) AS __vector FROM __emb_delta")
            rows = engine.rows("SELECT count(*) FROM __emb")[0][0]
            loaded = self._loaded[key] = _Loaded(engine, int(rows), dims, keys)
            return loaded

    def _filter(self, loaded: _Loaded, source: DeltaTable, state: dict[str, Any], where: str) -> pa.Table:
        """Keys of the source rows the user's filter keeps (run through DuckDBEngine.query)."""
        from flowforge.embed.where import boolean_expression, check_columns
        from flowforge.engine.duckdb_engine import DuckDBEngine

        name = str(state["source"])
        engine = DuckDBEngine()
        try:
            engine.register_delta(name, source)
            try:
                tree = boolean_expression(where)
                check_columns(tree, engine.columns(name), f"table {name}")
            except ValueError as exc:
                raise SpecError(f"Filter '{where}': {exc}.",
                                hint="Write one condition on the table's columns, e.g. \"category_id = 3\".") from None
            from sqlglot import exp

            select = exp.select(*[exp.column(k, quoted=True) for k in loaded.key]).from_(
                exp.to_table(name, quoted=True)).where(tree)
            try:
                return engine.query(select.sql(dialect="duckdb"), f"Filter '{where}'")
            except UserCodeError as exc:
                raise SpecError(exc.message, hint="Write one condition on the table's columns, "
                                                  "e.g. \"category_id = 3\".") from None
        finally:
            engine.close()

    def _exact(self, loaded: _Loaded, vector: np.ndarray, k: int, allowed: pa.Table | None) -> list[tuple[int, float]]:
        score = f"array_cosine_similarity(__vector, CAST(? AS FLOAT[{loaded.dims}]))"
        sql = f"SELECT __row, {score} AS score FROM __emb"
        with loaded.lock:
            if allowed is not None:
                loaded.engine.register_arrow("__allowed", allowed)
                keys = ", ".join(quote(c) for c in loaded.key)
                sql += f" SEMI JOIN __allowed USING ({keys})"
            sql += " ORDER BY score DESC, __row LIMIT ?"
            rows = loaded.engine.con.execute(sql, [vector.tolist(), k]).fetchall()
        return [(int(r), float(s)) for r, s in rows]

    def _ann(self, loaded: _Loaded, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        from flowforge.embed.ivf import IvfIndex

        with loaded.lock:
            if loaded.ivf is None:
                loaded.ivf = IvfIndex.build(vectors_of(loaded))
            rows, scores = loaded.ivf.search(vector, k)
        return [(int(r), float(s)) for r, s in zip(rows, scores, strict=True)]

    def _pgvector(self, state: dict[str, Any], vector: np.ndarray, k: int) -> list[tuple[dict[str, Any], float]]:
        from flowforge.embed.pgvector import nearest

        pg = state.get("pgvector")
        if not pg:
            raise ConfigError(f"The embed job of '{state['source']}' does not serve its vectors from pgvector.",
                              hint="Add serve: {pgvector: {connection: ..., table: ...}} to the job, or use "
                                   "method exact or ann.")
        config = self.ctx.connection_config(pg["connection"])
        return nearest(config, pg["table"], tuple(state["key"]), vector, k)

    # -- hits -----------------------------------------------------------------------------------
    def _hits(self, name: str, loaded: _Loaded, source: DeltaTable, state: dict[str, Any],
              ranked: list[tuple[Any, float]]) -> tuple[Hit, ...]:
        import pyarrow as pa

        from flowforge.core.catalog import json_safe

        if not ranked:
            return ()
        keys = loaded.key
        cols = ", ".join(quote(c) for c in keys)
        with loaded.lock:
            if isinstance(ranked[0][0], dict):  # pgvector answers with keys
                wanted = pa.Table.from_pylist([r for r, _ in ranked])
                loaded.engine.register_arrow("__wanted", wanted)
                found = loaded.engine.arrow(f"SELECT e.* EXCLUDE (__vector) FROM __emb e SEMI JOIN __wanted "
                                            f"USING ({cols})").to_pylist()
                by_key = {tuple(r[c] for c in keys): r for r in found}
                meta = [by_key.get(tuple(r[c] for c in keys)) for r, _ in ranked]
            else:
                wanted = pa.table({"__row": [r for r, _ in ranked]})
                loaded.engine.register_arrow("__wanted", wanted)
                found = loaded.engine.arrow("SELECT e.* EXCLUDE (__vector) FROM __emb e SEMI JOIN __wanted "
                                            "USING (__row)").to_pylist()
                by_row = {r["__row"]: r for r in found}
                meta = [by_row.get(r) for r, _ in ranked]
            present = [m for m in meta if m is not None]
            loaded.engine.register_delta("__source_now", source)
            loaded.engine.register_arrow("__hit_keys", pa.Table.from_pylist([{c: m[c] for c in keys} for m in present]))
            rows = loaded.engine.arrow(f"SELECT * FROM __source_now SEMI JOIN __hit_keys USING ({cols})").to_pylist()
        current = {tuple(r[c] for c in keys): r for r in rows}
        lineage = lineage_path(self.ctx, name)
        table = str(state["source"])
        hits = []
        for rank, (m, (_, score)) in enumerate(((m, r) for m, r in zip(meta, ranked, strict=True) if m is not None),
                                               start=1):
            key = tuple(m[c] for c in keys)
            version = int(m["_source_version"])
            row = current.get(key)
            hits.append(Hit(rank=rank, score=round(score, 6), key={c: json_safe(m[c]) for c in keys},
                            text=str(m["_text"]), row={k: json_safe(v) for k, v in row.items()} if row else None,
                            source_table=table, source_version=version, lineage=lineage,
                            quality=dq_status(self.ctx, table, version)))
        return tuple(hits)


def vectors_of(loaded: _Loaded) -> np.ndarray:
    """The loaded vectors as one (rows, dims) float32 matrix, row i = ``__row`` i."""
    import numpy as np

    table = loaded.engine.arrow("SELECT __vector FROM __emb ORDER BY __row")
    column = table.column(0).combine_chunks()
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, loaded.dims)


def lineage_path(ctx: Context, table: str) -> tuple[str, ...]:
    """Tables upstream of ``table`` (nearest last), from the lineage of the workflow that wrote it."""
    asset = ctx.metadata.get_asset(table)
    if asset is None or not asset.workflow_name:
        return ()
    try:
        edges = ctx.metadata.lineage(asset.workflow_name)
    except Exception:  # the workflow was deleted since: no lineage to show
        return ()
    parents: dict[str, list[str]] = {}
    for e in edges:
        parents.setdefault(e.target, []).append(e.source)
    path: list[str] = []
    frontier = [table]
    seen = {table}
    while frontier:
        step = []
        for node in frontier:
            for parent in parents.get(node, []):
                if parent not in seen:
                    seen.add(parent)
                    step.append(parent)
        path = step + path
        frontier = step
    return tuple(path)


def dq_status(ctx: Context, table: str, version: int) -> str:
    """The data-quality status of ``table`` at Delta ``version`` (``ctx.quality.status_at``)."""
    return str(ctx.quality.status_at(table, version))
