"""SQLAlchemy Core tables of the metadata store (the schema the migrations create)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Explicit constraint names keep SQLite batch migrations and PostgreSQL ALTERs predictable.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Our own version table, so a team database that already runs Alembic for another app is left alone.
VERSION_TABLE = "flowforge_alembic_version"

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; PostgreSQL hands back the
    session's zone. Callers always get UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"Naive datetime {value!r} given to the metadata store; use a UTC-aware one.")
        value = value.astimezone(UTC)
        # SQLite stores text; a uniform naive UTC string keeps ORDER BY correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JsonValue(TypeDecorator[Any]):
    """JSON text, and JSONB on PostgreSQL (compact, indexable). Chosen per dialect when a connection
    first needs it, so a SQLite project never imports PostgreSQL's dialect module (~50 ms a command)."""

    impl = JSON
    cache_ok = True
    comparator_factory = JSON.Comparator  # spec["schedule"] and other JSON paths work as on JSON itself

    def __init__(self, none_as_null: bool = False) -> None:
        super().__init__(none_as_null=none_as_null)
        self.none_as_null = none_as_null

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=self.none_as_null))
        return dialect.type_descriptor(JSON(none_as_null=self.none_as_null))


def json_type(*, none_as_null: bool = False) -> TypeEngine[Any]:
    """JSON column type: JSONB on PostgreSQL (compact, indexable), JSON text elsewhere."""
    return JsonValue(none_as_null=none_as_null)


