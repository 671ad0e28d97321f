"""Onboarding a whole database at once: Northwind (14 tables, from the public conformance fixtures)
in PostgreSQL with ``flowforge ingest --all``, and a small schema in MariaDB and SQLite through
``tables: "*"`` — every table lands in bronze_<table>, keys and update columns are found where the
source declares them, and the second run loads only what changed."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.cli_helpers import invoke
from tests.integration.drift_sources import Project, make_project

pytestmark = [pytest.mark.postgres, pytest.mark.mysql]

NORTHWIND_COUNTS = {"categories": 8, "customer_customer_demo": 0, "customer_demographics": 0, "customers": 91,
                    "employees": 9, "employee_territories": 49, "order_details": 2155, "orders": 830,
                    "products": 77, "region": 4, "shippers": 6, "suppliers": 29, "territories": 53}


@pytest.fixture
def northwind(tmp_path: Path, request: pytest.FixtureRequest, conformance_dir: Path) -> Iterator[Project]:
    for project in make_project(tmp_path, "postgres", request):
        script = (conformance_dir / "sample_oltp" / "northwind" / "northwind_postgres.sql").read_text(encoding="utf-8")
        with psycopg.connect(project.source.url, autocommit=True) as conn:  # type: ignore[attr-defined]
            conn.execute(script)  # type: ignore[arg-type]  # a dump: many statements, no parameters
            # two tables say when a row last changed, as most OLTP tables do
            conn.execute("ALTER TABLE orders ADD COLUMN updated_at timestamp NOT NULL DEFAULT '2024-01-01'")
            conn.execute("ALTER TABLE products ADD COLUMN last_modified timestamptz NOT NULL "
                         "DEFAULT '2024-01-01 00:00:00+00'")
            conn.execute("ALTER TABLE customers ADD COLUMN modified date")  # a date is too coarse: not used
        yield project


def test_northwind_onboarded_with_all(northwind: Project) -> None:
    project = northwind
    project.write("""\
name: drift
jobs:
  - name: land_all
    kind: ingest
    connection: shop
    tables: "*"
    exclude: ["us_*"]
  - name: clean_orders
    kind: silver
    tables:
      - {target: silver_orders, source: bronze_orders, keys: [order_id], order_by: updated_at}
