"""A silver merge killed with SIGKILL after writing its new files, before its commit: the table
stays as it was (readers see the old files), and the next run merges the same batch once."""

from __future__ import annotations

import signal
from pathlib import Path

import pyarrow as pa
import yaml
from deltalake import DeltaTable, write_deltalake
from tests.e2e.helpers import flowforge


def _land(project: Path, ids: list[int], v: int) -> None:
    n = len(ids)
    write_deltalake(str(project / "lakehouse" / "bronze" / "bronze_t"), pa.table({
        "id": ids, "v": [v] * n, "_batch_id": [f"b{v}"] * n,
        "_ingestion_time": pa.array([v * 1_000_000] * n, pa.timestamp("us", tz="UTC")),
        "_source_system": ["t"] * n, "_source_file": pa.array([None] * n, pa.string()),
        "_file_modified_time": pa.array([None] * n, pa.timestamp("us", tz="UTC"))}), mode="append")


def _silver(project: Path) -> dict[int, int]:
    rows = DeltaTable(str(project / "lakehouse" / "silver" / "silver_t")).to_pyarrow_table().to_pylist()
    out = {r["id"]: r["v"] for r in rows}
    assert len(out) == len(rows), "a key is stored twice"
    return out


def test_a_merge_killed_before_its_commit_changes_nothing_and_the_rerun_merges_once(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "workflows").mkdir(parents=True)
    (project / "flowforge.yml").write_text(yaml.safe_dump({"lakehouse": "lakehouse", "connections": {}}))
    wf = {"name": "wf", "jobs": [{"name": "s", "kind": "silver", "tables": [
        {"target": "silver_t", "source": "bronze_t", "keys": ["id"]}]}]}
    (project / "workflows" / "wf.yml").write_text(yaml.safe_dump(wf, sort_keys=False))
    _land(project, list(range(1, 501)), 1)
    flowforge("run", "wf", project=project)
    silver = project / "lakehouse" / "silver" / "silver_t"
    before_version = DeltaTable(str(silver)).version()
    before = _silver(project)

    _land(project, [*range(490, 511)], 2)  # 11 updates, 10 new ids
    killed = flowforge("run", "wf", project=project, env={"FLOWFORGE_FAULT": "storage.merge_written:1"}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert DeltaTable(str(silver)).version() == before_version
    assert _silver(project) == before, "readers still see the table as it was"
    assert len(list(silver.glob("*.parquet"))) > len(DeltaTable(str(silver)).file_uris()), "the dead files exist"

    flowforge("run", "wf", project=project)
    after = _silver(project)
    assert after == {**before, **dict.fromkeys(range(490, 511), 2)}
    flowforge("run", "wf", project=project)  # nothing new: nothing changes
    assert _silver(project) == after
