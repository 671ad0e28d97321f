"""The embed job end to end on a real lakehouse: incremental re-embedding, deletes, model
changes, key checks, and search with filters and provenance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.embed_helpers import embed_project, product_table

from flowforge.core.context import Context
from flowforge.errors import SpecError


def _catalog(n: int) -> pa.Table:
    kinds = ["kettle", "boots", "tent", "headphones", "desk lamp", "garden hose", "sweater", "blender"]
    return pa.table({"id": pa.array(range(1, n + 1), pa.int64()),
                     "name": [f"{kinds[i % len(kinds)]} model {i}" for i in range(n)],
                     "description": [f"item {i} of the {kinds[i % len(kinds)]} range" for i in range(n)],
                     "category": [kinds[i % len(kinds)] for i in range(n)],
                     "price": pa.array([float(i % 90) for i in range(n)], pa.float64())})


def _run(ctx: Context) -> str:
    summary = ctx.run("search")
    assert summary.status == "success", summary.failed
    return ctx.run_detail(summary.run_id).job_runs[0].log or ""


def _vectors(ctx: Context) -> pa.Table:
    return ctx.query("SELECT id, _text, _source_version, _embedded_at FROM product_vectors ORDER BY id")


def test_only_changed_rows_are_embedded_again_and_deletes_propagate(tmp_path: Path) -> None:
    project = embed_project(tmp_path)
    with Context.open(project) as ctx:
        source = _catalog(1000)
        ctx.store.overwrite("silver", "silver_products", source, {})
        assert "1,000 rows embedded" in _run(ctx)
        before = _vectors(ctx)
        assert before.num_rows == 1000

        changed_ids = list(range(5, 1000, 100))  # 10 rows
        names = source.column("name").to_pylist()
        for i in changed_ids:
            names[i - 1] += " (new edition)"
        prices = pc.add(source.column("price"), 1.0)  # every price changes; no text does
        updated = source.set_column(1, "name", pa.array(names)).set_column(4, "price", prices)
        ctx.store.overwrite("silver", "silver_products", updated, {})
        assert "10 of 1,000 rows embedded" in _run(ctx)
        after = _vectors(ctx)
        moved = pc.not_equal(after.column("_embedded_at"), before.column("_embedded_at"))
        assert sorted(pc.filter(after.column("id"), moved).to_pylist()) == changed_ids
        assert set(pc.filter(after.column("_source_version"), moved).to_pylist()) == {1}
        assert set(pc.filter(after.column("_source_version"), pc.invert(moved)).to_pylist()) == {0}

        kept = updated.filter(pc.invert(pc.is_in(updated.column("id"), pa.array([1, 2, 3], pa.int64()))))
        ctx.store.overwrite("silver", "silver_products", kept, {})
        log = _run(ctx)
        assert "0 of 997 rows embedded" in log and "3 deleted" in log
        assert ctx.query("SELECT count(*) FROM product_vectors WHERE id IN (1, 2, 3)").column(0)[0].as_py() == 0
        assert ctx.query("SELECT count(*) FROM product_vectors").column(0)[0].as_py() == 997

        assert "up to date" in _run(ctx)  # nothing changed: no new commit
        assert ctx.store.open("gold", "product_vectors").version() == 2


def test_a_different_model_re_embeds_every_row(tmp_path: Path) -> None:
    from flowforge.embed.models import packaged_minilm

    copy = tmp_path / "retrained-minilm"
    shutil.copytree(packaged_minilm(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last weight: another model as far as the vectors go
    weights.write_bytes(bytes(data))
    project = embed_project(tmp_path / "p")
    with Context.open(project) as ctx:
        ctx.store.overwrite("silver", "silver_products", _catalog(50), {})
        _run(ctx)
        workflow = project / "workflows" / "search.yml"
        workflow.write_text(workflow.read_text() + f"    model: {{name: retrained, path: '{copy}'}}\n")
        log = _run(ctx)
        assert "50 rows embedded with retrained (model, key or layout changed" in log
        versions = ctx.query("SELECT DISTINCT _model, _model_version FROM product_vectors").to_pylist()
        assert len(versions) == 1 and versions[0]["_model"] == "retrained"


def test_duplicate_and_null_keys_stop_the_job_before_anything_is_written(tmp_path: Path) -> None:
    project = embed_project(tmp_path)
    with Context.open(project) as ctx:
        table = _catalog(5)
        dup = pa.concat_tables([table, table.slice(0, 1)])
        ctx.store.overwrite("silver", "silver_products", dup, {})
        summary = ctx.run("search")
        assert summary.status == "failed"
        assert "key (id) is not unique" in summary.failed[0].error
        assert ctx.store.open("gold", "product_vectors") is None


def test_search_ranks_filters_and_traces_hits(tmp_path: Path) -> None:
    project = embed_project(tmp_path)
    with Context.open(project) as ctx:
        ctx.store.overwrite("silver", "silver_products", product_table(), {})
        _run(ctx)
        result = ctx.search.search("silver_products", "waterproof boots for hiking", k=3)
        assert result.table == "product_vectors" and result.method == "exact"
        assert result.hits[0].key == {"id": 1}
        assert [h.rank for h in result.hits] == [1, 2, 3]
        assert result.hits[0].score >= result.hits[1].score >= result.hits[2].score
        top = result.hits[0]
        assert top.row is not None and top.row["name"] == "Trailmaster waterproof hiking boots"
        assert top.source_version == 0 and top.quality == "no checks"
        assert top.lineage == ("silver_products",)

        filtered = ctx.search.search("product_vectors", "waterproof boots for hiking", k=5,
                                     where="category = 'kitchen' AND price < 20")
        assert filtered.hits and all(h.row["category"] == "kitchen" and h.row["price"] < 20 for h in filtered.hits)

        for bad in ("category = 'x'; DROP TABLE y", "id IN (SELECT 1)", "colour = 'red'"):
            with pytest.raises(SpecError, match="Filter"):
                ctx.search.search("silver_products", "boots", where=bad)
        ann = ctx.search.search("silver_products", "waterproof boots for hiking", k=3, method="ann")
        assert [h.key for h in ann.hits] == [h.key for h in result.hits]  # a small table: one list, exact