""")
    code, out = invoke(project.folder, "validate", "drift")
    assert code == 0, out
    assert "job 'land_all' lands 13 table(s)" in out
    lines = {line.split(" → ")[0].strip(): line for line in out.splitlines() if " → " in line}
    assert lines["public.orders"].endswith("→ bronze_orders: key order_id, incremental on updated_at")
    assert lines["public.products"].endswith("→ bronze_products: key product_id, incremental on last_modified")
    assert lines["public.order_details"].endswith("key order_id, product_id, full load")
    assert lines["public.customers"].endswith("→ bronze_customers: key customer_id, full load")
    assert "public.us_states" not in lines

    code, out = invoke(project.folder, "ingest", "--from", "shop", "--all", "--exclude", "us_*")
    assert code == 0, out
    assert "13 table(s) to land from shop:" in out
    assert "public.orders → bronze_orders: key order_id, incremental on updated_at" in out
    for table, count in NORTHWIND_COUNTS.items():
        assert len(project.rows("bronze", f"bronze_{table}", ())) == count, table
    assert not (project.folder / "lakehouse" / "bronze" / "bronze_us_states").exists()
    orders = {r["order_id"]: r for r in project.rows("bronze", "bronze_orders", ("order_id",))}
    assert (orders[10248]["customer_id"], orders[10248]["order_date"], orders[10248]["ship_city"]) == (
        "VINET", dt.date(1996, 7, 4), "Reims")
    products = {r["product_id"]: r for r in project.rows("bronze", "bronze_products", ("product_id",))}
    assert products[1]["product_name"] == "Chai" and products[1]["unit_price"] == pytest.approx(18.0)

    # the second run: only changed orders and products are read again
    with psycopg.connect(project.source.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE orders SET freight = 99.5, updated_at = '2025-06-01' WHERE order_id IN (10248, 10249)")
        conn.execute("UPDATE products SET unit_price = 19, last_modified = '2025-06-01 00:00:00+00' "
                     "WHERE product_id = 1")
    code, out = invoke(project.folder, "ingest", "--from", "shop", "--all", "--exclude", "us_*")
    assert code == 0, out
    orders_rows = project.rows("bronze", "bronze_orders", ("order_id", "updated_at"))
    assert len(orders_rows) == 830 + 2
    assert [r["freight"] for r in orders_rows if r["order_id"] == 10248] == [pytest.approx(32.38), 99.5]
    assert len(project.rows("bronze", "bronze_products", ())) == 77 + 1
    # the tables without an update column are read in full and replace what bronze held: never doubled
    assert "public.customers → bronze_customers: key customer_id, full load" in out
    for table in ("customers", "order_details", "region", "territories"):
        assert len(project.rows("bronze", f"bronze_{table}", ())) == NORTHWIND_COUNTS[table], table

    # the workflow: the silver job waits for the ingest job that finds bronze_orders, and merges it
    summary = project.run()
    assert summary.status == "success", project.log(summary)
    assert [e.job for e in summary.events if e.status == "success"] == ["land_all", "clean_orders"]
    assert "public.orders → bronze_orders: key order_id, incremental on updated_at" in project.log(summary)
    silver = {r["order_id"]: r for r in project.rows("silver", "silver_orders", ("order_id",))}
    assert len(silver) == 830 and silver[10248]["freight"] == pytest.approx(99.5)


SMALL = {
    "mariadb": ["CREATE TABLE accounts (id int PRIMARY KEY, owner varchar(20), updated_at datetime(6) NOT NULL)",
                "CREATE TABLE ledger (account_id int, amount decimal(10,2))",
                "CREATE TABLE audit_log (id int PRIMARY KEY, what text)",
                "INSERT INTO accounts VALUES (1, 'ada', '2024-01-01'), (2, 'bob', '2024-01-01')",
                "INSERT INTO ledger VALUES (1, 10.50), (2, 20.25), (1, 1.00)",
                "INSERT INTO audit_log VALUES (1, 'x')"],
    "sqlite": ["CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, updated_at TIMESTAMP NOT NULL)",
               "CREATE TABLE ledger (account_id INTEGER, amount NUMERIC(10,2))",
               "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, what TEXT)",
               "INSERT INTO accounts VALUES (1, 'ada', '2024-01-01 00:00:00'), (2, 'bob', '2024-01-01 00:00:00')",
               "INSERT INTO ledger VALUES (1, 10.50), (2, 20.25), (1, 1.00)",
               "INSERT INTO audit_log VALUES (1, 'x')"],
}


@pytest.fixture(params=["mariadb", "sqlite"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    for project in make_project(tmp_path, request.param, request):
        if request.param == "sqlite":
            sqlite3.connect(project.folder / "data" / "shop.db").close()
        project.source.execute(*SMALL[request.param])
        yield project


def test_every_table_of_mariadb_and_sqlite(small: Project) -> None:
    project = small
    project.write("""\
name: drift
jobs:
  - name: land
    kind: ingest
    connection: shop
    include: ["*"]
    exclude: ["audit_*"]
    target_template: "raw_{table}"
""")
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "success", log
    assert "accounts → raw_accounts: key id, incremental on updated_at" in log
    assert "ledger → raw_ledger: key none declared, full load" in log
    assert [(r["id"], r["owner"]) for r in project.rows("bronze", "raw_accounts")] == [(1, "ada"), (2, "bob")]
    assert sorted(str(r["amount"]) for r in project.rows("bronze", "raw_ledger", ())) == ["1.00", "10.50", "20.25"]
    assert not (project.folder / "lakehouse" / "bronze" / "raw_audit_log").exists()

    stamp = "'2025-01-01 00:00:00'"
    project.source.execute(f"UPDATE accounts SET owner = 'ann', updated_at = {stamp} WHERE id = 1")
    assert project.run().status == "success"
    rows = project.rows("bronze", "raw_accounts", ("id", "updated_at"))
    assert [(r["id"], r["owner"]) for r in rows] == [(1, "ada"), (1, "ann"), (2, "bob")]
    assert sorted(str(r["amount"]) for r in project.rows("bronze", "raw_ledger", ())) == ["1.00", "10.50", "20.25"]


def _edges(project: Project) -> set[tuple[str, str]]:
    from flowforge.core.context import Context
    from flowforge.lineage.graph import lineage_graph

    with Context.open(project.folder) as ctx:
        edges = lineage_graph(ctx, "drift")["edges"]
    # a source node is source:<connection>.[<database>.]<table> (MariaDB names the database)
    return {(f"source:shop.{e['source'].rsplit('.', 1)[-1]}" if e["source"].startswith("source:shop.")
             else e["source"], e["target"]) for e in edges}


def test_the_tables_a_run_found_are_in_the_lineage_until_the_source_drops_them(small: Project) -> None:
    project = small
    land = """name: drift
