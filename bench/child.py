"""Work the benchmark harness runs in child processes, one command per call.

Every command prints one JSON object as its last stdout line. Heavy imports (pyarrow, pandas,
psycopg, connectorx, ADBC, FlowForge) happen here, never in the harness, so each child's peak
RSS is its own (see measure.py).

    python bench/child.py prepare|prepare-mysql --server URL --db flowforge_bench --table T --rows N
    python bench/child.py connectorx --url URL --table T --out FILE [--partitions 2]
    python bench/child.py pandas|adbc --url URL --table T --out FILE
    python bench/child.py dlt --url URL --table T --out DIR --workdir DIR
    python bench/child.py copy|mysql_client --url URL --table T
    python bench/child.py inspect --kind delta|parquet|parquet_dir --path P [--project DIR] [--table T]
    python bench/child.py inspect-demo --dir DIR
    python bench/child.py breakdown --project DIR --connection C --table T --out DIR
    python bench/child.py profile-report --file F [--top N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

# One server-side statement: deterministic (arithmetic on the series value, md5 of it), no
# client round trips. 12 columns; fee, note and updated_at have NULLs.
CREATE_SQL = """
CREATE TABLE {table} (
    id          bigint NOT NULL,
    customer_id integer NOT NULL,
    amount      numeric(15,2) NOT NULL,
    fee         numeric(15,2),
    name        text NOT NULL,
    email       text NOT NULL,
    note        text,
    order_date  date NOT NULL,
    created_at  timestamp NOT NULL,
    updated_at  timestamp,
    is_active   boolean NOT NULL,
    status      varchar(20) NOT NULL
)"""

INSERT_SQL = """
INSERT INTO {table}
SELECT g,
       (g * 7919) % 100000 + 1,
       ((g * 104729) % 100000000)::numeric / 100,
       CASE WHEN g % 10 = 0 THEN NULL ELSE ((g * 31) % 1000000)::numeric / 100 END,
       'customer_' || md5(g::text),
       'user' || g || '@example.com',
       CASE WHEN g % 5 = 0 THEN NULL ELSE repeat(chr(97 + (g % 26)::int), 8 + (g % 40)::int) END,
       date '2020-01-01' + (g % 1500)::int,
       timestamp '2020-01-01' + g * interval '7 seconds',
       CASE WHEN g % 20 = 0 THEN NULL ELSE timestamp '2021-01-01' + g * interval '11 seconds' END,
       g % 3 <> 0,
       (ARRAY['new', 'paid', 'shipped', 'done', 'cancelled'])[1 + (g % 5)::int]
FROM generate_series(1::bigint, {rows}) AS g"""

CHECKS_SQL = "SELECT count(*), sum(id), sum(amount), sum(fee) FROM {table}"
CHECK_COLUMNS = ("id", "amount", "fee")


def emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str), flush=True)


# -- PostgreSQL setup ------------------------------------------------------------------------

def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Create the database and the table if needed; regenerate only on a wrong row count."""
    import psycopg

    server = args.server.rstrip("/")
    with closing(psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)) as conn:
        version = conn.execute("SELECT current_setting('server_version')").fetchone()
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.db,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{args.db}"')
    with closing(psycopg.connect(f"{server}/{args.db}", autocommit=True)) as conn:
        created, seconds = _ensure_table(conn, args.table, args.rows)
        checks = conn.execute(CHECKS_SQL.format(table=args.table)).fetchone()
        size = conn.execute("SELECT pg_total_relation_size(%s)", (args.table,)).fetchone()
        declared = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (args.table,)).fetchall()
    assert checks is not None and size is not None and version is not None
    return {"server_version": version[0], "created": created, "create_seconds": round(seconds, 2),
            "rows": checks[0], "checks": dict(zip(CHECK_COLUMNS, map(str, checks[1:]), strict=True)),
            "table_bytes": size[0], "declared": [list(d) for d in declared]}


