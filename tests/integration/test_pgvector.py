"""pgvector serving on the real PostgreSQL server with the extension built from the shared
source (.ci/run runs ../shared/tools/install-pgvector): upserts, deletes, the HNSW index, and
the same top-k as the embedded search."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.embed_helpers import QUERIES, embed_project, product_table

from flowforge.core.context import Context

pytestmark = pytest.mark.postgres


@pytest.fixture
def vector_db(pg_database: str) -> str:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION vector")
        except psycopg.Error as exc:
            reason = f"pgvector is not installed on this server ({exc}); run ../shared/tools/install-pgvector"
            if os.environ.get("FLOWFORGE_REQUIRE_POSTGRES"):
                pytest.fail(reason)
            pytest.skip(reason)
    return pg_database


def test_pgvector_serves_the_same_top_k_as_the_embedded_search(tmp_path: Path, vector_db: str) -> None:
    serve = "    serve:\n      pgvector: {connection: analytics_pg, table: analytics_features.product_embeddings}\n"
    project = embed_project(tmp_path, connections={"analytics_pg": {"type": "postgres", "url": vector_db}},
                            extra=serve)
    with Context.open(project) as ctx:
        products = product_table()
        ctx.store.overwrite("silver", "silver_products", products, {})
        summary = ctx.run("search")
        assert summary.status == "success", summary.failed
        assert "40 upserted, 0 deleted, HNSW index built" in (ctx.run_detail(summary.run_id).job_runs[0].log or "")
        with psycopg.connect(vector_db) as conn:
            index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'analytics_features' "
                                 "AND tablename = 'product_embeddings' AND indexdef LIKE '%hnsw%'").fetchone()
            assert index is not None and "vector_cosine_ops" in index[0]
            assert conn.execute("SELECT count(*), min(vector_dims(embedding)) FROM "
                                "analytics_features.product_embeddings").fetchone() == (40, 384)
        for query in QUERIES:
            exact = ctx.search.search("silver_products", query, k=5, method="exact")
            served = ctx.search.search("silver_products", query, k=5, method="pgvector")
            assert [h.key for h in served.hits] == [h.key for h in exact.hits], query
            assert [round(h.score, 4) for h in served.hits] == [round(h.score, 4) for h in exact.hits]
            assert served.hits[0].row is not None

        # one text changes, one product goes: PostgreSQL follows with one upsert and one delete
        names = products.column("name").to_pylist()
        names[9] = "Burr grinder for espresso beans"
        changed = products.set_column(1, "name", pa.array(names))
        changed = changed.filter(pc.not_equal(changed.column("id"), 40))
        ctx.store.overwrite("silver", "silver_products", changed, {})
        summary = ctx.run("search")
        assert "1 upserted, 1 deleted" in (ctx.run_detail(summary.run_id).job_runs[0].log or "")
        with psycopg.connect(vector_db) as conn:
            assert conn.execute("SELECT count(*) FROM analytics_features.product_embeddings").fetchone() == (39,)
            assert conn.execute("SELECT text FROM analytics_features.product_embeddings WHERE id = 10"
                                ).fetchone()[0].startswith("Burr grinder for espresso beans")
            # a row lost on the PostgreSQL side (a failed earlier sync, a manual edit) comes back
            conn.execute("DELETE FROM analytics_features.product_embeddings WHERE id = 5")
            conn.commit()
        ctx.store.overwrite("silver", "silver_products", changed, {})  # a new source version, same texts
        summary = ctx.run("search")
        assert "1 upserted, 0 deleted" in (ctx.run_detail(summary.run_id).job_runs[0].log or "")
