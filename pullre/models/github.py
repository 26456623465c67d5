"""What GitHub told us: repositories, pull requests, GitHub users, webhook deliveries, and
what pullre last reported back to each PR."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pullre.models.base import Base, enum_type, utcnow
from pullre.models.states import Approvers, PullRequestState, Trust

if TYPE_CHECKING:
    from pullre.models.pool import Environment, Schedule


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    base_schema: Mapped[str | None] = mapped_column(String(64))
    required_label: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Validator of the last complete open-PR listing, so an unchanged repository costs one
    #: free conditional request per pass even though every pass is a new process.
    pulls_etag: Mapped[str | None] = mapped_column(String(2000))
    synced_at: Mapped[datetime | None]
    #: Where agents fetch the code from; blank means GitHub's https URL for OWNER/NAME.
    clone_url: Mapped[str | None] = mapped_column(String(500))
    #: Office hours: outside them every environment of the repository sleeps.
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    #: "open" or "closed": the schedule's side last acted on, so pullre acts on the change
    #: (closing, opening) once and a person's wake outside hours is not undone every pass.
    schedule_state: Mapped[str | None] = mapped_column(String(10))
    #: Forks and outsiders wait for approval unless this is ``everyone``.
    trust: Mapped[Trust] = mapped_column(
        enum_type(Trust), default=Trust.COLLABORATORS, server_default=Trust.COLLABORATORS.value
    )
    approvers: Mapped[Approvers] = mapped_column(
        enum_type(Approvers), default=Approvers.ADMINS, server_default=Approvers.ADMINS.value
    )

    schedule: Mapped[Schedule | None] = relationship()
    pull_requests: Mapped[list[PullRequest]] = relationship(back_populates="repository")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("repository_id", "number"),
        Index("ix_pull_requests_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(512), default="")
    author_login: Mapped[str] = mapped_column(String(100), default="")
    head_ref: Mapped[str] = mapped_column(String(255), default="")
    head_sha: Mapped[str] = mapped_column(String(40), default="")
    #: ``owner/name`` of the head repository when it differs from the base (a fork PR).
    head_repository: Mapped[str | None] = mapped_column(String(201))
    state: Mapped[PullRequestState] = mapped_column(
        enum_type(PullRequestState), default=PullRequestState.OPEN
    )
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[list[str]] = mapped_column(default=list)
    opened_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    #: Released by hand: an open PR that must not be queued again until someone un-parks it
    #: (or it is reopened or pushed to).
    parked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Pinned environments never sleep, expire or get reclaimed; who pinned and why is shown
    #: on the dashboard. Kept on the PR so a pin outlives one stay on the pool.
    pinned_by: Mapped[str | None] = mapped_column(String(100))
    pinned_reason: Mapped[str | None] = mapped_column(String(500))
    pinned_at: Mapped[datetime | None]
    #: The head lives in another repository, or in a deleted fork (GitHub's ``head.repo: null``).
    from_fork: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: GitHub's ``author_association`` of the PR's author (OWNER, MEMBER, COLLABORATOR,
    #: CONTRIBUTOR, NONE...); blank until a sync saw it (see ``pullre.trust.approval``).
    author_association: Mapped[str] = mapped_column(String(30), default="", server_default="")
    #: The one head sha a maintainer approved to run, by whom and when; a push leaves it
    #: behind (it no longer equals ``head_sha``) and the sync clears it.
    approved_sha: Mapped[str | None] = mapped_column(String(40))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None]

    repository: Mapped[Repository] = relationship(back_populates="pull_requests")
    environments: Mapped[list[Environment]] = relationship(
        back_populates="pull_request", order_by="Environment.id"
    )


class GithubUser(Base):
    """A GitHub login whose PRs clone their own source schema instead of the repository's."""

    __tablename__ = "github_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    source_schema: Mapped[str] = mapped_column(String(64))


class WebhookDelivery(Base):
    """GitHub delivery ids already handled, so a redelivered webhook does nothing twice."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class GithubReport(Base):
    """What pullre last told GitHub about a PR, per kind of report, so it only speaks on change.

    ``key`` names the report (``comment``, ``deployment:<environment id>``,
    ``status:pullre/deploy``...); ``digest`` is a hash of what was sent; ``remote_id`` is
    GitHub's id of the comment or deployment to update in place.
    """

    __tablename__ = "github_reports"
    __table_args__ = (UniqueConstraint("pull_request_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    remote_id: Mapped[int | None] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64), default="")
    reported_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