def _ensure_table(conn: Any, table: str, rows: int) -> tuple[bool, float]:
    found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    if found and found[0] is not None:
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        if count and count[0] == rows:
            return False, 0.0
        conn.execute(f"DROP TABLE {table}")
    start = time.perf_counter()
    conn.execute(CREATE_SQL.format(table=table))
    conn.execute(INSERT_SQL.format(table=table, rows=int(rows)))
    conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    # Set hint bits and statistics now, so no contestant pays for the first read of new rows.
    conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    return True, time.perf_counter() - start


# -- MariaDB / MySQL setup --------------------------------------------------------------------

# The same 12 columns and values as the PostgreSQL table, from MariaDB's sequence engine.
MYSQL_CREATE_SQL = """
CREATE TABLE {table} (
    id BIGINT NOT NULL PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(15,2) NOT NULL,
    fee DECIMAL(15,2), name TEXT NOT NULL, email TEXT NOT NULL, note TEXT, order_date DATE NOT NULL,
    created_at DATETIME NOT NULL, updated_at DATETIME, is_active BOOLEAN NOT NULL, status VARCHAR(20) NOT NULL
) ENGINE=InnoDB"""

MYSQL_INSERT_SQL = """
INSERT INTO {table}
SELECT seq, (seq * 7919) % 100000 + 1, ((seq * 104729) % 100000000) / 100,
       IF(seq % 10 = 0, NULL, ((seq * 31) % 1000000) / 100),
       CONCAT('customer_', MD5(seq)), CONCAT('user', seq, '@example.com'),
       IF(seq % 5 = 0, NULL, REPEAT(CHAR(97 + seq % 26), 8 + seq % 40)),
       DATE '2020-01-01' + INTERVAL (seq % 1500) DAY,
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (seq * 7) SECOND,
       IF(seq % 20 = 0, NULL, TIMESTAMP '2021-01-01 00:00:00' + INTERVAL (seq * 11) SECOND),
       seq % 3 <> 0, ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'done', 'cancelled')
FROM seq_1_to_{rows}"""


