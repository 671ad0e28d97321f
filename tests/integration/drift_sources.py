"""Three real sources whose columns change between runs (PostgreSQL, MariaDB, SQLite), and a
project that lands one of their tables in bronze and merges it into silver."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from tests.cli_helpers import init_project

from flowforge.core.context import Context
from flowforge.runner.executor import RunSummary

MYSQL_ADMIN = os.environ.get("FLOWFORGE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
AUDIT = ("_batch_id", "_ingestion_time", "_source_system", "_source_file", "_file_modified_time",
         "_silver_updated_at")


class Source:
    """One database: SQL in its own dialect for each change a source makes to its columns."""

    kind = ""

    def execute(self, *sql: str) -> None:
        raise NotImplementedError

    def connection(self) -> dict[str, Any]:
        raise NotImplementedError

    # dialect differences, overridden below
    def widen(self, column: str, type_: str) -> None:
        self.execute(f"ALTER TABLE t ALTER COLUMN {column} TYPE {type_}")

    def drop(self, column: str) -> None:
        self.execute(f"ALTER TABLE t DROP COLUMN {column}")

    def rename(self, old: str, new: str) -> None:
        self.execute(f"ALTER TABLE t RENAME COLUMN {old} TO {new}")


class Postgres(Source):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    def execute(self, *sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in sql:
                conn.execute(statement)  # type: ignore[arg-type]

    def connection(self) -> dict[str, Any]:
        return {"type": "postgres", "url": self.url}


class Mariadb(Source):
    kind = "mariadb"

    def __init__(self, database: str) -> None:
        self.database = database

    @staticmethod
    def admin(database: str | None = None) -> Any:
        import pymysql

        from flowforge.connectors.sql.mysql.config import MysqlConfig

        args = MysqlConfig(type="mysql", url=MYSQL_ADMIN).connect_args()
        return pymysql.connect(host=args["host"], port=args["port"], user=args["user"], password=args["password"],
                               database=database, autocommit=True, connect_timeout=5)

    def execute(self, *sql: str) -> None:
        with self.admin(self.database) as conn, conn.cursor() as cur:
            for statement in sql:
                cur.execute(statement)

    def connection(self) -> dict[str, Any]:
        base = MYSQL_ADMIN.partition("?")[0].rsplit("/", 1)[0]
        return {"type": "mysql", "url": f"{base}/{self.database}"}

    def widen(self, column: str, type_: str) -> None:
        self.execute(f"ALTER TABLE t MODIFY {column} {type_}")


class Sqlite(Source):
    """SQLite cannot change a column's type in place: the table is rebuilt, as its docs say to."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, *sql: str) -> None:
        with sqlite3.connect(self.path) as conn:
            for statement in sql:
                conn.execute(statement)
        conn.close()

    def connection(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": f"data/{self.path.name}"}

    def widen(self, column: str, type_: str) -> None:
        with sqlite3.connect(self.path) as conn:
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 't'").fetchone()[0]
            cols = [r[1] for r in conn.execute("PRAGMA table_info(t)")]
            types = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(t)")}
            pk = [r[1] for r in conn.execute("PRAGMA table_info(t)") if r[5]]
            parts = [f"{c} {type_ if c == column else types[c]}" for c in cols]
            conn.execute(f"CREATE TABLE t_new ({', '.join(parts)}, PRIMARY KEY ({', '.join(pk)}))")
            conn.execute(f"INSERT INTO t_new SELECT {', '.join(cols)} FROM t")
            conn.execute("DROP TABLE t")
            conn.execute("ALTER TABLE t_new RENAME TO t")
            assert ddl
        conn.close()


@contextmanager
def source_of(kind: str, request: pytest.FixtureRequest, project: Path) -> Iterator[Source]:
    if kind == "postgres":
        url = request.getfixturevalue("pg_database")
        yield Postgres(url)
    elif kind == "mariadb":
        pytest.importorskip("pymysql")
        name = f"ff_drift_{uuid.uuid4().hex[:10]}"
        try:
            admin = Mariadb.admin()
        except Exception as exc:  # no server: skipped with the reason, as the other MariaDB tests do
            if os.environ.get("FLOWFORGE_REQUIRE_MYSQL"):
                raise
            pytest.skip(f"MariaDB not reachable at {MYSQL_ADMIN}: {exc}")
        with admin, admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        try:
            yield Mariadb(name)
        finally:
            with Mariadb.admin() as admin, admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    else:
        yield Sqlite(project / "data" / "shop.db")


@dataclass
class Project:
    folder: Path
    source: Source

    def write(self, workflow: str) -> None:
        (self.folder / "workflows" / "drift.yml").write_text(workflow, encoding="utf-8")

    def run(self, workflow: str = "drift") -> RunSummary:
        with Context.open(self.folder) as ctx:
            return ctx.run(workflow)

    def log(self, summary: RunSummary) -> str:
        """Everything the run logged and the errors it ended with, as the CLI shows them."""
        with Context.open(self.folder) as ctx:
            run = ctx.run_detail(summary.run_id)
        return "\n".join(f"{j.log or ''}\n{j.error or ''}" for j in run.job_runs)

    def table(self, layer: str, name: str) -> DeltaTable:
        return DeltaTable(str(self.folder / "lakehouse" / layer / name))

    def rows(self, layer: str, name: str, order: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
        data = self.table(layer, name).to_pyarrow_table()
        keep = [c for c in data.column_names if c not in AUDIT]
        rows = data.select(keep).to_pylist()
        return sorted(rows, key=lambda r: tuple((r[c] is None, r[c]) for c in order if c in r))

    def version(self, layer: str, name: str) -> int:
        return self.table(layer, name).version()


def make_project(tmp_path: Path, source_kind: str, request: pytest.FixtureRequest) -> Iterator[Project]:
    import yaml

    folder = init_project(tmp_path / "p")
    (folder / "workflows" / "example.yml").unlink()
    with source_of(source_kind, request, folder) as source:
        settings = yaml.safe_load((folder / "flowforge.yml").read_text(encoding="utf-8"))
        settings["connections"] = {"shop": source.connection()}
        (folder / "flowforge.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        yield Project(folder, source)
