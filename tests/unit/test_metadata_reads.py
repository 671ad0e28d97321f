"""On SQLite, listing and reading take no write lock: a page of workflows or runs does not queue
behind a run committing its records (or behind another server process)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from tests.unit.test_metadata_store import make_workflow

from flowforge.metadata import MetadataStore


def test_reads_do_not_wait_for_a_writer_and_see_committed_state(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    store = MetadataStore(f"sqlite:///{path}")
    store.migrate()
    store.upsert_workflow(make_workflow(), actor="alice")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what every write transaction takes, held here
    writer.execute("UPDATE workflows SET team = 'uncommitted'")
    found: list[object] = []

    def read() -> None:
        found.append(store.get_workflow("bfsi_daily"))
        found.append(store.workflow_briefs(limit=10)[1])
        found.append(store.list_runs(None, 10))

    reader = threading.Thread(target=read, daemon=True)
    try:
        reader.start()
        reader.join(timeout=20)  # a reader that took the write lock would wait its 30 s busy timeout
        assert not reader.is_alive(), "a read waited for the writer's lock"
        record = found[0]
        assert record is not None and getattr(record, "team", None) == "data-platform"
        assert found[1:] == [1, []]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join(timeout=60)
        store.close()
