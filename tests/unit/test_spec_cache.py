"""Parsed specs are reused only while what they were parsed from is unchanged: an edit is seen by
the very next call, even one that keeps the file's size and modification time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.cli_helpers import init_project

from flowforge.core.context import Context
from flowforge.core.spec_cache import SpecCache
from flowforge.errors import SpecError


def _same_stat_edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (same length) and put the file's times back: size and mtime_ns stay."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "p")


def test_a_same_size_same_mtime_edit_is_seen_by_the_next_load(project: Path) -> None:
    path = project / "workflows" / "example.yml"
    with Context.open(project) as ctx:
        first = ctx.validate("example")
        assert ctx.load_workflow("example") is first  # unchanged bytes: parsed once
        _same_stat_edit(path, "team: data", "team: risk")
        assert ctx.validate("example").team == "risk"
        _same_stat_edit(path, "round(amount * 1.2, 2)", "round(amount * 1.5, 2)")
        job = next(j for j in ctx.load_workflow("example").jobs if j.name == "clean_orders")
        assert "1.5" in str(job.model_dump())


def test_a_broken_file_is_reported_each_time_until_fixed(project: Path) -> None:
    path = project / "workflows" / "example.yml"
    good = path.read_text()
    path.write_text(good.replace("kind: silver", "kind: silverr"))
    with Context.open(project) as ctx:
        for _ in range(2):
            with pytest.raises(SpecError) as err:
                ctx.load_workflow("example")
            assert err.value.line is not None and str(path) in str(err.value)
        path.write_text(good)
        assert ctx.load_workflow("example").name == "example"
        path.unlink()
        with pytest.raises(SpecError, match="No workflow named 'example'"):
            ctx.load_workflow("example")


def test_registered_specs_are_keyed_by_their_content() -> None:
    cache = SpecCache(max_entries=2)
    table = {"target": "gold_x", "sql": "SELECT 1 AS a"}
    spec = {"name": "w", "jobs": [{"name": "g", "kind": "gold", "tables": [table]}]}
    first = cache.registered(spec)
    assert cache.registered({**spec}) is first
    changed = cache.registered({**spec, "description": "other"})
    assert changed.description == "other" and first.description == ""
    cache.registered({**spec, "team": "t"})
    assert len(cache) == 2  # bounded: the least recently used left
