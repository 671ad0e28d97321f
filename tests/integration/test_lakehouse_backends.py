"""One lakehouse suite, two backends: a local folder and an S3-protocol server (moto on 127.0.0.1).

Every test runs on both: the same workflows, file sources, catalog, queries and failure
paths must behave the same whether the Delta tables live on disk or in a bucket.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.lakes import Lake, write_project
from tests.s3_server import S3Server, missing_packages
from typer.testing import CliRunner

from flowforge.cli.main import app
from flowforge.core.catalog import table_detail
from flowforge.core.context import Context
from flowforge.errors import StorageError
from flowforge.storage import LakehouseStore

EXAMPLE = """\
name: example
jobs:
  - name: ingest_orders
    kind: ingest
    connection: landing
    tables:
      - {files: "orders*.csv", target: bronze_orders, batch_size: 2}
  - name: clean_orders
    kind: silver
    tables:
      - {target: silver_orders, source: bronze_orders, keys: [order_id], order_by: updated_at}
  - name: daily_revenue
    kind: gold
    tables:
      - target: gold_daily_revenue
        sql: |
          SELECT CAST(updated_at AS DATE) AS day, count(*) AS orders, sum(amount) AS revenue
          FROM silver_orders GROUP BY 1 ORDER BY 1
"""

ORDERS = b"""order_id,customer,amount,updated_at
1,alice,19.99,2026-01-05 10:00:00
2,bob,5.00,2026-01-05 11:30:00
3,carol,120.50,2026-01-06 09:15:00
"""
MORE_ORDERS = b"""order_id,customer,amount,updated_at
1,alice,29.99,2026-01-05 12:00:00
4,dave,7.25,2026-01-06 10:00:00
"""


def _project(tmp_path: Path, lake: Lake, workflow: str = EXAMPLE, fmt: str = "csv", **settings: object) -> Path:
    project = write_project(tmp_path / "project", lake, {"landing": lake.files_connection(fmt)}, **settings)
    (project / "workflows" / "example.yml").write_text(workflow)
    return project


def _rows(ctx: Context, sql: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = ctx.query(sql).to_pylist()
    return rows


def test_bronze_silver_gold_catalog_and_queries(tmp_path: Path, lake: Lake) -> None:
    lake.put("orders.csv", ORDERS)
    project = _project(tmp_path, lake)
    with Context.open(project) as ctx:
        first = ctx.run("example")
        assert first.status == "success", [e.error for e in first.events]
        lake.put("orders_2.csv", MORE_ORDERS)
        second = ctx.run("example")
        assert second.status == "success", [e.error for e in second.events]

        # bronze appended only the new file; silver merged the update to order 1
        bronze = _rows(ctx, "SELECT _source_file, count(*) AS n FROM bronze_orders GROUP BY 1 ORDER BY 1")
        assert bronze == [{"_source_file": "orders.csv", "n": 3}, {"_source_file": "orders_2.csv", "n": 2}]
        silver = _rows(ctx, "SELECT order_id, amount FROM silver_orders ORDER BY order_id")
        assert silver == [{"order_id": 1, "amount": Decimal("29.99")}, {"order_id": 2, "amount": Decimal("5.00")},
                          {"order_id": 3, "amount": Decimal("120.50")}, {"order_id": 4, "amount": Decimal("7.25")}]
        gold = _rows(ctx, "SELECT day, orders, revenue FROM gold_daily_revenue ORDER BY day")
        assert [(str(r["day"]), r["orders"], r["revenue"]) for r in gold] == [
            ("2026-01-05", 2, Decimal("34.99")), ("2026-01-06", 2, Decimal("127.75"))]

        # the catalog, the metadata mirror and lineage name the real locations
        tables = {t.name: t for t in ctx.tables()}
        assert set(tables) == {"bronze_orders", "silver_orders", "gold_daily_revenue"}
        assert tables["bronze_orders"].location == f"{lake.root}/bronze/bronze_orders"
        assert tables["silver_orders"].rows == 4 and tables["bronze_orders"].version == 1
        asset = ctx.metadata.get_asset("gold_daily_revenue")
        assert asset is not None and asset.location == f"{lake.root}/gold/gold_daily_revenue"
        nodes = {n["id"]: n for n in ctx.lineage("example")["nodes"]}
        assert nodes["silver_orders"]["location"] == f"{lake.root}/silver/silver_orders"

        # previews read the table where it lives
        preview = ctx.store.preview("silver", "silver_orders", limit=2)
        assert preview.num_rows == 2 and "amount" in preview.column_names
        detail = table_detail(ctx, "gold_daily_revenue", sample=5)
        assert detail.location.startswith(lake.root) and len(detail.sample) == 2

        # nothing new: bronze reads nothing and silver keeps its version
        third = ctx.run("example")
        assert third.status == "success"
        assert ctx.store.open("silver", "silver_orders").version() == 1  # type: ignore[union-attr]
        assert "no new data" in ctx.run_detail(third.run_id).job_runs[0].log


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_file_source_reads_each_file_version_exactly_once(tmp_path: Path, lake: Lake, fmt: str) -> None:
    ext = {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[fmt]
    workflow = (f"name: example\njobs:\n  - name: land\n    kind: ingest\n    connection: landing\n    tables:\n"
                f"      - {{files: 'raw/batch=*.{ext}', target: bronze_products}}\n")
    project = _project(tmp_path, lake, workflow, fmt)

    def batch(*rows: tuple[int, str, str]) -> bytes:
        records = [{"id": i, "name": n, "price": p} for i, n, p in rows]
        if fmt == "json":
            return "".join(json.dumps(r).replace(f'"{r["price"]}"', r["price"]) + "\n" for r in records).encode()
        if fmt == "csv":
            return ("id,name,price\n" + "".join(f"{i},{n},{p}\n" for i, n, p in rows)).encode()
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [r[0] for r in rows], "name": [r[1] for r in rows],
                                 "price": pa.array([Decimal(r[2]) for r in rows], pa.decimal128(10, 2))}), buf)
        return buf.getvalue()

    def landed(ctx: Context) -> list[tuple[str, int]]:
        return [(r["_source_file"], r["n"]) for r in _rows(  # type: ignore[misc]
            ctx, "SELECT _source_file, count(*) AS n FROM bronze_products GROUP BY 1 ORDER BY 1")]

    with Context.open(project) as ctx:
        lake.put(f"raw/batch=1.{ext}", batch((1, "pen", "1.50"), (2, "ink", "12.25")))
        lake.put(f"other/batch=9.{ext}", batch((9, "not matched", "0.01")))
        assert ctx.run("example").status == "success"
        assert landed(ctx) == [(f"raw/batch=1.{ext}", 2)]
        prices = _rows(ctx, "SELECT price FROM bronze_products ORDER BY id")
        assert [r["price"] for r in prices] == [Decimal("1.50"), Decimal("12.25")]  # exact, not float

        lake.put(f"raw/batch=2.{ext}", batch((3, "cap", "3.00")))
        assert ctx.run("example").status == "success"
        assert landed(ctx) == [(f"raw/batch=1.{ext}", 2), (f"raw/batch=2.{ext}", 1)]  # only the new file

        # the same key uploaded again with new content is a new file version: read once more
        lake.put(f"raw/batch=1.{ext}", batch((1, "pen", "1.75"), (2, "ink", "12.25"), (5, "pad", "4.10")))
        assert ctx.run("example").status == "success"
        assert landed(ctx) == [(f"raw/batch=1.{ext}", 5), (f"raw/batch=2.{ext}", 1)]

        run = ctx.run("example")
        assert run.status == "success"
        assert "no new data" in ctx.run_detail(run.run_id).job_runs[0].log
        assert ctx.store.open("bronze", "bronze_products").version() == 2  # type: ignore[union-attr]


def test_glob_patterns(tmp_path: Path, lake: Lake) -> None:
    from flowforge.connectors.base import ReadRequest

    for rel in ("top.csv", "a/x.csv", "a/b/y.csv", "c/z.csv", "a/notes.txt"):
        lake.put(rel, b"id\n1\n")
    project = _project(tmp_path, lake)
    with Context.open(project) as ctx:
        connector = ctx.connector("landing")

        def matched(pattern: str) -> list[str]:
            plan = connector.plan(ReadRequest(files=pattern), None)
            return sorted(connector.folder.relative(f) for f in plan.files)  # type: ignore[attr-defined]

        assert matched("**/*.csv") == ["a/b/y.csv", "a/x.csv", "c/z.csv", "top.csv"]
        assert matched("a/*.csv") == ["a/x.csv"]
        assert matched("a/**/*.csv") == ["a/b/y.csv", "a/x.csv"]
        assert matched("?op.csv") == ["top.csv"]
        assert matched("[ac]/*.csv") == ["a/x.csv", "c/z.csv"]
        assert matched("a/x.csv") == ["a/x.csv"]
        # every file the connection can read, whatever its extension (the .txt too)
        assert [t.name for t in connector.list_tables()] == ["a/b/y.csv", "a/notes.txt", "a/x.csv", "c/z.csv",
                                                             "top.csv"]


def _failing_reader(good_batches: int) -> pa.RecordBatchReader:
    schema = pa.schema([("id", pa.int64()), ("note", pa.string())])

    def batches():  # type: ignore[no-untyped-def]
        for i in range(good_batches):
            yield pa.record_batch([pa.array(range(i * 1000, (i + 1) * 1000)), pa.array(["x"] * 1000)], schema=schema)
        raise OSError("the source connection dropped")

    return pa.RecordBatchReader.from_batches(schema, batches())


def test_failure_mid_write_leaves_no_partial_version(lake: Lake) -> None:
    store = lake.store()
    good = pa.table({"id": pa.array([1, 2], pa.int64()), "note": ["a", "b"]})
    store.append("bronze", "events", good, {"watermark": 1})
    with pytest.raises(Exception, match="source connection dropped"):
        store.append("bronze", "events", _failing_reader(3), {"watermark": 2})
    dt = store.open("bronze", "events")
    assert dt is not None and dt.version() == 0
    assert dt.to_pyarrow_table().num_rows == 2
    assert store.progress("bronze", "events", "watermark") == (1, 0)
    # the table takes the next write as if nothing happened
    assert store.append("bronze", "events", good, {"watermark": 3}).version == 1


@pytest.mark.slow
def test_killed_mid_run_leaves_no_partial_version(tmp_path: Path, lake: Lake) -> None:
    lake.put("orders.csv", ORDERS)
    project = _project(tmp_path, lake)
    env = {**os.environ, "FLOWFORGE_FAULT": "bronze.batch:2"}
    cmd = [sys.executable, "-c", "from flowforge.cli.main import app; app(prog_name='flowforge')",
           "-p", str(project), "run", "example"]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    with Context.open(project) as ctx:
        assert ctx.store.open("bronze", "bronze_orders") is None  # no version at all, not a partial one
        assert ctx.run("example").status == "success"
        assert _rows(ctx, "SELECT count(*) AS n FROM bronze_orders") == [{"n": 3}]


def test_unreachable_or_unusable_location_is_one_clear_error(tmp_path: Path, lake: Lake) -> None:
    if lake.kind == "local":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the lakehouse should be")
        cases = [(f"{blocker}/lake", {}, str(blocker))]
    else:
        assert lake.server is not None
        cases = [
            (f"s3://no-such-bucket-{lake.bucket}/lake", lake.options, "does not exist"),
            (lake.root, {**lake.options, "aws_endpoint": "http://127.0.0.1:9"}, "cannot reach"),
        ]
    for root, options, reason in cases:
        project = write_project(tmp_path / f"p{abs(hash(root + str(options)))}", lake,
                                {"landing": lake.files_connection()}, lakehouse=root,
                                **({"storage": options} if options else {}))
        (project / "workflows" / "example.yml").write_text(EXAMPLE)
        lake.put("orders.csv", ORDERS)
        with Context.open(project) as ctx, pytest.raises(StorageError) as err:
            ctx.store.append("bronze", "t", pa.table({"a": [1]}), {})
        message = str(err.value)
        assert root in message and reason in message, message
        assert "Traceback" not in message and "\n  → " in message and message.count("\n") == 1
        secret = options.get("aws_secret_access_key")
        assert not secret or secret not in message
        # a run says the same, never the secret
        result = CliRunner().invoke(app, ["-p", str(project), "run", "example"], env={"COLUMNS": "300"})
        assert result.exit_code == 1 and root in result.output and "Traceback" not in result.output
        assert not secret or secret not in result.output


@pytest.fixture(scope="module")
def s3_auth() -> Iterator[tuple[S3Server, dict[str, dict[str, str]]]]:
    """A second S3 server that checks every signature: one writer key, one read-only key."""
    problem = missing_packages()
    if problem:
        if os.environ.get("FLOWFORGE_REQUIRE_S3"):
            pytest.fail(problem)
        pytest.skip(problem)
    with S3Server() as server:
        server.create_bucket("secured")
        iam = server.client("iam")
        keys = {}
        for user, actions in (("writer", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket"])):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = server.options(key["AccessKeyId"], key["SecretAccessKey"])
        server.require_auth()
        yield server, keys


@pytest.mark.s3
def test_credentials_and_permissions_are_one_clear_error(s3_auth: tuple[S3Server, dict[str, dict[str, str]]]) -> None:
    _, keys = s3_auth
    root = "s3://secured/lake"
    table = pa.table({"a": [1, 2]})
    LakehouseStore(root, keys["writer"]).append("bronze", "t", table, {})  # the right key works
    wrong_secret = {**keys["writer"], "aws_secret_access_key": "wrong-secret-value-123"}
    unknown_key = {**keys["writer"], "aws_access_key_id": "AKIAUNKNOWNKEY000000"}
    cases = [(wrong_secret, "rejected the credentials (SignatureDoesNotMatch)"),
             (unknown_key, "rejected the credentials (InvalidAccessKeyId)"),
             (keys["reader"], "access denied (AccessDenied)")]
    for options, reason in cases:
        store = LakehouseStore(root, options)
        with pytest.raises(StorageError) as err:
            store.append("bronze", "t", table, {})
        message = str(err.value)
        assert f"{root}/bronze/t" in message and reason in message, message
        assert options["aws_secret_access_key"] not in message
    # reading works for the read-only key; the table kept exactly the one good commit
    dt = LakehouseStore(root, keys["reader"]).open("bronze", "t")
    assert dt is not None and dt.version() == 0 and dt.to_pyarrow_table().num_rows == 2


@pytest.mark.s3
def test_file_source_with_wrong_credentials(s3_auth: tuple[S3Server, dict[str, dict[str, str]]]) -> None:
    from flowforge.connectors import open_connector
    from flowforge.connectors.config import parse_connection
    from flowforge.errors import AuthenticationFailed

    _, keys = s3_auth
    secret = "wrong-secret-value-456"
    config = parse_connection({"type": "files", "path": "s3://secured/landing", "format": "csv",
                               **keys["writer"], "aws_secret_access_key": secret, "aws_allow_http": True})
    assert secret not in repr(config)
    with pytest.raises(AuthenticationFailed) as err:
        open_connector("landing", config).test()
    assert "s3://secured/landing" in str(err.value) and "SignatureDoesNotMatch" in str(err.value)
    assert secret not in str(err.value)


@pytest.mark.s3
@pytest.mark.slow
def test_demo_runs_against_object_storage(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    from deltalake import DeltaTable

    options = s3_server.options()
    root = f"s3://{s3_bucket}/demo"
    args = ["demo", "--dir", str(tmp_path / "demo"), "--lakehouse", root]
    for key, value in options.items():
        args += ["--storage", f"{key}={value}"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "PASS=4 ERROR=0" in result.output and f"{root}/gold/gold_customer_360" in result.output
    secret = options["aws_secret_access_key"]
    project_file = (tmp_path / "demo" / "flowforge.yml").read_text()
    assert secret not in result.output and secret not in project_file
    assert f"lakehouse: {root}" in project_file and "${LAKEHOUSE_AWS_SECRET_ACCESS_KEY}" in project_file
    assert oct((tmp_path / "demo" / ".env").stat().st_mode & 0o777) == "0o600"
    gold = DeltaTable(f"{root}/gold/gold_customer_360", storage_options=options)
    assert gold.to_pyarrow_table().num_rows == 500
    assert not (tmp_path / "demo" / "lakehouse").exists(), "nothing landed on local disk"
    with Context.open(tmp_path / "demo") as ctx:
        assert _rows(ctx, "SELECT count(*) AS n FROM gold_customer_360") == [{"n": 500}]


@pytest.mark.s3
def test_credentials_from_the_environment(s3_auth: tuple[S3Server, dict[str, dict[str, str]]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, keys = s3_auth
    writer = keys["writer"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", writer["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", writer["aws_secret_access_key"])
    without_keys = {k: v for k, v in writer.items() if k not in ("aws_access_key_id", "aws_secret_access_key")}
    store = LakehouseStore("s3://secured/from-env", without_keys)
    assert store.append("bronze", "t", pa.table({"a": [1]}), {}).version == 0
    assert [t for _, t in store.tables()] == ["t"]


@pytest.mark.s3
def test_a_single_table_in_object_storage(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    lake = Lake("local", str(tmp_path / "lakehouse"), str(tmp_path / "landing"))
    lake.put("orders.csv", ORDERS)
    bronze = f"s3://{s3_bucket}/bronze/bronze_orders"
    project = _project(tmp_path, lake, storage=s3_server.options(),
                       table_locations={"bronze": {"bronze_orders": bronze}})
    with Context.open(project) as ctx:
        assert ctx.run("example").status == "success"
        locations = {t.name: t.location for t in ctx.tables()}
        assert locations == {"bronze_orders": bronze,
                             "silver_orders": f"{lake.root}/silver/silver_orders",
                             "gold_daily_revenue": f"{lake.root}/gold/gold_daily_revenue"}
        assert _rows(ctx, "SELECT count(*) AS n FROM silver_orders") == [{"n": 3}]
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="bronze/bronze_orders/_delta_log/")
    assert listed["KeyCount"] >= 1
