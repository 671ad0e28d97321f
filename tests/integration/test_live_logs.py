"""Logs while a job runs: what a job has noted so far is in its job run (and so on the run page and
at GET /runs/{id}/logs) before the job ends, not only at the end."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import init_project

from flowforge.core.context import Context
from flowforge.testing import at_point

WORKFLOW = """\
name: two_tables
jobs:
  - name: land
    kind: ingest
    connection: local_files
    tables:
      - {files: "first.csv", target: bronze_first}
      - {files: "second.csv", target: bronze_second, batch_size: 1000}
"""


def test_the_log_of_a_running_job_shows_what_it_did_so_far(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    (project / "workflows" / "two_tables.yml").write_text(WORKFLOW, encoding="utf-8")
    (project / "data" / "first.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(10)))
    (project / "data" / "second.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(5000)))
    seen: list[tuple[str, str]] = []
    started: list[int] = []
    with Context.open(project) as ctx:
        def look() -> None:  # at each batch handed to the writer, what does the run's log say?
            seen.extend((log.status, log.log) for log in ctx.run_service.logs(started[0]))

        with at_point("bronze.batch", look):
            summary = ctx.run("two_tables", on_start=started.append)
        assert summary.status == "success"
    assert seen[0] == ("running", "")  # the first table's batch: nothing noted yet
    status, log = seen[-1]  # a batch of the second table: the first table's line is there already
    assert status == "running" and "bronze_first: appended 10 rows" in log and "bronze_second" not in log
