"""pull approval: per-repository trust, and who approved which head sha of a PR

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 14:00:00.000000

Existing PRs start with a blank ``author_association`` (an outsider until a sync says
otherwise), so every repository's listing validator is cleared: the next pass reads every open
PR in full, with its author's association, before it plans who gets a server.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pullre.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "trust",
                sa.Enum(
                    "collaborators",
                    "everyone",
                    name="trust",
                    native_enum=False,
                    create_constraint=False,
                    length=20,
                ),
                server_default="collaborators",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "approvers",
                sa.Enum(
                    "admins",
                    "members",
                    name="approvers",
                    native_enum=False,
                    create_constraint=False,
                    length=20,
                ),
                server_default="admins",
                nullable=False,
            )
        )
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_fork", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("author_association", sa.String(length=30), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("approved_sha", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("approved_at", pullre.models.UTCDateTime(), nullable=True))
    op.execute(sa.text("UPDATE repositories SET pulls_etag = NULL"))


def downgrade() -> None:
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approved_sha")
        batch_op.drop_column("author_association")
        batch_op.drop_column("from_fork")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("approvers")
        batch_op.drop_column("trust")
