"""Every test kind with every severity, through real runs, on a local lakehouse and on S3 (moto).

A first run lands one clean order; the second lands six orders, each kind's failing rows known
by hand. Then: ``warn`` commits everything and records the failures; ``drop`` commits the rest
and counts the dropped rows in the commit and the run record; ``quarantine`` moves the failing
rows to ``silver_orders__quarantine`` with the test's name and the run id; ``fail`` stops the
job and leaves the table exactly as the first run left it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.lakes import Lake, write_project

from flowforge.core.context import Context

CUSTOMERS = b"customer_id,name\n1,ann\n2,bob\n"
FIRST = f"order_id,customer_id,status,amount,email,order_date\n100,1,placed,1.00,first@x.io,{dt.date.today()}\n"
SECOND = b"""order_id,customer_id,status,amount,email,order_date,channel
1,1,placed,10.00,a@x.io,2024-01-05,web
2,2,shipped,-3.00,b@x.io,2024-02-01,web
3,9,placed,5.00,c@x.io,2024-03-01,shop
4,1,lost,7.00,not-an-email,2024-04-01,web
5,,placed,8.00,e@x.io,2023-12-31,web
6,2,placed,9.00,a@x.io,2024-05-01,app
"""
# order 100 again, dated long ago: the table's newest order_date is no longer recent
STALE = b"order_id,customer_id,status,amount,email,order_date,channel\n100,1,placed,1.00,first@x.io,2024-06-01,web\n"

# kind → (test arguments, the order ids of the second file that break it)
ROW_KINDS: dict[str, tuple[dict[str, Any], list[int]]] = {
    "not_null": ({"column": "customer_id"}, [5]),
    "unique": ({"column": "email"}, [1, 6]),
    "accepted_values": ({"column": "status", "values": ["placed", "shipped"]}, [4]),
    "relationships": ({"column": "customer_id", "to": "silver_customers", "field": "customer_id"}, [3]),
    "expression": ({"sql": "amount >= 0"}, [2]),
    "unique_combination": ({"columns": ["email", "status"]}, [1, 6]),
    "regex": ({"column": "email", "pattern": r"^[^@]+@[^@]+\.[a-z]+$"}, [4]),
    "range": ({"column": "order_date", "min": "2024-01-01"}, [5]),
}
# table kinds, each passing after the first run and broken by the second
TABLE_KINDS: dict[str, dict[str, Any]] = {
    "row_count": {"max": 3},
    "freshness": {"column": "order_date", "max_age": "2d"},
    "schema": {"columns": ["order_id", "customer_id", "status", "amount", "email", "order_date"], "exact": True},
    "reconcile": {"expression": "sum(amount)", "where": "amount >= 0", "against": "bronze_orders"},
}
CASES = [(k, s) for k in ROW_KINDS for s in ("warn", "drop", "quarantine", "fail")] + \
        [(k, s) for k in TABLE_KINDS for s in ("warn", "fail")]


def _workflow(kind: str, args: dict[str, Any], severity: str) -> str:
    return yaml.safe_dump({"name": "shop", "jobs": [
        {"name": "land", "kind": "ingest", "connection": "landing", "tables": [
            {"files": "customers.csv", "target": "bronze_customers"},
            {"files": "orders*.csv", "target": "bronze_orders"}]},
        {"name": "clean", "kind": "silver", "tables": [
            {"target": "silver_customers", "source": "bronze_customers", "keys": ["customer_id"]},
            {"target": "silver_orders", "source": "bronze_orders", "keys": ["order_id"],
             "tests": [{kind: {**args, "severity": severity}}]}]}]}, sort_keys=False)


def _ids(ctx: Context, table: str) -> list[int]:
    return sorted(r["order_id"] for r in ctx.query(f"SELECT order_id FROM {table}").to_pylist())


def _commit_metadata(ctx: Context, layer: str, table: str, key: str) -> Any:
    dt = ctx.store.open(layer, table)
    assert dt is not None
    raw = dt.history(1)[0].get(f"flowforge.{key}")
    return json.loads(raw) if raw else None


@pytest.mark.parametrize(("kind", "severity"), CASES)
def test_kind_and_severity_through_a_run(tmp_path: Path, lake: Lake, kind: str, severity: str) -> None:
    args, bad = ROW_KINDS.get(kind, (TABLE_KINDS.get(kind, {}), []))
    lake.put("customers.csv", CUSTOMERS)
    lake.put("orders_1.csv", FIRST.encode())
    project = write_project(tmp_path / "p", lake, {"landing": lake.files_connection()})
    (project / "workflows" / "shop.yml").write_text(_workflow(kind, args, severity))
    with Context.open(project) as ctx:
        first = ctx.run("shop")
        assert first.status == "success", [e.error for e in first.events]
        before = ctx.store.open("silver", "silver_orders")
        assert before is not None and _ids(ctx, "silver_orders") == [100]

        lake.put("orders_2.csv", SECOND)
        if kind == "freshness":
            lake.put("orders_3.csv", STALE)
        run = ctx.run("shop")
        results = ctx.quality.run_results(run.run_id)
        (result,) = [r for r in results.results if r.table_name == "silver_orders"]
        everything = [1, 2, 3, 4, 5, 6, 100]

        if severity == "fail":
            assert run.status == "partial", "the ingest job commits; the silver job stops"
            assert result.status == "fail"
            assert "nothing of these" in (run.events[1].error or "")
            after = ctx.store.open("silver", "silver_orders")
            assert after is not None and after.version() == before.version()
            assert _ids(ctx, "silver_orders") == [100]
            assert ctx.store.open("silver", "silver_orders__quarantine") is None
            return

        assert run.status == "success", [e.error for e in run.events]
        if kind in TABLE_KINDS:
            assert result.status == "warn" and result.failing_rows == 0 and result.observed
            assert _ids(ctx, "silver_orders") == everything
            return

        assert result.failing_rows == len(bad)
        assert sorted(r["order_id"] for r in result.sample) == bad
        job_run = next(j for j in ctx.run_detail(run.run_id).job_runs if j.job_name == "clean")
        accounting = _commit_metadata(ctx, "silver", "silver_orders", "quality")
        if severity == "warn":
            assert result.status == "warn"
            assert _ids(ctx, "silver_orders") == everything
            assert (accounting["dropped"], accounting["quarantined"]) == (0, 0)
        elif severity == "drop":
            assert _ids(ctx, "silver_orders") == [i for i in everything if i not in bad]
            assert (accounting["rows_in"], accounting["committed"], accounting["dropped"]) == (6, 6 - len(bad),
                                                                                              len(bad))
            assert (job_run.rows_dropped, job_run.rows_quarantined) == (len(bad), 0)
            assert ctx.store.open("silver", "silver_orders__quarantine") is None
        else:
            assert _ids(ctx, "silver_orders") == [i for i in everything if i not in bad]
            held = ctx.query("SELECT order_id, _quarantine_failed_tests AS t, _quarantine_run_id AS run "
                             "FROM silver_orders__quarantine ORDER BY order_id").to_pylist()
            assert [h["order_id"] for h in held] == bad
            assert all(h["t"] == [result.test_name] and h["run"] == run.run_id for h in held)
            assert (accounting["quarantined"], accounting["quarantine_version"]) == (len(bad), 0)
            assert (job_run.rows_dropped, job_run.rows_quarantined) == (0, len(bad))
        (acct,) = [a for a in results.accounting if a.table_name == "silver_orders"]
        assert acct.rows_in == acct.rows_committed + acct.rows_dropped + acct.rows_quarantined == 6


def test_bronze_gold_and_replay_with_quarantine(tmp_path: Path, lake: Lake) -> None:
    lake.put("customers.csv", CUSTOMERS)
    lake.put("orders_2.csv", SECOND)
    project = write_project(tmp_path / "p", lake, {"landing": lake.files_connection()})
    workflow = {"name": "shop", "jobs": [
        {"name": "land", "kind": "ingest", "connection": "landing", "tables": [
            {"files": "customers.csv", "target": "bronze_customers"},
            {"files": "orders*.csv", "target": "bronze_orders",
             "tests": [{"not_null": {"column": "customer_id", "severity": "quarantine"}}]}]},
        {"name": "report", "kind": "gold", "tables": [
            {"target": "gold_orders", "sql": "SELECT order_id, amount, email FROM bronze_orders",
             "tests": [{"expression": {"sql": "amount >= 0", "severity": "quarantine"}}]}]}]}
    path = project / "workflows" / "shop.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    with Context.open(project) as ctx:
        run = ctx.run("shop")
        assert run.status == "success", [e.error for e in run.events]
        assert _ids(ctx, "bronze_orders") == [1, 2, 3, 4, 6]
        assert _ids(ctx, "bronze_orders__quarantine") == [5]
        assert _ids(ctx, "gold_orders") == [1, 3, 4, 6]
        assert _ids(ctx, "gold_orders__quarantine") == [2]
        assert [q.table for q in ctx.quality.quarantines()] == ["bronze_orders", "gold_orders"]
        with pytest.raises(Exception, match="rebuilt from its SQL on every run"):
            ctx.quality.replay("gold_orders")

        # the rule is relaxed: the held row now passes and goes back into bronze, once
        workflow["jobs"][0]["tables"][1]["tests"] = [{"not_null": {"column": "email", "severity": "quarantine"}}]
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        report = ctx.quality.replay("bronze_orders")
        assert (report.checked, report.replayed, report.still_failing) == (1, 1, 0)
        assert _ids(ctx, "bronze_orders") == [1, 2, 3, 4, 5, 6]
        again = ctx.quality.replay("bronze_orders")
        assert (again.checked, again.replayed) == (0, 0)
        assert _ids(ctx, "bronze_orders") == [1, 2, 3, 4, 5, 6]
        assert ctx.quality.quarantine("bronze_orders").replayed == 1
        # the next run carries the replayed row downstream
        assert ctx.run("shop").status == "success"
        assert _ids(ctx, "gold_orders") == [1, 3, 4, 5, 6]


def test_replay_into_a_merged_table_never_overwrites_newer_data(tmp_path: Path, lake: Lake) -> None:
    lake.put("orders_1.csv", b"order_id,email,updated_at\n1,bad,2024-01-01\n2,bad,2024-01-01\n")
    project = write_project(tmp_path / "p", lake, {"landing": lake.files_connection()})
    workflow = {"name": "shop", "jobs": [
        {"name": "land", "kind": "ingest", "connection": "landing", "tables": [
            {"files": "orders*.csv", "target": "bronze_orders"}]},
        {"name": "clean", "kind": "silver", "tables": [
            {"target": "silver_orders", "source": "bronze_orders", "keys": ["order_id"], "order_by": "updated_at",
             "tests": [{"regex": {"column": "email", "pattern": "@", "severity": "quarantine"}}]}]}]}
    path = project / "workflows" / "shop.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    with Context.open(project) as ctx:
        assert ctx.run("shop").status == "success"
        assert _ids(ctx, "silver_orders__quarantine") == [1, 2]
        # order 1 arrives fixed in a later file: the quarantined version of it is now stale
        lake.put("orders_2.csv", b"order_id,email,updated_at\n1,fixed@x.io,2024-02-01\n")
        assert ctx.run("shop").status == "success"
        workflow["jobs"][1]["tables"][0]["tests"] = []
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        with pytest.raises(Exception, match="declares tests on 'silver_orders'"):
            ctx.quality.replay("silver_orders")
        workflow["jobs"][1]["tables"][0]["tests"] = [{"not_null": {"column": "email", "severity": "quarantine"}}]
        path.write_text(yaml.safe_dump(workflow, sort_keys=False))
        report = ctx.quality.replay("silver_orders")
        assert (report.replayed, report.superseded) == (1, 1)
        rows = ctx.query("SELECT order_id, email FROM silver_orders ORDER BY order_id").to_pylist()
        assert rows == [{"order_id": 1, "email": "fixed@x.io"}, {"order_id": 2, "email": "bad"}]