workflows = Table(
    "workflows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("team", Text, nullable=True),
    Column("environment", Text, nullable=False),
    Column("tags", json_type(), nullable=False),
    Column("status", Text, nullable=False),
    Column("spec", json_type(), nullable=False),
    Column("source_path", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", Integer, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("spec", json_type(), nullable=False),
    Column("inputs", json_type(), nullable=False),
    Column("outputs", json_type(), nullable=False),
    Column("position", Integer, nullable=False),
    UniqueConstraint("workflow_id", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Cascade: deleting a workflow removes its history; the audit log keeps the deletion.
    Column("workflow_id", Integer, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_written", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Index(None, "workflow_id", "started_at"),
    # run control (migration 0006): the owning process and how long it is trusted to be alive,
    # a cancel request, why it ended when the status alone does not say, and what it ran
    Column("owner", Text, nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=false()),
    Column("reason", Text, nullable=True),
    Column("slot", UTCDateTime(), nullable=True),
    Column("parent_run_id", Integer, nullable=True),
    Column("selection", json_type(none_as_null=True), nullable=True),
    Index(None, "status"),
    Index(None, "started_at"),  # migration 0010: the run list across workflows is ordered by it
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("job_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_written", BigInteger, nullable=False),
    Column("bytes_written", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("log", Text, nullable=True),
    # rows the job's tests dropped or quarantined (rows read = written + dropped + quarantined)
    Column("rows_dropped", BigInteger, nullable=False, server_default="0"),
    Column("rows_quarantined", BigInteger, nullable=False, server_default="0"),
    Column("worker", Text, nullable=True),  # the process that ran it (host:pid), migration 0006
)

watermarks = Table(
    "watermarks",
    metadata,
    Column("table_name", Text, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("state", json_type(), nullable=False),
    Column("delta_version", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", Text, nullable=False, unique=True),
    Column("layer", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("schema", json_type(), nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("delta_version", BigInteger, nullable=True),
    Column("last_updated", UTCDateTime(), nullable=False),
    Column("workflow_name", Text, nullable=True),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", Integer, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("source_column", Text, nullable=True),
    Column("target_column", Text, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("object_type", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("before", json_type(none_as_null=True), nullable=True),
    Column("after", json_type(none_as_null=True), nullable=True),
)

connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("options", json_type(), nullable=False),
    # Fernet token of the JSON of the connection's secret fields; never plaintext
    Column("secret", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True),
    # scrypt (or argon2) hash with its parameters and salt; never the password
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled", Boolean, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # sha256 of the token; the token itself is shown once and never stored
    Column("token_hash", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked", Boolean, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # sha256 of the random cookie value; the value itself lives only in the browser
    Column("token_hash", Text, nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("ended_why", Text, nullable=True),  # logout | password changed | disabled | ...
)

login_failures = Table(
    "login_failures",
    metadata,
    # "user:<name>" or "client:<address>"
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # null for 'flowforge test' (origin 'test'), which checks committed tables outside a run
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("origin", Text, nullable=False),
    Column("workflow_name", Text, nullable=True),
    Column("job_name", Text, nullable=True),
    Column("table_name", Text, nullable=False),
    Column("layer", Text, nullable=False),
    Column("test_name", Text, nullable=False),
    Column("test_kind", Text, nullable=False),
    Column("columns", json_type(none_as_null=True), nullable=False),
    Column("severity", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("failing_rows", BigInteger, nullable=False),
    Column("rows_checked", BigInteger, nullable=True),
    Column("observed", json_type(none_as_null=True), nullable=True),
    Column("message", Text, nullable=False),
    Column("sample", json_type(none_as_null=True), nullable=False),  # up to 20 failing rows
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "table_name", "at"),
)

quality_accounting = Table(
    "quality_accounting",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("job_name", Text, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("layer", Text, nullable=False),
    Column("batch_id", Text, nullable=False),
    Column("rows_in", BigInteger, nullable=False),
    Column("rows_committed", BigInteger, nullable=False),
    Column("rows_dropped", BigInteger, nullable=False),
    Column("rows_quarantined", BigInteger, nullable=False),
    Column("delta_version", BigInteger, nullable=True),
    Column("quarantine_version", BigInteger, nullable=True),
    Column("at", UTCDateTime(), nullable=False),
)

# -- scheduling, run control and alerts (migration 0006) -------------------------------------

leases = Table(
    "leases",
    metadata,
    # "workflow:<name>" (one run at a time) or "table:<name>" (one writer per table)
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=True),  # host:pid:start:token of the holder; NULL when free
    Column("run_id", Integer, nullable=True),
    Column("job_name", Text, nullable=True),
    Column("acquired_at", UTCDateTime(), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("takeovers", BigInteger, nullable=False, server_default="0"),
)

trigger_state = Table(
    "trigger_state",
    metadata,
    Column("workflow_id", Integer, ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True),
    Column("trigger_key", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("armed_at", UTCDateTime(), nullable=False),
    Column("cursor", json_type(none_as_null=True), nullable=True),
    Column("version", Integer, nullable=False),  # compare-and-set: one scheduler advances a cursor
    Column("updated_at", UTCDateTime(), nullable=False),
)

fires = Table(
    "fires",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", Integer, ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("trigger_key", Text, nullable=False),
    Column("kind", Text, nullable=False),  # schedule | backfill | after | files
    Column("slot_key", Text, nullable=False),
    Column("slot", UTCDateTime(), nullable=True),
    Column("status", Text, nullable=False),  # pending | started | skipped | refused
    Column("claimed_by", Text, nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("run_id", Integer, nullable=True),
    Column("detail", Text, nullable=True),
    UniqueConstraint("workflow_id", "trigger_key", "slot_key"),  # a slot fires once, whoever claims it
    Index(None, "status"),
)

alert_channels = Table(
    "alert_channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("options", json_type(), nullable=False),
    # Fernet token of the JSON of the channel's secret fields (webhook URL, headers, SMTP password)
    Column("secret", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", Text, nullable=False),
)

run_alerts = Table(
    "run_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("status", Text, nullable=False),  # sending | sent | failed
    Column("detail", Text, nullable=True),
    Column("at", UTCDateTime(), nullable=False),
    UniqueConstraint("run_id", "channel", "event"),  # one alert per run, channel and event
)

# -- the SQL console's history and the catalog's descriptions (revision 0009) -----------------------
query_history = Table(
    "query_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False),
    Column("sql", Text, nullable=False),
    Column("ran_at", UTCDateTime(), nullable=False),
    Column("rows", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_query_history_username_id", "username", "id"),
)

# a table's description (column "") and its columns' comments, kept apart from the Delta log so
# a full refresh that recreates the table keeps them
table_docs = Table(
    "table_docs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", Text, nullable=False),
    Column("column_name", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", Text, nullable=False),
    UniqueConstraint("table_name", "column_name"),
)

# one row: how many transactions that wrote something a page could show have committed (both
# backends; bookkeeping writes such as heartbeats leave it). metadata/generation.py
metadata_generation = Table(
    "metadata_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
)
