"""environment tokens

Each stay of a PR on a server gets its own agent token (only its SHA-256 is stored), which
reports about that environment must carry.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_environments_agent_token_hash"), ["agent_token_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_environments_agent_token_hash"), type_="unique")
        batch_op.drop_column("agent_token_hash")