def prepare_mysql(args: argparse.Namespace) -> dict[str, Any]:
    """Create the database and the table if needed (MariaDB: the sequence engine generates it)."""
    import pymysql

    parts = {**_mysql_parts(args.server.rstrip("/") + "/mysql"), "database": None}
    with closing(pymysql.connect(**parts, autocommit=True, connect_timeout=5)) as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{args.db}`")
        cur.execute(f"USE `{args.db}`")
        created, seconds = False, 0.0
        cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                    (args.db, args.table))
        exists = cur.fetchone()[0]
        count = None
        if exists:
            cur.execute(f"SELECT COUNT(*) FROM `{args.table}`")
            count = cur.fetchone()[0]
        if count != args.rows:
            start = time.perf_counter()
            cur.execute(f"DROP TABLE IF EXISTS `{args.table}`")
            cur.execute(MYSQL_CREATE_SQL.format(table=args.table))
            cur.execute(MYSQL_INSERT_SQL.format(table=args.table, rows=int(args.rows)))
            cur.execute(f"ANALYZE TABLE `{args.table}`")
            created, seconds = True, time.perf_counter() - start
        cur.execute(CHECKS_SQL.format(table=args.table))
        checks = cur.fetchone()
        cur.execute("SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s", (args.db, args.table))
        size = cur.fetchone()[0]
        cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (args.db, args.table))
        declared = cur.fetchall()
    return {"server_version": version, "created": created, "create_seconds": round(seconds, 2),
            "rows": checks[0], "checks": dict(zip(CHECK_COLUMNS, map(str, checks[1:]), strict=True)),
            "table_bytes": int(size), "declared": [list(d) for d in declared]}


def _mysql_parts(url: str) -> dict[str, Any]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306, "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "database": unquote(parts.path.lstrip("/")) or None}


# -- contestants -------------------------------------------------------------------------------

def run_connectorx(args: argparse.Namespace) -> dict[str, Any]:
    import connectorx as cx
    import pyarrow.parquet as pq

    start = time.perf_counter()
    extra: dict[str, Any] = {}
    if args.partitions > 1:
        extra = {"partition_on": "id", "partition_num": args.partitions}
    table = cx.read_sql(args.url, f"SELECT * FROM {args.table}", return_type="arrow", **extra)
    read_s = time.perf_counter() - start
    pq.write_table(table, args.out)
    return _written(args.out, table.num_rows, start, read_s)


def _sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL a user of pandas or dlt would write: psycopg 3 for PostgreSQL, the C
    driver mysqlclient for MariaDB when it is installed (PyMySQL otherwise)."""
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return url.replace("mysql://", "mysql+pymysql://", 1)
    return url.replace("mysql://", "mysql+mysqldb://", 1)


def run_pandas(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy

    start = time.perf_counter()
    engine = sqlalchemy.create_engine(_sqlalchemy_url(args.url))
    with engine.connect() as conn:
        frame = pd.read_sql(f"SELECT * FROM {args.table}", conn)
    read_s = time.perf_counter() - start
    frame.to_parquet(args.out, engine="pyarrow", index=False)
    engine.dispose()
    return _written(args.out, len(frame), start, read_s)


def run_dlt(args: argparse.Namespace) -> dict[str, Any]:
    """dlt's sql_database source with the pyarrow backend into its filesystem destination as
    Parquet: extract, normalize and load, as a dlt user runs it."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.sql_database import sql_table

    start = time.perf_counter()
    resource = sql_table(credentials=_sqlalchemy_url(args.url), table=args.table, backend="pyarrow",
                         chunk_size=100_000)
    pipeline = dlt.pipeline(pipeline_name=f"bench_{os.getpid()}", pipelines_dir=str(Path(args.workdir) / "dlt"),
                            destination=dlt.destinations.filesystem(bucket_url=Path(args.out).resolve().as_uri()),
                            dataset_name="bench")
    pipeline.run(resource, loader_file_format="parquet")
    files = _dlt_files(args.out, args.table)
    return {"work_seconds": round(time.perf_counter() - start, 3), "files": len(files),
            "bytes": sum(Path(f).stat().st_size for f in files)}


def _dlt_files(folder: str, table: str) -> list[str]:
    return sorted(str(p) for p in Path(folder).rglob("*.parquet") if table in p.parent.name)


def run_mysql_client(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: the server's C client with ``--quick`` (row by row, no buffering) into /dev/null."""
    parts = _mysql_parts(args.url)
    cmd = ["mariadb", "-h", parts["host"], "-P", str(parts["port"]), "-u", parts["user"], "--quick",
           "--batch", "--skip-column-names", parts["database"], "-e", f"SELECT * FROM {args.table}"]
    env = {**os.environ, "MYSQL_PWD": parts["password"]}
    start = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run(cmd, stdout=sink, check=True, env=env)
    return {"work_seconds": round(time.perf_counter() - start, 3), "bytes": None}


def run_adbc(args: argparse.Namespace) -> dict[str, Any]:
    """The driver FlowForge reads with, straight to a ParquetWriter: no type fixes, no Delta."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rows = 0
    with closing(adbc.connect(args.url, autocommit=True)) as conn, closing(conn.cursor()) as cur:
        cur.execute(f"SELECT * FROM {args.table}")
        reader = cur.fetch_record_batch()
        schema = pa.schema([pa.field(f.name, _storage(f.type), f.nullable) for f in reader.schema])
        with pq.ParquetWriter(args.out, schema) as writer:
            for batch in reader:
                arrays = [_storage_array(c) for c in batch.columns]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
    return _written(args.out, rows, start, None)


def _storage(type_: Any) -> Any:
    import pyarrow as pa

    return type_.storage_type if isinstance(type_, pa.BaseExtensionType) else type_


def _storage_array(array: Any) -> Any:
    import pyarrow as pa

    return array.storage if isinstance(array, pa.ExtensionArray) else array


def run_copy(args: argparse.Namespace) -> dict[str, Any]:
    """The floor: the server's binary COPY stream, read by psycopg and written to /dev/null."""
    import psycopg

    start = time.perf_counter()
    total = 0
    with closing(psycopg.connect(args.url, autocommit=True)) as conn, \
            open("/dev/null", "wb") as sink, conn.cursor() as cur, \
            cur.copy(f"COPY (SELECT * FROM {args.table}) TO STDOUT (FORMAT binary)") as copy:
        for block in copy:
            sink.write(block)
            total += len(block)
    return {"work_seconds": round(time.perf_counter() - start, 3), "bytes": total}


def _written(path: str, rows: int, start: float, read_s: float | None) -> dict[str, Any]:
    seconds = time.perf_counter() - start
    return {"work_seconds": round(seconds, 3), "read_seconds": round(read_s, 3) if read_s else None,
            "rows": rows, "bytes": Path(path).stat().st_size}


# -- inspecting outputs --------------------------------------------------------------------------

def inspect(args: argparse.Namespace) -> dict[str, Any]:
    """Rows, bytes, Arrow types, codec and column sums of a contestant's output."""
    if args.kind == "delta":
        files = _delta_files(args.path)
    elif args.kind == "parquet_dir":
        files = _dlt_files(args.path, args.table)
    else:
        files = [args.path]
    out = _parquet_facts(files)
    if args.project:
        out["run"] = _last_run(args.project)
    return out


def _delta_files(location: str) -> list[str]:
    from deltalake import DeltaTable

    table = DeltaTable(location)
    return [uri.removeprefix("file://") for uri in table.file_uris()]


def _parquet_facts(files: list[str]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    meta = pq.ParquetFile(files[0]).metadata
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    wanted = [c for c in CHECK_COLUMNS if c in schema.names]
    data = pa.concat_tables(pq.read_table(f, columns=wanted) for f in files)
    sums = {}
    for name in wanted:
        column = data.column(name)
        ok = pa.types.is_integer(column.type) or pa.types.is_decimal(column.type) or \
            pa.types.is_floating(column.type)
        sums[name] = str(pc.sum(column).as_py()) if ok else None
    return {"rows": rows, "bytes": sum(Path(f).stat().st_size for f in files), "files": len(files),
            "row_groups": sum(pq.ParquetFile(f).metadata.num_row_groups for f in files),
            "codec": meta.row_group(0).column(0).compression if meta.num_row_groups else None,
            "schema": [[f.name, str(f.type)] for f in schema], "sums": sums}


def _last_run(project: str) -> dict[str, Any]:
    from flowforge.core.context import Context

    with Context.open(project) as ctx:
        runs = ctx.runs(limit=1)
        if not runs:
            return {}
        run = runs[0]
        jobs = [{"job": j.job_name, "status": j.status, "rows": j.rows_written,
                 "seconds": _span(j.started_at, j.ended_at)} for j in run.job_runs]
        return {"status": run.status, "seconds": _span(run.started_at, run.ended_at),
                "rows_written": run.rows_written, "jobs": jobs}


def _span(start: Any, end: Any) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def inspect_demo(args: argparse.Namespace) -> dict[str, Any]:
    from flowforge.core.context import Context

    with Context.open(args.dir) as ctx:
        tables = {t.name: t.rows for t in ctx.tables()}
        layers = {t.name: t.layer for t in ctx.tables()}
    bronze = {name: rows for name, rows in tables.items() if layers[name] == "bronze"}
    return {"bronze_rows": sum(bronze.values()), "bronze": bronze, "tables": tables,
            "run": _last_run(args.dir)}


# -- where FlowForge's time goes ------------------------------------------------------------------

def breakdown(args: argparse.Namespace) -> dict[str, Any]:
    """FlowForge's read path in stages, through the Context API: plan; connector batches only;
    the same batches to a plain ParquetWriter; raw ADBC batches without the type fixes."""
    from flowforge.connectors.base import ReadRequest
    from flowforge.core.context import Context

    out: dict[str, Any] = {}
    with Context.open(args.project) as ctx:
        connector = ctx.connector(args.connection)
        request = ReadRequest(table=args.table, batch_size=100_000)
        start = time.perf_counter()
        plan = connector.plan(request, None)
        out["plan_seconds"] = round(time.perf_counter() - start, 3)
        out["read_seconds"], rows = _timed(lambda: _batches(connector, plan), None)
        target = Path(args.out) / "breakdown.parquet"
        out["read_parquet_seconds"], _ = _timed(lambda: _batches(connector, plan), target, plan.schema)
        out["raw_adbc_seconds"], _ = _timed(lambda: _raw_adbc(connector, args.table), None)
        out.update(_write_stages(list(_batches(connector, plan)), Path(args.out)))
        connector.close()
    out["rows"] = rows
    return out


def _write_stages(batches: list[Any], folder: Path) -> dict[str, float]:
    """The writers alone, on batches already in memory: pyarrow's Parquet writer, and the
    Delta writer FlowForge uses (delta-rs), same data, default settings."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    table = pa.Table.from_batches(batches)
    start = time.perf_counter()
    pq.write_table(table, str(folder / "stage.parquet"))
    parquet_s = time.perf_counter() - start
    start = time.perf_counter()
    write_deltalake(str(folder / "stage_delta"), table)
    delta_s = time.perf_counter() - start
    start = time.perf_counter()
    write_deltalake(str(folder / "stage_delta_reader"), pa.RecordBatchReader.from_batches(table.schema, batches))
    reader_s = time.perf_counter() - start
    for name in ("stage.parquet", "stage_delta", "stage_delta_reader"):
        target = folder / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    return {"write_parquet_only_seconds": round(parquet_s, 3), "write_delta_table_only_seconds": round(delta_s, 3),
            "write_delta_reader_only_seconds": round(reader_s, 3)}


def _batches(connector: Any, plan: Any) -> Iterator[Any]:
    for part in connector.read(plan):
        yield from part.batches


def _raw_adbc(connector: Any, table: str) -> Iterator[Any]:
    import adbc_driver_postgresql.dbapi as adbc

    with closing(adbc.connect(connector.config.libpq_url(), autocommit=True)) as conn, \
            closing(conn.cursor()) as cur:
        cur.execute(f"SELECT * FROM {table}")
        yield from cur.fetch_record_batch()


def _timed(make: Callable[[], Iterator[Any]], target: Path | None, schema: Any = None) -> tuple[float, int]:
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rows = 0
    writer = pq.ParquetWriter(str(target), schema) if target is not None else None
    for batch in make():
        rows += batch.num_rows
        if writer is not None:
            writer.write_batch(batch)
    if writer is not None:
        writer.close()
    return round(time.perf_counter() - start, 3), rows


def profile_report(args: argparse.Namespace) -> dict[str, Any]:
    import io
    import pstats

    rows = []
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(args.file, stream=buf)
        stats.sort_stats(key).print_stats(args.top)
        print(f"--- cProfile, sorted by {key} ---")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[-6000:])
        rows.append(key)
    return {"sorted_by": rows}


# -- command line -----------------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "prepare": prepare, "prepare-mysql": prepare_mysql, "connectorx": run_connectorx, "pandas": run_pandas,
    "adbc": run_adbc, "dlt": run_dlt, "copy": run_copy, "mysql_client": run_mysql_client, "inspect": inspect,
    "inspect-demo": inspect_demo, "breakdown": breakdown, "profile-report": profile_report,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="child.py")
    parser.add_argument("command", choices=sorted(COMMANDS))
    for flag in ("--server", "--db", "--table", "--url", "--out", "--kind", "--path", "--project",
                 "--dir", "--connection", "--file", "--workdir"):
        parser.add_argument(flag)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--top", type=int, default=20)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        emit(COMMANDS[args.command](args))
    except Exception as exc:
        emit({"error": f"{type(exc).__name__}: {exc}".strip().splitlines()[0]})
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
