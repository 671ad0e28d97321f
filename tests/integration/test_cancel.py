"""Cancelling a run in the middle of bronze, silver and gold: the run stops at the next safe point,
the table being written stays at its previous version, later jobs are skipped, and the next run
loads everything (nothing lost). The cancel is asked at exact points of the stream via the test hooks
of ``flowforge.testing``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli_helpers import init_project

from flowforge.core.context import Context
from flowforge.testing import at_point

WORKFLOW = """\
name: big
jobs:
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - {files: "events*.csv", target: bronze_events, batch_size: 50000}
  - name: clean
    kind: silver
    tables:
      - {target: silver_events, source: bronze_events, strategy: append}
  - name: report
    kind: gold
    tables:
      - {target: gold_events, sql: "SELECT id, amount * 2 AS doubled FROM silver_events"}
"""


def write_events(folder: Path, name: str, start: int, count: int) -> None:
    with (folder / name).open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "amount"])
        out.writerows((i, i % 97) for i in range(start, start + count))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    project = init_project(tmp_path / "p")
    (project / "workflows" / "example.yml").unlink()
    (project / "workflows" / "big.yml").write_text(WORKFLOW, encoding="utf-8")
    write_events(project / "data", "events1.csv", 0, 250_000)
    with Context.open(project) as context:
        assert context.run("big").status == "success"
        yield context


def versions(ctx: Context) -> dict[str, int]:
    return {t.name: t.version for t in ctx.tables() if t.name.endswith("_events")}


def cancel_at(ctx: Context, point: str, nth: int = 1, force: bool = False) -> tuple[int, dict[str, str]]:
    """Run 'big', cancelling it the ``nth`` time it reaches ``point``; (run id, job → status).
    ``force`` rebuilds gold even though its inputs did not change."""
    started: list[int] = []
    seen = [0]

    def maybe_cancel() -> None:
        seen[0] += 1
        if seen[0] == nth:
            ctx.run_service.cancel(started[-1])

    with at_point(point, maybe_cancel):
        summary = ctx.run("big", on_start=started.append, force=force)
    assert summary.status == "cancelled"
    run = ctx.run_detail(summary.run_id)
    return summary.run_id, {j.job_name: j.status for j in run.job_runs}


def test_cancel_in_the_middle_of_bronze(ctx: Context, tmp_path: Path) -> None:
    before = versions(ctx)
    write_events(tmp_path / "p" / "data", "events2.csv", 250_000, 200_000)
    _, jobs = cancel_at(ctx, "bronze.batch", nth=2)  # two of four batches handed to the writer
    assert jobs == {"land": "cancelled", "clean": "skipped", "report": "skipped"}
    assert versions(ctx) == before
    assert ctx.query("SELECT count(*) AS n FROM bronze_events").column("n")[0].as_py() == 250_000
    assert ctx.run("big").status == "success"  # the next run loads the file the cancelled one did not
    assert ctx.query("SELECT count(DISTINCT id) AS n FROM gold_events").column("n")[0].as_py() == 450_000


def test_cancel_in_the_middle_of_silver(ctx: Context, tmp_path: Path) -> None:
    before = versions(ctx)
    write_events(tmp_path / "p" / "data", "events2.csv", 250_000, 1_000)
    _, jobs = cancel_at(ctx, "silver.before_commit")
    assert jobs == {"land": "success", "clean": "cancelled", "report": "skipped"}
    after = versions(ctx)
    assert after["bronze_events"] == before["bronze_events"] + 1
    assert after["silver_events"] == before["silver_events"] and after["gold_events"] == before["gold_events"]
    assert ctx.run("big").status == "success"
    assert ctx.query("SELECT count(*) AS n FROM silver_events").column("n")[0].as_py() == 251_000


def test_cancel_in_the_middle_of_gold(ctx: Context) -> None:
    before = versions(ctx)
    _, jobs = cancel_at(ctx, "gold.batch", force=True)  # the first of three batches written, two to go
    assert jobs["report"] == "cancelled"
    assert versions(ctx)["gold_events"] == before["gold_events"]
    assert ctx.query("SELECT count(*) AS n FROM gold_events").column("n")[0].as_py() == 250_000


def test_a_cancel_from_another_process_is_seen_through_the_store(ctx: Context, tmp_path: Path) -> None:
    import time

    before = versions(ctx)
    write_events(tmp_path / "p" / "data", "events2.csv", 250_000, 200_000)
    started: list[int] = []

    def flag_only() -> None:  # what `flowforge cancel` in another process does: only the flag in the store
        if len(started) == 1:
            with Context(ctx.settings) as other:
                assert other.metadata.leases.request_cancel(started[0], "ops")
            started.append(0)
            time.sleep(0.6)  # the run reads the flag at most every half second

    with at_point("bronze.batch", flag_only):
        summary = ctx.run("big", on_start=started.append)
    assert summary.status == "cancelled"
    assert versions(ctx) == before
