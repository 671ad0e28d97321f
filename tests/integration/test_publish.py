"""``kind: publish`` on a real PostgreSQL: whole-table swaps, incremental updates, views that depend
on a table, a publish that fails half-way, and identifiers that need quoting."""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest
from tests.cli_helpers import init_project, invoke

pytestmark = pytest.mark.postgres


def _project(tmp_path: Path, url: str, gold_sql: str, publish: str) -> Path:
    project = init_project(tmp_path / "p")
    (project / "flowforge.yml").write_text(textwrap.dedent(f"""
        lakehouse: lakehouse
        connections:
          local_files: {{type: files, path: data, format: csv}}
          warehouse: {{type: postgres, url: "{url}", schema: public}}
        """), encoding="utf-8")
    _workflow(project, gold_sql, publish)
    return project


def _workflow(project: Path, gold_sql: str, publish: str) -> None:
    (project / "workflows" / "example.yml").write_text(textwrap.dedent("""
        name: example
        jobs:
          - name: ingest_orders
            kind: ingest
            connection: local_files
            tables: [{files: "orders*.csv", target: bronze_orders}]
          - name: clean
            kind: silver
            tables: [{target: silver_orders, source: bronze_orders, keys: [order_id], order_by: updated_at}]
          - name: gold
            kind: gold
            tables:
              - target: gold_orders
                sql: |
        """) + textwrap.indent(gold_sql.strip(), " " * 18) + "\n" + textwrap.indent(publish.strip(), "  ") + "\n",
        encoding="utf-8")


PUBLISH = """
- name: publish
  kind: publish
  connection: warehouse
  target_schema: bi
  tables:
    - {table: gold_orders, target: orders, keys: [order_id], indexes: [customer, ["select", "Amount €"]],
       description: "Orders", columns: {customer: "Who ordered"}}
"""


def _write_orders(project: Path, rows: list[tuple[int, str, str]]) -> None:
    lines = ["order_id,customer,amount,updated_at"] + [f"{i},{c},{a},2026-01-0{i % 9 + 1} 10:00:00"
                                                       for i, c, a in rows]
    (project / "data" / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _published(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT order_id, customer, "select", "Amount €" FROM bi.orders ORDER BY 1').fetchall()


def _state(url: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT delta_version, mode, row_count FROM bi._flowforge_published "
                           "WHERE table_name = 'orders'").fetchone()
    assert row is not None
    return tuple(row)


SQL = 'SELECT order_id, customer, upper(customer) AS "select", amount AS "Amount €" FROM silver_orders'


def test_publish_swaps_then_updates_incrementally_and_keeps_dependent_views(pg_database: str, tmp_path: Path) -> None:
    project = _project(tmp_path, pg_database, SQL, PUBLISH)
    _write_orders(project, [(i, f"c{i}", f"{i}.50") for i in range(1, 9)])
    code, out = invoke(project, "run", "example")
    assert code == 0, out
    assert _published(pg_database) == [(i, f"c{i}", f"C{i}", pytest.approx(i + 0.5)) for i in range(1, 9)]
    assert _state(pg_database)[1:] == ("full", 8)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT obj_description('bi.orders'::regclass)").fetchone()[0].startswith("Orders.")
        assert conn.execute("SELECT col_description('bi.orders'::regclass, 2)").fetchone()[0] == "Who ordered"
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")}
        assert names == {"orders_pkey", "ix_orders_customer", "ix_orders_select_Amount €"}
        conn.execute("CREATE VIEW bi.big_orders AS SELECT * FROM bi.orders WHERE \"Amount €\" > 4")

    code, out = invoke(project, "run", "example")  # same data: gold is up to date, nothing to publish
    assert code == 0, out
    assert "gold_orders: up to date" in out and _state(pg_database)[1:] == ("full", 8)
    code, out = invoke(project, "run", "example", "--force")  # a new gold version with the same rows
    assert code == 0, out
    assert _state(pg_database)[1:] == ("incremental", 8)

    _write_orders(project, [(i, f"c{i}", f"{i}.50") for i in range(1, 9)] + [(9, "late", "9.00")])
    (project / "data" / "orders_2.csv").write_text("order_id,customer,amount,updated_at\n"
                                                   "3,renamed,3.50,2026-02-01 10:00:00\n", encoding="utf-8")
    code, out = invoke(project, "run", "example")
    assert code == 0, out
    assert "publish bi.orders: 2 rows" in out  # only the new order and the renamed one were sent
    assert _state(pg_database)[1:] == ("incremental", 9)
    rows = _published(pg_database)
    assert len(rows) == 9 and rows[2][1] == "renamed" and rows[8][1] == "late"
    with psycopg.connect(pg_database) as conn:  # the view survived every publish
        assert conn.execute("SELECT count(*) FROM bi.big_orders").fetchone()[0] == 6

    _workflow(project, SQL, PUBLISH.replace("keys: [order_id],", "keys: [order_id], mode: full,"))
    code, out = invoke(project, "run", "example", "--force")  # a new gold version (its inputs did not change)
    assert code == 0, out
    assert _state(pg_database)[1:] == ("full", 9)  # reloaded: the view forbids a drop, so the rows were swapped
    assert len(_published(pg_database)) == 9
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT count(*) FROM bi.big_orders").fetchone()[0] == 6


def test_a_publish_that_fails_leaves_the_previous_table_and_version(pg_database: str, tmp_path: Path) -> None:
    project = _project(tmp_path, pg_database, SQL, PUBLISH)
    _write_orders(project, [(i, f"c{i}", "1.00") for i in range(1, 5)])
    code, out = invoke(project, "run", "example")
    assert code == 0, out
    before, state = _published(pg_database), _state(pg_database)
    # the gold SQL now returns every order twice: the primary key cannot be built
    _workflow(project, SQL + " UNION ALL " + SQL, PUBLISH)
    code, out = invoke(project, "run", "example")
    assert code == 1
    assert "2 rows have the key order_id=1" in out
    assert _published(pg_database) == before and _state(pg_database) == state
    # a value PostgreSQL refuses (a NUL character) fails the COPY inside the swap's transaction
    full = PUBLISH.replace("keys: [order_id],", "keys: [order_id], mode: full,")
    _workflow(project, SQL.replace("upper(customer)", "customer || chr(0)"), full)
    code, out = invoke(project, "run", "example")
    assert code == 1
    assert "publishing bi.orders failed" in out
    assert _published(pg_database) == before and _state(pg_database) == state
    # a column type the warehouse cannot hold is refused before anything is written
    _workflow(project, SQL.replace("FROM silver_orders", ", [1, 2] AS tags FROM silver_orders"), PUBLISH)
    code, out = invoke(project, "run", "example")
    assert code == 1
    assert "cannot hold" in out
    with psycopg.connect(pg_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'bi'")}
    assert tables == {"orders", "_flowforge_published"}  # no half-built table left behind


def test_publish_refuses_a_connection_that_is_not_postgres(tmp_path: Path, pg_database: str) -> None:
    project = _project(tmp_path, pg_database, SQL, PUBLISH.replace("connection: warehouse", "connection: local_files"))
    _write_orders(project, [(1, "a", "1.00")])
    code, out = invoke(project, "run", "example")
    assert code == 1
    assert "publish writes to PostgreSQL" in out
