"""The ``embed`` executor: one vector per source row, kept in sync incrementally.

Each run reads the source table's newest snapshot, builds every row's text from the template
and hashes it (both in DuckDB). Rows whose hash differs from the stored one (or that are new)
are embedded; keys gone from the source are deleted; upserts and deletes land in one Delta
merge whose commit also records the source version, model and template (``embed_state``). A
different model or key rebuilds the table. With ``serve.pgvector`` the PostgreSQL copy is then
brought to the same state (``flowforge.embed.pgvector``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from flowforge.engine.duckdb_engine import DuckDBEngine
from flowforge.engine.sql import quote
from flowforge.errors import CheckFailed, ConfigError
from flowforge.layers.base import JobContext, JobResult, TableResult, register_executor
from flowforge.spec.embed import EmbedJob

if TYPE_CHECKING:
    import pyarrow as pa

    from flowforge.embed.models import EmbeddingModel

EMBED_STATE = "embed_state"
LAYER = "gold"
META_COLUMNS = ("_text", "_text_hash", "_embedding", "_model", "_model_version", "_source_table",
                "_source_version", "_embedded_at")
_DELETE = "__delete"
PROGRESS_CHUNK = 2048  # texts per progress step


@register_executor("embed")
def run_embed(ctx: JobContext) -> JobResult:
    from flowforge.embed.models import load_model

    job = ctx.job
    assert isinstance(job, EmbedJob)
    found = ctx.store.find(job.source)
    if found is None:
        known = ", ".join(t for _, t in ctx.store.tables()) or "none yet"
        raise ConfigError(f"Embed job {job.name}: source table '{job.source}' is not in the lakehouse "
                          f"(tables: {known}).", hint="Fix 'source', or run the job that writes it first.")
    _, source = found
    source_version = source.version()
    model = load_model(job.model)
    state = _state(job, model, source_version)
    previous = ctx.store.progress(LAYER, job.target, EMBED_STATE)
    existing = ctx.store.open(LAYER, job.target)
    rebuild = existing is None or previous is None or _needs_rebuild(previous[0], state)
    engine = DuckDBEngine()
    try:
        engine.register_delta("__source", source)
        if not rebuild:
            assert existing is not None
            engine.register_delta("__embedded", existing)
        texts_sql = _texts_sql(job, engine.columns("__source"))
        engine.seal()  # the user's 'where' runs below: only the registered tables are readable
        engine.con.execute(f"CREATE TEMP TABLE __texts AS {texts_sql}")
        _check_keys(engine, job)
        rows_in = engine.rows("SELECT count(*) FROM __texts")[0][0]
        keys = ", ".join(quote(k) for k in job.key)
        if rebuild:
            changed = engine.query("SELECT * FROM __texts", f"embed job {job.name}")
            deleted = None
        else:
            changed = engine.query(
                f"SELECT t.* FROM __texts t LEFT JOIN __embedded e USING ({keys}) "
                f"WHERE e._text_hash IS DISTINCT FROM t._text_hash OR e._model_version IS DISTINCT FROM "
                f"'{model.version}'", f"embed job {job.name}")
            deleted = engine.query(f"SELECT {keys} FROM __embedded ANTI JOIN __texts USING ({keys})",
                                   f"embed job {job.name}")
    finally:
        engine.close()
    n_deleted = deleted.num_rows if deleted is not None else 0
    if not rebuild and changed.num_rows == 0 and n_deleted == 0:
        ctx.note(f"{job.target}: up to date with {job.source}@v{source_version} ({rows_in:,} rows)")
        result = TableResult(job.target, LAYER, rows_in, 0, note="up to date")
        _serve(ctx, job, model, full=False)
        return JobResult((result,))
    vectors = _embed(ctx, job, model, changed)
    rows = _rows(changed, vectors, model, job.source, source_version)
    if rebuild:
        why = "first run" if existing is None else "model, key or layout changed: re-embedding every row"
        commit = ctx.store.overwrite(LAYER, job.target, rows, {EMBED_STATE: state})
        written, updated = commit.rows_written, 0
        ctx.note(f"{job.target}: {rows.num_rows:,} rows embedded with {model.name} ({why}), version {commit.version}")
    else:
        assert deleted is not None
        batch = _with_deletes(rows, deleted)
        commit = ctx.store.merge(LAYER, job.target, batch, job.key, {EMBED_STATE: state}, delete_flag=_DELETE)
        written, updated = commit.rows_written, commit.rows_updated
        ctx.note(f"{job.target}: {changed.num_rows:,} of {rows_in:,} rows embedded (text changed or new), "
                 f"{commit.rows_deleted:,} deleted, from {job.source}@v{source_version} (version {commit.version})")
    ctx.mirror.table_committed(table=job.target, layer=LAYER, job=job.name, commit=commit, schema=rows.schema,
                               progress=None)
    _serve(ctx, job, model, full=rebuild)
    return JobResult((TableResult(job.target, LAYER, rows_in, written, rows_updated=updated,
                                  bytes_written=commit.bytes_written, version=commit.version,
                                  note=f"{changed.num_rows} embedded, {n_deleted} deleted"),))


def _state(job: EmbedJob, model: EmbeddingModel, source_version: int) -> dict[str, Any]:
    pg = job.serve.pgvector if job.serve else None
    return {"source": job.source, "source_version": source_version, "key": list(job.key), "text": job.text,
            "where": job.where, "model": model.name, "model_version": model.version, "dimensions": model.dimensions,
            "model_spec": job.model.model_dump(mode="json", exclude_defaults=True),
            "pgvector": {"connection": pg.connection, "table": pg.table} if pg else None}


def _needs_rebuild(previous: dict[str, Any], state: dict[str, Any]) -> bool:
    return any(previous.get(k) != state[k] for k in ("key", "model", "model_version", "dimensions", "source"))


def _texts_sql(job: EmbedJob, columns: list[str]) -> str:
    from sqlglot import exp

    from flowforge.embed.text import template_sql
    from flowforge.embed.where import boolean_expression, check_columns

    where = f"embed job {job.name}: source table {job.source}"
    missing = [k for k in job.key if k not in columns]
    if missing:
        raise ConfigError(f"{where} has no key column(s) {', '.join(missing)} (columns: {', '.join(columns)}).",
                          hint="Fix 'key' in the workflow file.")
    try:
        text = template_sql(job.text, columns)
        condition = None
        if job.where:
            condition = boolean_expression(job.where)
            check_columns(condition, columns, where)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}", hint="Fix 'text' or 'where' in the workflow file.") from None
    keys = ", ".join(quote(k) for k in job.key)
    select = f"SELECT {keys}, {text} AS _text, md5({text}) AS _text_hash FROM __source"
    if condition is not None:
        select += " WHERE " + exp.paren(condition, copy=True).sql(dialect="duckdb")
    return select


def _check_keys(engine: DuckDBEngine, job: EmbedJob) -> None:
    keys = ", ".join(quote(k) for k in job.key)
    nulls = " OR ".join(f"{quote(k)} IS NULL" for k in job.key)
    null_rows = engine.rows(f"SELECT count(*) FROM __texts WHERE {nulls}")[0][0]
    if null_rows:
        raise CheckFailed(f"Embed job {job.name}: {null_rows:,} row(s) of {job.source} have a null key "
                          f"({', '.join(job.key)}); nothing was embedded.",
                          hint="Filter them out with 'where', or fix the source.")
    dup = engine.rows(f"SELECT {keys}, count(*) FROM __texts GROUP BY ALL HAVING count(*) > 1 LIMIT 1")
    if dup:
        raise CheckFailed(f"Embed job {job.name}: key ({', '.join(job.key)}) is not unique in {job.source}: "
                          f"{dup[0][:-1]} appears {dup[0][-1]} times; nothing was embedded.",
                          hint="Embed a table with one row per key (a silver merge or a gold SELECT).")


def _embed(ctx: JobContext, job: EmbedJob, model: EmbeddingModel, changed: pa.Table) -> Any:
    """Vectors for the changed rows, in chunks, reporting progress."""
    import numpy as np

    texts = changed.column("_text").to_pylist()
    total = len(texts)
    out = np.empty((total, model.dimensions), dtype=np.float32)
    start = time.perf_counter()
    next_note = 0.25
    ctx.progress(0, total)
    for begin in range(0, total, PROGRESS_CHUNK):
        chunk = texts[begin:begin + PROGRESS_CHUNK]
        out[begin:begin + len(chunk)] = model.encode(chunk, batch_size=job.batch_size)
        done = begin + len(chunk)
        ctx.progress(done, total)
        if total >= 4 * PROGRESS_CHUNK and done / total >= next_note and done < total:
            rate = done / max(time.perf_counter() - start, 1e-9)
            ctx.note(f"embedded {done:,} of {total:,} texts ({rate:,.0f}/s, about {(total - done) / rate:,.0f}s left)")
            next_note += 0.25
    return out


def _rows(changed: pa.Table, vectors: Any, model: EmbeddingModel, source: str, version: int) -> pa.Table:
    import pyarrow as pa

    n = changed.num_rows
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), model.dimensions)
    now = dt.datetime.now(dt.UTC)
    extra = {
        "_embedding": embedding,
        "_model": pa.array([model.name] * n, pa.string()),
        "_model_version": pa.array([model.version] * n, pa.string()),
        "_source_table": pa.array([source] * n, pa.string()),
        "_source_version": pa.array([version] * n, pa.int64()),
        "_embedded_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
    }
    table = changed
    for name, values in extra.items():
        table = table.append_column(name, values)
    return table


def _with_deletes(rows: pa.Table, deleted: pa.Table) -> pa.Table:
    """Upserted rows and deleted keys in one table, told apart by the ``__delete`` flag."""
    import pyarrow as pa

    upserts = rows.append_column(_DELETE, pa.array([False] * rows.num_rows, pa.bool_()))
    if deleted.num_rows == 0:
        return upserts
    columns = []
    for field in upserts.schema:
        if field.name == _DELETE:
            columns.append(pa.array([True] * deleted.num_rows, pa.bool_()))
        elif field.name in deleted.column_names:
            columns.append(deleted.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(deleted.num_rows, field.type))
    return pa.concat_tables([upserts, pa.Table.from_arrays(columns, schema=upserts.schema)])


def _serve(ctx: JobContext, job: EmbedJob, model: EmbeddingModel, *, full: bool) -> None:
    if job.serve is None or job.serve.pgvector is None:
        return
    from flowforge.embed.pgvector import sync_pgvector

    table = ctx.store.open(LAYER, job.target)
    assert table is not None
    stats = sync_pgvector(ctx.connector(job.serve.pgvector.connection), job.serve.pgvector, table, job.key,
                          model.dimensions)
    ctx.note(f"pgvector {job.serve.pgvector.table}: {stats}")
