"""Schedules, triggers, leases, run control and alerts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # runs from before this revision have no owner: `flowforge runs` reports a still-"running" one
    # as failed (abandoned), as no process can be shown to hold it
    op.add_column("runs", sa.Column("owner", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("heartbeat_at", _time(), nullable=True))
    op.add_column("runs", sa.Column("expires_at", _time(), nullable=True))
    op.add_column("runs", sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("slot", _time(), nullable=True))
    op.add_column("runs", sa.Column("parent_run_id", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("selection", _json(), nullable=True))
    op.create_index("ix_runs_status", "runs", ["status"])
    op.add_column("job_runs", sa.Column("worker", sa.Text(), nullable=True))
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_name", sa.Text(), nullable=True),
        sa.Column("acquired_at", _time(), nullable=True),
        sa.Column("heartbeat_at", _time(), nullable=True),
        sa.Column("expires_at", _time(), nullable=True),
        sa.Column("takeovers", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "trigger_state",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("armed_at", _time(), nullable=False),
        sa.Column("cursor", _json(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name="fk_trigger_state_workflow_id_workflows",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workflow_id", "trigger_key", name="pk_trigger_state"),
    )
    op.create_table(
        "fires",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("slot_key", sa.Text(), nullable=False),
        sa.Column("slot", _time(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_at", _time(), nullable=False),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["workflow_id"], ["workflows.id"], name="fk_fires_workflow_id_workflows",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_fires"),
        sa.UniqueConstraint("workflow_id", "trigger_key", "slot_key", name="uq_fires_workflow_id_trigger_key_slot_key"),
    )
    op.create_index("ix_fires_status", "fires", ["status"])
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_channels"),
        sa.UniqueConstraint("name", name="uq_alert_channels_name"),
    )
    op.create_table(
        "run_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_alerts_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_run_alerts"),
        sa.UniqueConstraint("run_id", "channel", "event", name="uq_run_alerts_run_id_channel_event"),
    )


def downgrade() -> None:
    op.drop_table("run_alerts")
    op.drop_table("alert_channels")
    op.drop_index("ix_fires_status", table_name="fires")
    op.drop_table("fires")
    op.drop_table("trigger_state")
    op.drop_table("leases")
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("worker")
    op.drop_index("ix_runs_status", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for column in ("selection", "parent_run_id", "slot", "reason", "cancel_requested", "expires_at",
                       "heartbeat_at", "owner"):
            batch.drop_column(column)
