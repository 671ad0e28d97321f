"""A source table's columns change between runs, on PostgreSQL, MariaDB and SQLite, under each
``on_schema_change`` policy: bronze and silver are checked value by value after each change, and a
refused change commits nothing and says which column, which types, and how to reconcile."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from tests.cli_helpers import invoke
from tests.integration.drift_sources import Project, Sqlite, make_project
from tests.lakes import Lake

from flowforge.core.context import Context

pytestmark = [pytest.mark.postgres, pytest.mark.mysql]

SOURCES = ["postgres", "mariadb", "sqlite"]

DDL = {
    "postgres": "CREATE TABLE t (id integer PRIMARY KEY, name varchar(20), amount numeric(10,2), qty integer, "
                "rv integer NOT NULL)",
    "mariadb": "CREATE TABLE t (id int PRIMARY KEY, name varchar(20), amount decimal(10,2), qty int, "
               "rv int NOT NULL)",
    "sqlite": "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(10,2), qty INTEGER, "
              "rv INTEGER NOT NULL)",
}
BIG = {"postgres": "bigint", "mariadb": "bigint", "sqlite": "BIGINT"}
WIDE_DECIMAL = {"postgres": "numeric(12,4)", "mariadb": "decimal(12,4)", "sqlite": "NUMERIC(12,4)"}
TEXT = {"postgres": "text", "mariadb": "text", "sqlite": "TEXT"}
NARROW_INT = {"postgres": "integer", "mariadb": "int", "sqlite": "INTEGER"}


def workflow(policy: str = "evolve", casts: str = "", silver: str | None = None) -> str:
    extra = f", casts: {casts}" if casts else ""
    silver = silver or policy
    return f"""\
name: drift
jobs:
  - name: land
    kind: ingest
    connection: shop
    tables:
      - {{table: t, target: bronze_t, incremental: rv, on_schema_change: {policy}{extra}}}
  - name: clean
    kind: silver
    tables:
      - {{target: silver_t, source: bronze_t, keys: [id], order_by: rv, on_schema_change: {silver}}}