jobs:
  - name: land
    kind: ingest
    connection: shop
    tables: "*"
    exclude: ["audit_*"]
"""
    project.write(land)
    assert project.run().status == "success"
    found = {("source:shop.accounts", "bronze_accounts"), ("source:shop.ledger", "bronze_ledger")}
    assert _edges(project) == found
    project.write(land + """  - name: clean
    kind: silver
    tables:
      - {target: silver_accounts, source: bronze_accounts, keys: [id]}
""")  # the workflow registered again with another job: what the run found stays beside it
    assert project.run().status == "success"
    assert _edges(project) == found | {("bronze_accounts", "silver_accounts")}
    project.source.execute("DROP TABLE ledger")
    assert project.run().status == "success"
    assert _edges(project) == {("source:shop.accounts", "bronze_accounts"), ("bronze_accounts", "silver_accounts")}


def test_include_without_tables_is_validated(tmp_path: Path) -> None:
    from flowforge.spec.jobs import IngestJob

    job = IngestJob.model_validate({"name": "j", "kind": "ingest", "connection": "c", "tables": "*"})
    assert job.include == ("*",) and job.tables == ()
    assert job.may_produce("bronze_orders") and not job.may_produce("silver_orders")
    with pytest.raises(ValueError, match="must hold"):
        IngestJob.model_validate({"name": "j", "kind": "ingest", "connection": "c", "tables": "*",
                                  "target_template": "bronze_{name}"})
    with pytest.raises(ValueError, match="needs at least one entry, or 'include' patterns"):
        IngestJob.model_validate({"name": "j", "kind": "ingest", "connection": "c"})


def test_hostile_table_names_land_under_safe_names(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for project in make_project(tmp_path, "postgres", request):
        project.source.execute(
            "CREATE TABLE events (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
            "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
            "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
            "INSERT INTO events VALUES (1, '2024-03-01'), (2, '2025-03-01')",
            'CREATE TABLE "Order Lines; DROP TABLE x; --" (id int PRIMARY KEY, "Updated At" timestamp NOT NULL)',
            'INSERT INTO "Order Lines; DROP TABLE x; --" VALUES (1, \'2024-01-01\')',
            'CREATE TABLE "order_lines_drop_table_x" (id int)')
        project.write("""\
name: drift
jobs:
  - {name: land, kind: ingest, connection: shop, tables: "*", exclude: ["order_lines_drop*"]}
""")
        summary = project.run()
        log = project.log(summary)
        assert summary.status == "success", log
        assert ("public.Order Lines; DROP TABLE x; -- → bronze_order_lines_drop_table_x: key id, "
                "incremental on Updated At") in log
        assert [r["id"] for r in project.rows("bronze", "bronze_order_lines_drop_table_x")] == [1]
        # a partitioned table lands once, not once more per partition
        assert [r["id"] for r in project.rows("bronze", "bronze_events")] == [1, 2]
        assert not (project.folder / "lakehouse" / "bronze" / "bronze_events_2024").exists()
        # two source tables that would land under one name are refused before anything is read
        project.write("""\
name: drift
jobs:
  - {name: land, kind: ingest, connection: shop, tables: "*"}
""")
        summary = project.run()
        assert summary.status == "failed"
        assert "would both land as 'bronze_order_lines_drop_table_x'" in project.log(summary)
