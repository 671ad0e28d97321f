"""A one-row counter of committed metadata changes: on PostgreSQL every transaction that writes bumps
it just before its commit (metadata/generation.py), so an API process can tell in one cheap read
whether anything changed since it cached an answer. SQLite needs no table (``PRAGMA data_version``),
but it is created on both so the schema stays one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table("metadata_generation",
                            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                            sa.Column("n", sa.BigInteger, nullable=False))
    op.bulk_insert(table, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table("metadata_generation")
