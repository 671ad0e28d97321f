"""Data quality: test results per run and per test, row accounting of checked batches.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("workflow_name", sa.Text(), nullable=True),
        sa.Column("job_name", sa.Text(), nullable=True),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("test_name", sa.Text(), nullable=False),
        sa.Column("test_kind", sa.Text(), nullable=False),
        sa.Column("columns", _json(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("failing_rows", sa.BigInteger(), nullable=False),
        sa.Column("rows_checked", sa.BigInteger(), nullable=True),
        sa.Column("observed", _json(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sample", _json(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_check_results_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_check_results"),
    )
    op.create_index("ix_check_results_run_id", "check_results", ["run_id"])
    op.create_index("ix_check_results_table_name_at", "check_results", ["table_name", "at"])
    op.create_table(
        "quality_accounting",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("rows_in", sa.BigInteger(), nullable=False),
        sa.Column("rows_committed", sa.BigInteger(), nullable=False),
        sa.Column("rows_dropped", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("delta_version", sa.BigInteger(), nullable=True),
        sa.Column("quarantine_version", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_quality_accounting_run_id_runs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_quality_accounting"),
    )
    op.create_index("ix_quality_accounting_run_id", "quality_accounting", ["run_id"])
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("rows_dropped", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rows_quarantined", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("rows_quarantined")
        batch.drop_column("rows_dropped")
    op.drop_index("ix_quality_accounting_run_id", table_name="quality_accounting")
    op.drop_table("quality_accounting")
    op.drop_index("ix_check_results_table_name_at", table_name="check_results")
    op.drop_index("ix_check_results_run_id", table_name="check_results")
    op.drop_table("check_results")