"""


@pytest.fixture(params=SOURCES)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path, request.param, request)


def _start(project: Project, policy: str = "evolve") -> None:
    kind = project.source.kind
    project.source.execute(DDL[kind], "INSERT INTO t (id, name, amount, qty, rv) VALUES "
                                      "(1, 'ada', 10.50, 3, 1), (2, 'bob', 20.25, 4, 2)")
    project.write(workflow(policy))
    assert project.run().status == "success"


def _ok(project: Project) -> str:
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "success", log
    return log


def _dropped(project: Project, table: str) -> dict[str, dict[str, object]]:
    with Context.open(project.folder) as ctx:
        detail = ctx.table_detail(table, 0)
    return {str(c["name"]): c for c in detail.columns if c.get("dropped")}


def test_evolve_add_widen_drop_rename_narrow_incompatible(project: Project) -> None:
    kind = project.source.kind
    _start(project)
    d = Decimal

    # added: a new column lands in bronze and silver; older rows hold NULL there
    project.source.execute("ALTER TABLE t ADD COLUMN note varchar(20)",
                           "INSERT INTO t (id, name, amount, qty, rv, note) VALUES (3, 'cy', 30.75, 5, 3, 'new')")
    log = _ok(project)
    assert "bronze_t: schema change: column 'note' added" in log
    assert project.rows("silver", "silver_t") == [
        {"id": 1, "name": "ada", "amount": d("10.50"), "qty": 3, "rv": 1, "note": None},
        {"id": 2, "name": "bob", "amount": d("20.25"), "qty": 4, "rv": 2, "note": None},
        {"id": 3, "name": "cy", "amount": d("30.75"), "qty": 5, "rv": 3, "note": "new"}]
    assert [r["note"] for r in project.rows("bronze", "bronze_t")] == [None, None, "new"]

    # widened: qty to bigint, amount numeric(10,2) to numeric(12,4); every old value kept exactly
    project.source.widen("qty", BIG[kind])
    project.source.widen("amount", WIDE_DECIMAL[kind])
    project.source.execute("INSERT INTO t (id, name, amount, qty, rv, note) "
                           "VALUES (4, 'dee', 12345678.1234, 5000000000, 4, 'big')")
    log = _ok(project)
    assert "column 'amount' widened from DECIMAL(10,2) to DECIMAL(12,4)" in log
    if kind != "sqlite":  # SQLite integers are 64-bit whatever they are declared as
        assert "column 'qty' widened from INTEGER to BIGINT" in log
    bronze = project.rows("bronze", "bronze_t")
    assert [(r["id"], r["amount"], r["qty"]) for r in bronze] == [
        (1, d("10.5000"), 3), (2, d("20.2500"), 4), (3, d("30.7500"), 5), (4, d("12345678.1234"), 5_000_000_000)]
    silver = project.rows("silver", "silver_t")
    assert [(r["id"], r["amount"], r["qty"], r["note"]) for r in silver] == [
        (1, d("10.5000"), 3, None), (2, d("20.2500"), 4, None), (3, d("30.7500"), 5, "new"),
        (4, d("12345678.1234"), 5_000_000_000, "big")]
    assert pa.schema(project.table("silver", "silver_t").schema().to_arrow()).field("amount").type == \
        pa.decimal128(12, 4)

    # dropped: bronze keeps the column (NULL in new rows), silver keeps each key's value
    project.source.drop("name")
    project.source.execute("UPDATE t SET amount = 11.5, rv = 5 WHERE id = 1",
                           "INSERT INTO t (id, amount, qty, rv, note) VALUES (5, 50, 6, 6, 'e')")
    log = _ok(project)
    assert "bronze_t: schema change: column 'name' (TEXT) no longer sent by the source" in log
    assert "kept, marked dropped; new rows hold NULL" in log
    assert [(r["id"], r["name"]) for r in project.rows("bronze", "bronze_t", ("id", "rv"))] == [
        (1, "ada"), (1, None), (2, "bob"), (3, "cy"), (4, "dee"), (5, None)]
    assert [(r["id"], r["name"], r["amount"]) for r in project.rows("silver", "silver_t")] == [
        (1, "ada", d("11.5000")), (2, "bob", d("20.2500")), (3, "cy", d("30.7500")),
        (4, "dee", d("12345678.1234")), (5, None, d("50.0000"))]
    assert set(_dropped(project, "bronze_t")) == {"name"}
    assert set(_dropped(project, "silver_t")) == {"name"}

    # renamed: a drop and an add, said as such; silver keeps the old column's values
    project.source.rename("note", "remark")
    project.source.execute("UPDATE t SET rv = 7, remark = 'renamed' WHERE id = 3")
    log = _ok(project)
    assert "column 'note' (TEXT) no longer sent by the source (renamed to 'remark'?)" in log
    assert "column 'remark' added" in log
    silver = {r["id"]: r for r in project.rows("silver", "silver_t")}
    assert (silver[3]["note"], silver[3]["remark"], silver[3]["name"]) == ("new", "renamed", "cy")
    assert (silver[4]["note"], silver[4]["remark"]) == ("big", None)
    dropped = _dropped(project, "bronze_t")
    assert set(dropped) == {"name", "note"} and dropped["note"]["renamed_to"] == "remark"
    code, out = invoke(project.folder, "tables", "show", "bronze_t", "--sample", "0")
    assert code == 0, out
    columns = {line.split("│")[1].strip(): line for line in out.split("Schema changes")[0].splitlines()
               if line.count("│") > 2}
    assert "dropped" in columns["name"] and "dropped" in columns["note"] and "dropped" not in columns["remark"]
    assert [r["remark"] for r in project.rows("bronze", "bronze_t", ("id", "rv")) if r["id"] == 3] == [
        None, "renamed"]

    # narrowed and incompatible: refused before any commit, naming the column and both types
    before = (project.version("bronze", "bronze_t"), project.version("silver", "silver_t"))
    project.source.execute("UPDATE t SET qty = 7, rv = 8 WHERE id = 4")
    if kind != "sqlite":
        project.source.widen("qty", NARROW_INT[kind])
        summary = project.run()
        assert summary.status == "failed"
        log = project.log(summary)
        assert "bronze table bronze_t: column 'qty' narrowed from BIGINT to INTEGER" in log
        assert "Nothing was committed" in log and "--full-refresh" in log
        assert "lakehouse location exists" not in log
        assert (project.version("bronze", "bronze_t"), project.version("silver", "silver_t")) == before
    project.source.widen("amount", TEXT[kind])
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "failed"
    assert "bronze table bronze_t: column 'amount' changed from DECIMAL(12,4) to TEXT" in log
    assert "Cast it with casts: {amount: DECIMAL(12,4)}" in log and "--full-refresh" in log
    assert "lakehouse location exists" not in log
    assert (project.version("bronze", "bronze_t"), project.version("silver", "silver_t")) == before

    # the hint works: cast the columns back to the table's types and the rows flow again
    project.write(workflow(casts='{amount: "DECIMAL(12,4)", qty: BIGINT}'))
    _ok(project)
    silver = {r["id"]: r for r in project.rows("silver", "silver_t")}
    assert (silver[4]["qty"], silver[4]["amount"], silver[4]["name"]) == (7, d("12345678.1234"), "dee")


def test_fail_stops_every_change_before_commit(project: Project) -> None:
    _start(project, "fail")
    before = (project.version("bronze", "bronze_t"), project.version("silver", "silver_t"))
    project.source.execute("ALTER TABLE t ADD COLUMN note varchar(20)",
                           "INSERT INTO t (id, name, amount, qty, rv, note) VALUES (3, 'cy', 1, 1, 3, 'x')")
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "failed"
    assert "bronze table bronze_t: the source's columns changed and on_schema_change is 'fail': " \
           "column 'note' added (TEXT). Nothing was committed." in log
    project.source.execute("ALTER TABLE t DROP COLUMN note")
    project.source.drop("name")
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "failed"
    assert "column 'name' (TEXT) no longer sent by the source" in log
    assert (project.version("bronze", "bronze_t"), project.version("silver", "silver_t")) == before
    assert [r["id"] for r in project.rows("silver", "silver_t")] == [1, 2]
    assert _dropped(project, "bronze_t") == {}


def test_ignore_keeps_the_table_columns(project: Project) -> None:
    kind = project.source.kind
    _start(project, "ignore")
    project.source.execute("ALTER TABLE t ADD COLUMN note varchar(20)")
    project.source.widen("amount", WIDE_DECIMAL[kind])
    project.source.execute("INSERT INTO t (id, name, amount, qty, rv, note) VALUES (3, 'cy', 7.25, 1, 3, 'x')")
    _ok(project)
    assert project.rows("silver", "silver_t") == [
        {"id": 1, "name": "ada", "amount": Decimal("10.50"), "qty": 3, "rv": 1},
        {"id": 2, "name": "bob", "amount": Decimal("20.25"), "qty": 4, "rv": 2},
        {"id": 3, "name": "cy", "amount": Decimal("7.25"), "qty": 1, "rv": 3}]
    assert "note" not in pa.schema(project.table("bronze", "bronze_t").schema().to_arrow()).names
    # a value the table's type cannot hold exactly is refused, not rounded
    project.source.execute("INSERT INTO t (id, name, amount, qty, rv, note) VALUES (4, 'dee', 1.2345, 1, 4, 'y')")
    summary = project.run()
    assert summary.status == "failed"
    assert "a value of column 'amount' does not fit the table's type DECIMAL(10,2)" in project.log(summary)
    assert [r["id"] for r in project.rows("silver", "silver_t")] == [1, 2, 3]
    # incompatible types stop under ignore too
    project.source.execute("DELETE FROM t WHERE id = 4")
    project.source.widen("qty", TEXT[kind])
    project.source.execute("INSERT INTO t (id, name, amount, qty, rv) VALUES (5, 'eve', 1, '9', 5)")
    summary = project.run()
    assert summary.status == "failed"
    assert "column 'qty' changed from" in project.log(summary)


@pytest.fixture(params=["postgres", "mariadb"])
def server_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path, request.param, request)


def test_finer_timestamps_and_wider_floats(server_project: Project) -> None:
    project = server_project
    kind = project.source.kind
    stamp0, stamp6, single, double = (("timestamp(0)", "timestamp(6)", "real", "double precision")
                                      if kind == "postgres" else ("datetime(0)", "datetime(6)", "float", "double"))
    project.source.execute(f"CREATE TABLE t (id int PRIMARY KEY, seen {stamp0}, ratio {single}, rv int NOT NULL)",
                           "INSERT INTO t VALUES (1, '2024-05-01 10:00:01', 0.5, 1)")
    project.write(workflow())
    assert project.run().status == "success"
    project.source.widen("seen", stamp6)
    project.source.widen("ratio", double)
    project.source.execute("INSERT INTO t VALUES (2, '2024-05-01 10:00:01.123456', 0.1, 2)")
    log = _ok(project)
    assert "column 'ratio' widened from REAL to DOUBLE" in log
    import datetime as dt

    for layer, table in (("bronze", "bronze_t"), ("silver", "silver_t")):
        rows = project.rows(layer, table)
        assert [r["seen"] for r in rows] == [dt.datetime(2024, 5, 1, 10, 0, 1),
                                             dt.datetime(2024, 5, 1, 10, 0, 1, 123456)]
        assert [r["ratio"] for r in rows] == [0.5, 0.1]


def test_silver_under_fail_stops_when_bronze_evolves_a_drop(project: Project) -> None:
    _start(project)
    project.write(workflow("evolve", silver="fail"))
    silver_before = project.version("silver", "silver_t")
    project.source.drop("name")
    project.source.execute("UPDATE t SET amount = 1, rv = 3 WHERE id = 1")
    summary = project.run()
    log = project.log(summary)
    assert summary.status == "partial"  # bronze took the change, silver refused it
    assert [e.job for e in summary.failed] == ["clean"]
    assert "bronze_t: schema change: column 'name' (TEXT) no longer sent by the source" in log
    assert "silver table silver_t: the source's columns changed and on_schema_change is 'fail': column 'name'" in log
    assert project.version("silver", "silver_t") == silver_before
    assert [(r["id"], r["name"], r["amount"]) for r in project.rows("silver", "silver_t")] == [
        (1, "ada", Decimal("10.50")), (2, "bob", Decimal("20.25"))]


def test_not_null_columns_dropped_or_relaxed_take_nulls(project: Project) -> None:
    kind = project.source.kind
    project.source.execute(
        "CREATE TABLE t (id int PRIMARY KEY, code varchar(5) NOT NULL, label varchar(9) NOT NULL, rv int NOT NULL)",
        "INSERT INTO t VALUES (1, 'A1', 'one', 1)")
    project.write(workflow())
    assert project.run().status == "success"
    project.source.drop("label")
    if kind == "postgres":
        project.source.execute("ALTER TABLE t ALTER COLUMN code DROP NOT NULL")
    elif kind == "mariadb":
        project.source.execute("ALTER TABLE t MODIFY code varchar(5) NULL")
    project.source.execute("INSERT INTO t (id, code, rv) VALUES (2, NULL, 2)" if kind != "sqlite"
                           else "INSERT INTO t (id, code, rv) VALUES (2, 'B2', 2)")
    log = _ok(project)
    assert "rewrote 1 rows with the nullable columns" in log
    code2 = None if kind != "sqlite" else "B2"
    for layer, table in (("bronze", "bronze_t"), ("silver", "silver_t")):
        assert [(r["id"], r["code"], r["label"]) for r in project.rows(layer, table)] == [
            (1, "A1", "one"), (2, code2, None)]


def test_drift_on_an_s3_lakehouse(tmp_path: Path, lake: Lake) -> None:
    """Widen, drop and add on the object-store lakehouse too (and the local folder, as the reference)."""
    import sqlite3

    import yaml
    from tests.lakes import write_project

    db = tmp_path / "data" / "shop.db"
    db.parent.mkdir()
    source = Sqlite(db)
    source.execute(DDL["sqlite"], "INSERT INTO t VALUES (1, 'ada', 10.50, 3, 1)")
    sqlite3.connect(db).close()
    folder = write_project(tmp_path, lake, {"shop": {"type": "sqlite", "path": "data/shop.db"}})
    settings = yaml.safe_load((folder / "flowforge.yml").read_text(encoding="utf-8"))
    settings["data_roots"] = [*settings.get("data_roots", []), "data"]
    (folder / "flowforge.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    (folder / "workflows" / "drift.yml").write_text(workflow(), encoding="utf-8")

    def run() -> None:
        with Context.open(folder) as ctx:
            summary = ctx.run("drift")
            assert summary.status == "success", ctx.run_detail(summary.run_id).job_runs

    run()
    source.widen("amount", WIDE_DECIMAL["sqlite"])
    source.drop("name")
    source.execute("ALTER TABLE t ADD COLUMN note TEXT", "UPDATE t SET qty = 4, rv = 2, note = 'n' WHERE id = 1",
                   "INSERT INTO t (id, amount, qty, rv) VALUES (2, 1.2345, 1, 3)")
    run()
    with Context.open(folder) as ctx:
        silver = {r["id"]: r for r in ctx.table_detail("silver_t", 10).sample}
        bronze = ctx.table_detail("bronze_t", 0)
    assert (silver[1]["name"], silver[1]["amount"], silver[1]["qty"], silver[1]["note"]) == ("ada", "10.5000", 4, "n")
    assert (silver[2]["name"], silver[2]["amount"]) == (None, "1.2345")
    assert [c["name"] for c in bronze.columns if c.get("dropped")] == ["name"]


def test_a_table_replaced_each_run_still_follows_its_policy(project: Project) -> None:
    """A full read (write_disposition replace) swaps bronze for the source's rows each run: a dropped
    column stays, NULL and marked, and silver keeps its values."""
    _start(project)
    project.write(workflow().replace(", incremental: rv", ""))
    project.source.drop("name")
    project.source.execute("UPDATE t SET amount = 1, rv = 3 WHERE id = 1")
    log = _ok(project)
    assert "column 'name' (TEXT) no longer sent by the source" in log
    assert [(r["id"], r["name"], r["amount"]) for r in project.rows("bronze", "bronze_t")] == [
        (1, None, Decimal("1.00")), (2, None, Decimal("20.25"))]
    assert set(_dropped(project, "bronze_t")) == {"name"}
    assert [(r["id"], r["name"], r["amount"]) for r in project.rows("silver", "silver_t")] == [
        (1, "ada", Decimal("1.00")), (2, "bob", Decimal("20.25"))]


def test_a_full_refresh_of_silver_keeps_the_values_of_a_dropped_column(project: Project) -> None:
    _start(project)
    project.source.drop("name")
    project.source.execute("UPDATE t SET amount = 3, rv = 3 WHERE id = 1")
    _ok(project)
    with Context.open(project.folder) as ctx:
        summary = ctx.run("drift", full_refresh=True, tables=["silver_t"])
    assert summary.status == "success"
    # the newest bronze row of key 1 has no name; the rebuilt table still has the one it held
    assert [(r["id"], r["name"], r["amount"]) for r in project.rows("silver", "silver_t")] == [
        (1, "ada", Decimal("3.00")), (2, "bob", Decimal("20.25"))]
