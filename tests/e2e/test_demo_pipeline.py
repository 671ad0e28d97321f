"""The demo as a user runs it: gold against an independent computation, incremental runs, crashes."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.e2e.helpers import assert_gold_matches_source, flowforge, source_rows, table

pytestmark = pytest.mark.slow


def _watermark(project: Path, table_name: str) -> dt.datetime:
    """The watermark as the bronze Delta commits record it."""
    for commit in DeltaTable(str(project / "lakehouse" / "bronze" / table_name)).history():
        if "flowforge.watermark" in commit:
            return dt.datetime.fromisoformat(json.loads(commit["flowforge.watermark"])["high"]["value"])
    raise AssertionError("no watermark recorded")


def _mirror(project: Path, table_name: str) -> dict[str, object]:
    con = sqlite3.connect(project / ".flowforge" / "metadata.db")
    try:
        row = con.execute("SELECT state, delta_version FROM watermarks WHERE table_name = ?", (table_name,)).fetchone()
    finally:
        con.close()
    return {"state": json.loads(row[0]), "version": row[1]}


def _silver_equals_source(project: Path) -> None:
    db = project / "data" / "bfsi.db"
    silver = table(project, "silver", "silver_customer_master")
    ids = [r["customer_id"] for r in silver]
    assert len(ids) == len(set(ids)), "no duplicate customers in silver"
    src = {r[0]: r[1:] for r in source_rows(db, "SELECT customer_id, email, customer_segment, credit_score "
                                               "FROM customers")}
    assert {r["customer_id"]: (r["email"], r["customer_segment"], r["credit_score"]) for r in silver} == src
    tx = [r["transaction_id"] for r in table(project, "silver", "silver_transactions")]
    assert len(tx) == len(set(tx))
    assert set(tx) == {r[0] for r in source_rows(db, "SELECT transaction_id FROM transactions")}


def test_demo_builds_customer_360_equal_to_plain_sql(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    out = flowforge("demo", "--dir", str(project)).stdout
    assert "SUCCESS  PASS=4 ERROR=0 SKIP=0" in out
    assert "gold_customer_360" in out and "flowforge query" in out
    assert assert_gold_matches_source(project) == 500
    bronze = table(project, "bronze", "bronze_core_customers")
    assert len(bronze) == 500
    assert {"_batch_id", "_ingestion_time", "_source_system", "_source_file", "_file_modified_time"} <= set(bronze[0])
    assert bronze[0]["_source_file"] == "customers" and bronze[0]["_file_modified_time"] is None
    crm = table(project, "bronze", "bronze_crm_customers")
    assert crm[0]["_source_file"] == "crm_customers.csv" and crm[0]["_file_modified_time"] is not None
    # what the user is told to type works
    q = flowforge("query", "SELECT count(*) AS n FROM gold_customer_360", project=project).stdout
    assert "500" in q


# a project in a folder whose name a URL escapes ("/Users/Jane Doe/..."): Delta gives file
# addresses as URLs, which the merges and the engine must read as paths
@pytest.mark.parametrize("folder", ["demo", "Jane Doe/100% é"])
def test_incremental_run_reads_only_changes_and_merges(tmp_path: Path, folder: str) -> None:
    project = tmp_path / folder
    flowforge("demo", "--dir", str(project))
    db = project / "data" / "bfsi.db"
    before = _watermark(project, "bronze_core_customers")
    change = flowforge("demo", "change", "--dir", str(project)).stdout
    assert "customers 10 inserted, 25 updated" in change
    out = flowforge("run", "bfsi_customer_360", project=project).stdout
    assert "bronze_core_customers: 35 rows (v1)" in out  # only new and changed rows were read
    assert "silver_customer_master: 10 rows, 25 updated" in out
    _silver_equals_source(project)
    assert assert_gold_matches_source(project) == 510
    newest = source_rows(db, "SELECT max(modified_date) FROM customers")[0][0]
    assert _watermark(project, "bronze_core_customers") == dt.datetime.fromisoformat(newest) > before
    mirror = _mirror(project, "bronze_core_customers")
    assert dt.datetime.fromisoformat(mirror["state"]["high"]["value"]) == dt.datetime.fromisoformat(newest)
    # a run with nothing new reads nothing and changes nothing
    again = flowforge("run", "bfsi_customer_360", project=project).stdout
    assert "bronze_core_customers: up to date" in again
    assert DeltaTable(str(project / "lakehouse" / "silver" / "silver_customer_master")).version() == 1


def _with_small_batches(project: Path) -> None:
    wf = project / "workflows" / "bfsi_customer_360.yml"
    text = wf.read_text().replace("target: bronze_core_transactions, incremental: modified_date}",
                                  "target: bronze_core_transactions, incremental: modified_date, batch_size: 50}")
    assert "batch_size: 50" in text
    wf.write_text(text)


@pytest.mark.parametrize("fault", ["bronze.batch:5", "bronze.committed:2", "silver.committed:2"])
def test_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path, fault: str) -> None:
    project = tmp_path / "demo"
    flowforge("demo", "--dir", str(project))
    flowforge("demo", "change", "--dir", str(project))
    _with_small_batches(project)
    killed = flowforge("run", "bfsi_customer_360", project=project, env={"FLOWFORGE_FAULT": fault}, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    if fault == "bronze.batch:5":
        # the half-written batch is invisible: bronze still holds exactly the first load
        assert len(table(project, "bronze", "bronze_core_transactions")) == 5000
    flowforge("run", "bfsi_customer_360", project=project)
    tx = [r["transaction_id"] for r in table(project, "bronze", "bronze_core_transactions")]
    assert len(tx) == len(set(tx)) == 5230, "every changed row landed in bronze exactly once"
    _silver_equals_source(project)
    assert assert_gold_matches_source(project) == 510
    newest = source_rows(project / "data" / "bfsi.db", "SELECT max(modified_date) FROM transactions")[0][0]
    assert _watermark(project, "bronze_core_transactions") == dt.datetime.fromisoformat(newest)


def test_failed_job_leaves_tables_and_watermarks_as_they_were(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    flowforge("demo", "--dir", str(project))
    flowforge("demo", "change", "--dir", str(project))
    wf = project / "workflows" / "bfsi_customer_360.yml"
    good = wf.read_text()
    wf.write_text(good.replace("full_name: \"first_name || ' ' || last_name\"",
                               "full_name: \"first_name || ' ' || no_such_column\""))
    silver = project / "lakehouse" / "silver" / "silver_customer_master"
    before = DeltaTable(str(silver)).version()
    failed = flowforge("run", "bfsi_customer_360", project=project, check=False)
    assert failed.returncode == 1
    assert "no_such_column" in failed.stdout and "Traceback" not in failed.stdout + failed.stderr
    assert "SKIP" in failed.stdout  # gold did not run on half-updated silver
    assert DeltaTable(str(silver)).version() == before
    wf.write_text(good)
    flowforge("run", "bfsi_customer_360", project=project)
    _silver_equals_source(project)
    assert assert_gold_matches_source(project) == 510
