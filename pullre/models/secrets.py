"""Repository secrets: named values an app of the repository receives, stored encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pullre.models.base import Base, utcnow


class RepositorySecret(Base):
    """One secret of a repository; only ``pullre.secrets.cipher`` can read ``ciphertext``.

    The ciphertext is bound to this row's repository and name (AES-GCM associated data), so a
    ciphertext copied to another row or repository does not decrypt.
    """

    __tablename__ = "repository_secrets"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    #: Nonce then AES-GCM ciphertext and tag; never the value itself.
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Who set it: a UI username, or "the CLI".
    set_by: Mapped[str] = mapped_column(String(100), default="")
