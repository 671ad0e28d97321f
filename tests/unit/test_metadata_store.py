"""Metadata store behaviour, run on a temporary SQLite file.

``MetadataStoreSuite`` is the backend-neutral suite: a backend subclasses it and provides the
``store`` (migrated, empty) and ``fresh_url`` (an empty database) fixtures, as
tests/integration/test_metadata_postgres.py does for PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from flowforge.errors import ConfigError, StorageError
from flowforge.metadata import (
    AssetIn,
    JobIn,
    LineageEdgeIn,
    MetadataStore,
    WorkflowIn,
)
from flowforge.metadata.engine import alembic_config
from flowforge.metadata.tables import VERSION_TABLE, metadata


def make_workflow(name: str = "bfsi_daily", **changes: object) -> WorkflowIn:
    fields: dict[str, object] = {
        "name": name,
        "description": "Core banking to Customer 360",
        "team": "data-platform",
        "environment": "dev",
        "tags": ("bfsi", "daily"),
        "spec": {"name": name, "jobs": [{"name": "customers"}], "schedule": {"cron": "0 2 * * *"}},
        "source_path": "workflows/bfsi.yml",
        "jobs": (
            JobIn("ingest_customers", "ingest", {"source": "core"}, (), ("bronze.customers",)),
            JobIn("silver_customers", "silver", {"key": ["id"]}, ("bronze.customers",), ("silver.customers",)),
        ),
    }
    fields.update(changes)
    return WorkflowIn(**fields)  # type: ignore[arg-type]


def _migrate(url: str) -> None:
    store = MetadataStore(url)
    try:
        store.migrate()
    finally:
        store.close()


def migrate_in_processes(url: str, count: int) -> list[int | None]:
    """Exit codes of ``count`` processes that all migrate ``url`` at the same moment."""
    processes = [multiprocessing.Process(target=_migrate, args=(url,)) for _ in range(count)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    return [process.exitcode for process in processes]


class MetadataStoreSuite:
    """Behaviour every metadata backend must show."""

    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        raise NotImplementedError

    @pytest.fixture
    def fresh_url(self) -> Iterator[str]:
        raise NotImplementedError

    # -- schema ----------------------------------------------------------------------------------

    def test_migrate_twice_is_idempotent_and_keeps_data(self, fresh_url: str) -> None:
        store = MetadataStore(fresh_url)
        try:
            store.migrate()
            store.upsert_workflow(make_workflow(), actor="alice")
            store.migrate()
            assert store.get_workflow("bfsi_daily") is not None
            with store.engine.connect() as conn:
                heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                # the one head of the revision chain
                newest = ScriptDirectory.from_config(alembic_config()).get_heads()
                assert list(heads.get_current_heads()) == newest and len(newest) == 1
                assert set(metadata.tables) <= set(inspect(conn).get_table_names())
        finally:
            store.close()

    def test_concurrent_migrate_of_empty_database_succeeds(self, fresh_url: str) -> None:
        # A server and a CLI run starting together on a new install both call migrate().
        assert migrate_in_processes(fresh_url, 4) == [0, 0, 0, 0]
        store = MetadataStore(fresh_url)
        try:
            assert store.list_workflows() == []
        finally:
            store.close()

    def test_database_at_an_older_revision_is_upgraded_on_open(self, fresh_url: str) -> None:
        # A database an older FlowForge created: the cheap version check sees it differs and migrates.
        from alembic import command

        from flowforge.metadata.engine import create_metadata_engine, head_revisions, schema_is_current

        cfg = alembic_config()
        engine = create_metadata_engine(fresh_url)
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "0005")
        finally:
            engine.dispose()
        store = MetadataStore(fresh_url)
        try:
            assert not schema_is_current(store.engine)
            store.migrate()
            assert schema_is_current(store.engine)
            with store.engine.connect() as conn:
                versions = {r[0] for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}
                assert versions == head_revisions()
                assert {"fires", "leases", "trigger_state"} <= set(inspect(conn).get_table_names())
            assert store.list_workflows() == []
        finally:
            store.close()

    def test_the_version_check_knows_the_newest_shipped_revision(self) -> None:
        from flowforge.metadata.engine import head_revisions

        assert head_revisions() == set(ScriptDirectory.from_config(alembic_config()).get_heads())

    def test_database_from_a_newer_version_is_refused(self, fresh_url: str) -> None:
        store = MetadataStore(fresh_url)
        try:
            store.migrate()
            with store.engine.begin() as conn:
                conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
            with pytest.raises(StorageError, match="schema revision 9999"):
                store.migrate()
        finally:
            store.close()

    def test_migrations_create_exactly_the_declared_tables(self, store: MetadataStore) -> None:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            assert compare_metadata(context, metadata) == []

    # -- workflows -------------------------------------------------------------------------------

    def test_upsert_workflow_audits_each_real_change_once(self, store: MetadataStore) -> None:
        created = store.upsert_workflow(make_workflow(), actor="alice")
        assert created.status == "active"
        assert created.tags == ("bfsi", "daily")
        assert created.created_at.tzinfo is UTC

        again = store.upsert_workflow(make_workflow(), actor="bob")
        assert again == created

        updated = store.upsert_workflow(make_workflow(description="Now with loans"), actor="carol")
        assert updated.id == created.id
        assert updated.description == "Now with loans"
        assert updated.created_at == created.created_at
        assert updated.updated_at > created.updated_at

        audit = store.list_audit()
        assert [(a.action, a.actor) for a in audit] == [
            ("workflow.update", "carol"),
            ("workflow.create", "alice"),
        ]
        assert audit[1].before is None
        assert audit[1].after is not None and audit[1].after["spec"] == created.spec
        assert audit[0].before is not None and audit[0].before["description"] == "Core banking to Customer 360"
        assert audit[0].after is not None and audit[0].after["description"] == "Now with loans"

    def test_upsert_replaces_jobs_in_given_order(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        jobs = (
            JobIn("gold_c360", "gold", {"sql": "select 1"}, ("silver.customers",), ("gold.c360",)),
            JobIn("ingest_customers", "ingest", {"source": "core"}, (), ("bronze.customers",)),
        )
        wf = store.upsert_workflow(make_workflow(jobs=jobs), actor="alice")
        assert [(j.name, j.position) for j in wf.jobs] == [("gold_c360", 0), ("ingest_customers", 1)]
        assert wf.jobs[0].inputs == ("silver.customers",)
        assert wf.jobs[0].spec == {"sql": "select 1"}
        fetched = store.get_workflow("bfsi_daily")
        assert fetched is not None and fetched.jobs == wf.jobs

    def test_list_workflows_by_name_with_their_jobs(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow("zeta", jobs=()), actor="a")
        store.upsert_workflow(make_workflow("alpha"), actor="a")
        listed = store.list_workflows()
        assert [(w.name, len(w.jobs)) for w in listed] == [("alpha", 2), ("zeta", 0)]

    def test_status_change_is_audited_once(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        assert store.set_workflow_status("bfsi_daily", "paused", actor="bob").status == "paused"
        store.set_workflow_status("bfsi_daily", "paused", actor="bob")
        # A paused workflow stays paused when its file is registered again.
        assert store.upsert_workflow(make_workflow(team="risk"), actor="alice").status == "paused"
        actions = [(a.action, a.before, a.after) for a in store.list_audit()]
        assert ("workflow.status", {"status": "active"}, {"status": "paused"}) in actions
        assert len(actions) == 3
        with pytest.raises(ValueError, match="workflow status"):
            store.set_workflow_status("bfsi_daily", "stopped", actor="bob")  # type: ignore[arg-type]

    def test_unknown_workflow_is_a_config_error_with_a_hint(self, store: MetadataStore) -> None:
        assert store.get_workflow("nope") is None
        with pytest.raises(ConfigError, match="Workflow 'nope' is not registered") as info:
            store.start_run("nope", trigger="manual", actor="alice")
        assert info.value.hint is not None and "flowforge workflows list" in info.value.hint
        for call in (
            lambda: store.list_runs("nope"),
            lambda: store.lineage("nope"),
            lambda: store.replace_lineage("nope", []),
            lambda: store.delete_workflow("nope", actor="a"),
            lambda: store.set_workflow_status("nope", "paused", actor="a"),
        ):
            with pytest.raises(ConfigError, match="nope"):
                call()

    def test_delete_cascades_jobs_runs_and_lineage(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        store.upsert_workflow(make_workflow("other"), actor="alice")
        store.replace_lineage("bfsi_daily", [LineageEdgeIn("bronze.customers", "silver.customers")])
        store.replace_lineage("other", [LineageEdgeIn("a", "b")])
        run = store.start_run("bfsi_daily", trigger="manual", actor="alice")
        store.start_job_run(run.id, "ingest_customers")

        store.delete_workflow("bfsi_daily", actor="bob")

        assert store.get_workflow("bfsi_daily") is None
        assert store.get_run(run.id) is None
        with store.engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("jobs", "lineage_edges", "runs", "job_runs")
            }
        assert counts == {"jobs": 2, "lineage_edges": 1, "runs": 0, "job_runs": 0}
        assert [e.source for e in store.lineage("other")] == ["a"]
        deleted = store.list_audit(limit=1)[0]
        assert (deleted.action, deleted.actor, deleted.object_id) == ("workflow.delete", "bob", "bfsi_daily")
        assert deleted.before is not None and deleted.after is None

    # -- runs ------------------------------------------------------------------------------------

    def test_run_lifecycle_sums_rows_from_job_runs(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        run = store.start_run("bfsi_daily", trigger="manual", actor="alice")
        assert (run.status, run.workflow_name, run.ended_at, run.job_runs) == (
            "running",
            "bfsi_daily",
            None,
            (),
        )

        first = store.start_job_run(run.id, "ingest_customers")
        assert first.status == "running" and first.ended_at is None
        store.finish_job_run(first.id, status="success", rows_read=1_000, rows_written=990, bytes_written=4096)
        second = store.start_job_run(run.id, "silver_customers")
        store.finish_job_run(second.id, status="failed", rows_read=990, error="bad cast", log="line 1")
        store.skip_job_run(run.id, "gold_c360", reason="upstream silver_customers failed")

        finished = store.finish_run(run.id, status="partial", error="1 job failed")
        assert (finished.status, finished.rows_read, finished.rows_written) == ("partial", 1_990, 990)
        assert finished.ended_at is not None and finished.ended_at >= finished.started_at
        assert finished.ended_at.tzinfo is UTC
        assert [(j.job_name, j.status) for j in finished.job_runs] == [
            ("ingest_customers", "success"),
            ("silver_customers", "failed"),
            ("gold_c360", "skipped"),
        ]
        assert finished.job_runs[0].bytes_written == 4096
        assert (finished.job_runs[1].error, finished.job_runs[1].log) == ("bad cast", "line 1")
        assert finished.job_runs[2].error == "upstream silver_customers failed"
        assert store.get_run(run.id) == finished
        assert store.list_audit(limit=1)[0].action == "run.start"

    def test_rows_beyond_32_bits_are_kept(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        run = store.start_run("bfsi_daily", trigger="schedule", actor="scheduler")
        for job in ("ingest_customers", "silver_customers"):
            job_run = store.start_job_run(run.id, job)
            store.finish_job_run(job_run.id, status="success", rows_read=3_000_000_000, bytes_written=2**40)
        finished = store.finish_run(run.id, status="success")
        assert finished.rows_read == 6_000_000_000
        assert isinstance(finished.rows_read, int)
        assert finished.job_runs[0].bytes_written == 2**40

    def test_list_runs_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow("a"), actor="alice")
        store.upsert_workflow(make_workflow("b"), actor="alice")
        ids = [store.start_run(name, trigger="api", actor="alice").id for name in ("a", "b", "a", "a")]
        assert [r.id for r in store.list_runs()] == ids[::-1]
        assert [r.id for r in store.list_runs("a")] == [ids[3], ids[2], ids[0]]
        assert [r.id for r in store.list_runs("a", limit=2)] == [ids[3], ids[2]]
        assert {r.workflow_name for r in store.list_runs("b")} == {"b"}

    def test_unknown_run_is_a_config_error(self, store: MetadataStore) -> None:
        assert store.get_run(999) is None
        with pytest.raises(ConfigError, match="Run 999 does not exist"):
            store.start_job_run(999, "x")
        with pytest.raises(ConfigError, match="Run 999 does not exist"):
            store.finish_run(999, status="success")
        with pytest.raises(ConfigError, match="Job run 999 does not exist"):
            store.finish_job_run(999, status="success")

    # -- watermarks, assets, lineage ---------------------------------------------------------

    def test_watermark_upsert_keeps_one_row_per_table(self, store: MetadataStore) -> None:
        assert store.get_watermark("bronze.customers") is None
        store.set_watermark("bronze.customers", "ingest_customers", {"updated_at": "2024-01-01"}, 3)
        store.set_watermark("bronze.customers", "ingest_customers", {"updated_at": "2024-02-01", "ids": [1]}, 4)
        store.set_watermark("bronze.accounts", "ingest_accounts", {"lsn": "0/16B3748"}, 1)
        mark = store.get_watermark("bronze.customers")
        assert mark is not None
        assert (mark.job_name, mark.state, mark.delta_version) == (
            "ingest_customers",
            {"updated_at": "2024-02-01", "ids": [1]},
            4,
        )
        assert mark.updated_at.tzinfo is UTC

    def test_asset_upsert_and_list_by_layer(self, store: MetadataStore) -> None:
        schema = ({"name": "id", "type": "int64", "nullable": False},)
        store.upsert_asset(AssetIn("bronze.customers", "bronze", "/lake/bronze/customers", schema, 10, 1, "w"))
        store.upsert_asset(AssetIn("silver.customers", "silver", "/lake/silver/customers", schema, 9, 1, "w"))
        wider = (*schema, {"name": "email", "type": "string", "nullable": True})
        store.upsert_asset(AssetIn("bronze.customers", "bronze", "/lake/bronze/customers", wider, 25, 2, "w"))

        bronze = store.list_assets("bronze")
        assert [(a.table_name, a.row_count, a.delta_version) for a in bronze] == [("bronze.customers", 25, 2)]
        assert bronze[0].schema == wider
        assert [a.table_name for a in store.list_assets()] == ["bronze.customers", "silver.customers"]
        assert store.list_assets("gold") == []
        silver = store.get_asset("silver.customers")
        assert silver is not None and silver.last_updated.tzinfo is UTC
        assert store.get_asset("missing") is None

    def test_replace_lineage_swaps_the_whole_edge_set(self, store: MetadataStore) -> None:
        store.upsert_workflow(make_workflow(), actor="alice")
        store.replace_lineage(
            "bfsi_daily",
            [LineageEdgeIn("bronze.customers", "silver.customers"), LineageEdgeIn("x", "y")],
        )
        store.replace_lineage(
            "bfsi_daily",
            [
                LineageEdgeIn("silver.customers", "gold.c360"),
                LineageEdgeIn("silver.customers", "gold.c360", "column", "id", "customer_id"),
            ],
        )
        edges = store.lineage("bfsi_daily")
        assert [(e.source, e.target, e.kind, e.source_column, e.target_column) for e in edges] == [
            ("silver.customers", "gold.c360", "table", None, None),
            ("silver.customers", "gold.c360", "column", "id", "customer_id"),
        ]
        store.replace_lineage("bfsi_daily", [])
        assert store.lineage("bfsi_daily") == []

    def test_audit_log_newest_first_and_limited(self, store: MetadataStore) -> None:
        store.audit("alice", "connection.create", "connection", "core", after={"kind": "sqlserver"})
        store.audit("bob", "connection.delete", "connection", "core", before={"kind": "sqlserver"})
        entries = store.list_audit(limit=1)
        assert [(e.actor, e.action, e.before, e.after) for e in entries] == [
            ("bob", "connection.delete", {"kind": "sqlserver"}, None)
        ]
        assert len(store.list_audit()) == 2


class TestSqliteMetadataStore(MetadataStoreSuite):
    @pytest.fixture
    def fresh_url(self, tmp_path: Path) -> Iterator[str]:
        yield f"sqlite:///{tmp_path / 'fresh' / 'metadata.db'}"

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[MetadataStore]:
        store = MetadataStore(f"sqlite:///{tmp_path / 'home' / 'metadata.db'}")
        store.migrate()
        yield store
        store.close()


def test_sqlite_file_gets_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "metadata.db"
    store = MetadataStore(f"sqlite:///{path}")
    try:
        store.migrate()
        assert path.exists()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0
    finally:
        store.close()


def test_unopenable_sqlite_file_is_a_storage_error(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path}")  # a directory, not a file
    try:
        with pytest.raises(StorageError, match="Metadata store"):
            store.migrate()
    finally:
        store.close()


def test_unreachable_server_error_masks_the_password() -> None:
    pytest.importorskip("psycopg")
    store = MetadataStore("postgresql+psycopg://flow:s3cr3t-pw@127.0.0.1:1/meta?connect_timeout=2")
    try:
        assert store.url_display == "postgresql+psycopg://flow:***@127.0.0.1:1/meta?connect_timeout=2"
        with pytest.raises(StorageError) as info:
            store.list_workflows()
        assert "flow:***@127.0.0.1:1/meta" in str(info.value)
        assert "s3cr3t-pw" not in str(info.value)
    finally:
        store.close()


def test_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        MetadataStore("not a url")
    with pytest.raises(ConfigError, match="unknown database kind"):
        MetadataStore("nosuchdb://x/y")
