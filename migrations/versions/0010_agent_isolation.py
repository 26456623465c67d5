"""agent isolation: who runs PR code on a server, and servers left dirty

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runs_as", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("dirty_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("dirty_reason")
        batch_op.drop_column("runs_as")
