"""repository secrets

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 14:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pullre.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("set_at", pullre.models.UTCDateTime(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_repository_secrets_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_secrets")),
        sa.UniqueConstraint(
            "repository_id", "name", name=op.f("uq_repository_secrets_repository_id_name")
        ),
    )
    with op.batch_alter_table("repository_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repository_secrets_repository_id"), ["repository_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("repository_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repository_secrets_repository_id"))
    op.drop_table("repository_secrets")
