"""The controller's data: what GitHub told us, what the pool holds, and what we decided.

Status columns are plain strings validated by Python enums (``native_enum=False`` and no CHECK
constraint), so a later issue can add a status without a table rebuild on SQLite. Times are
stored as naive UTC and handed back aware, the same on SQLite and MySQL.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names keep Alembic revisions identical on SQLite and MySQL and let a
# later revision drop a constraint by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pullre stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a plain class attribute)
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class PullRequestState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


class EnvironmentStatus(enum.StrEnum):
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"
    #: Instance stopped to save money; the server and the schema stay this PR's.
    SLEEPING = "sleeping"
    RELEASING = "releasing"
    RELEASED = "released"


class SleepReason(enum.StrEnum):
    IDLE = "idle"
    OFFICE_HOURS = "office_hours"
    BY_HAND = "by_hand"


#: An environment in one of these holds (or waits for) a server; released ones are history.
ACTIVE_ENVIRONMENT_STATUSES = frozenset(EnvironmentStatus) - {EnvironmentStatus.RELEASED}


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Trust(enum.StrEnum):
    """Whose pull requests run without a maintainer's approval of their head sha."""

    #: Authors GitHub calls OWNER, MEMBER or COLLABORATOR, pushing to the repository itself.
    COLLABORATORS = "collaborators"
    #: Every PR, forks and outsiders included (for private repositories of one team).
    EVERYONE = "everyone"


class Approvers(enum.StrEnum):
    """Which pullre users may approve a waiting PR's head sha."""

    ADMINS = "admins"
    MEMBERS = "members"


class Schedule(Base):
    """Office hours: the days and wall-clock times, in a named time zone, that machines run.

    ``days`` are ISO weekdays (1 Monday … 7 Sunday) on which the window *opens*; a window whose
    ``closes_at`` is not after ``opens_at`` runs past midnight into the next day. Times are
    wall-clock in ``time_zone``, so 09:00 stays 09:00 across a daylight-saving change.
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    days: Mapped[list[int]] = mapped_column(JSON, default=list)
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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
        _enum(Trust), default=Trust.COLLABORATORS, server_default=Trust.COLLABORATORS.value
    )
    approvers: Mapped[Approvers] = mapped_column(
        _enum(Approvers), default=Approvers.ADMINS, server_default=Approvers.ADMINS.value
    )

    schedule: Mapped[Schedule | None] = relationship()
    pull_requests: Mapped[list[PullRequest]] = relationship(back_populates="repository")

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class Server(Base):
    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    private_ip: Mapped[str | None] = mapped_column(String(45))
    staging_url: Mapped[str] = mapped_column(String(255), default="")
    #: The port the app listens on on this server (behind its staging URL), sent to the agent
    #: with each assignment; a repository's ``.pullre.toml`` [deploy] port still wins. None:
    #: the box's ``[agent] port``, else 8000.
    app_port: Mapped[int | None] = mapped_column(Integer)
    in_pool: Mapped[bool] = mapped_column(Boolean, default=True)
    agent_token_hash: Mapped[str | None] = mapped_column(String(255), unique=True)
    observed_state: Mapped[str | None] = mapped_column(String(20))
    observed_at: Mapped[datetime | None]
    last_heartbeat: Mapped[datetime | None]
    deployed_sha: Mapped[str | None] = mapped_column(String(40))
    agent_version: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: EC2 instance type as last observed; prices per type come from ``[cost]``.
    instance_type: Mapped[str | None] = mapped_column(String(32))
    #: This server's own price per running hour; None: the price of its instance type.
    hourly_price: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))
    #: For servers outside the pool: office hours that start and stop them.
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    schedule_state: Mapped[str | None] = mapped_column(String(10))
    #: Who its agent runs PR code as, from its heartbeat: ``app_user`` (a separate unprivileged
    #: user), ``same_user`` (the agent's own, ``allow_same_user``) or ``refused``.
    runs_as: Mapped[str | None] = mapped_column(String(20))
    #: Why its agent could not clean up after a PR (a process or file left); while set, no new
    #: PR is assigned to it. Only an admin clears it ("Mark clean").
    dirty_reason: Mapped[str | None] = mapped_column(Text)

    schedule: Mapped[Schedule | None] = relationship()


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
        _enum(PullRequestState), default=PullRequestState.OPEN
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


class Environment(Base):
    """One stay of a PR on the pool: from queued, through a server, to released."""

    __tablename__ = "environments"
    __table_args__ = (
        Index("ix_environments_status_queued_at", "status", "queued_at"),
        # A server is held by at most one environment, enforced by the database itself: the
        # column is cleared on release, and NULLs never clash.
        UniqueConstraint("server_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), index=True
    )
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"))
    status: Mapped[EnvironmentStatus] = mapped_column(
        _enum(EnvironmentStatus), default=EnvironmentStatus.QUEUED
    )
    schema_name: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    #: When this stay asked EC2 to start its server, so a later pass never starts it twice.
    start_requested_at: Mapped[datetime | None]
    #: Set when the PR's head moved; the agent redeploys and clears it.
    deploy_requested_at: Mapped[datetime | None]
    #: Someone asked for the deep smoke tier to run now; the agent clears it by reporting it.
    smoke_requested_at: Mapped[datetime | None]
    #: The schema exists and its user has the current password; cleared by "reset data".
    schema_ready_at: Mapped[datetime | None]
    #: Bumped to give the PR's MySQL user a new password (the password itself is derived
    #: from the controller's secret key and never stored).
    credentials_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    deployed_sha: Mapped[str | None] = mapped_column(String(40))
    deployed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: The last deploy, page visit, API call or scenario step for this stay: idle sleep and
    #: expiry count from here (or from ``assigned_at`` when nothing happened yet).
    last_activity_at: Mapped[datetime | None]
    slept_at: Mapped[datetime | None]
    sleep_reason: Mapped[SleepReason | None] = mapped_column(_enum(SleepReason))
    #: Was it ready when office hours closed? Only those are woken when they open again.
    ready_before_sleep: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: When the PR was told this stay expires soon; cleared by any activity.
    expiry_warned_at: Mapped[datetime | None]
    #: Why the stay ended when pullre ended it (expired, reclaimed): for the PR page and comment.
    release_reason: Mapped[str | None] = mapped_column(String(200))
    #: SHA-256 of this stay's agent token (see ``pullre.environments.tokens``): reports about the
    #: environment must carry it. Cleared at release, so the token dies with the stay.
    agent_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    pull_request: Mapped[PullRequest] = relationship(back_populates="environments")
    server: Mapped[Server | None] = relationship()


class RunningSpan(Base):
    """A stretch of time a server was seen running, and whose environment it ran for.

    Opened by the first pass that sees the instance running and closed by the first that sees
    it not running (or held by someone else), so costs follow observed EC2 states, at the
    resolution of the pass interval. The price is copied in: a later price change does not
    rewrite last month's bill. ``environment_id`` is None for time nobody's PR ran (an orphan).
    """

    __tablename__ = "running_spans"
    __table_args__ = (Index("ix_running_spans_server_id_ended_at", "server_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"))
    environment_id: Mapped[int | None] = mapped_column(
        ForeignKey("environments.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    hourly_price: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))


class StepStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class DeployStep(Base):
    """One step of one deploy as the agent reported it, with the tail of its log."""

    __tablename__ = "deploy_steps"
    __table_args__ = (Index("ix_deploy_steps_environment_id_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    head_sha: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(20))
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus))
    log_tail: Mapped[str] = mapped_column(Text, default="")
    #: Structured results the step reported (the smoke step's checks), in the documented
    #: shape of pullre.smoke.runner; None for steps that only have a log.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)


class GithubUser(Base):
    """A GitHub login whose PRs clone their own source schema instead of the repository's."""

    __tablename__ = "github_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    source_schema: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Carried in every login session of this user; raised by logout and by a password change,
    #: so every session issued before then (a copied cookie included) stops working.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class LoginThrottle(Base):
    """Failed logins counted per account and per address, in the DB so every replica sees them."""

    __tablename__ = "login_throttles"

    #: ``user:<name>`` or ``address:<ip>``, so one table holds both counts.
    subject: Mapped[str] = mapped_column(String(150), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class Event(Base):
    """The audit log: every decision the controller or a person makes is written here."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.id", ondelete="SET NULL"), index=True
    )
    pull_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="SET NULL"), index=True
    )
    server_id: Mapped[int | None] = mapped_column(
        ForeignKey("servers.id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


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


class ApiToken(Base):
    """A person's token for ``/api/v1``; it acts with its owner's role. Stored hashed."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class PassRun(Base):
    """What one reconcile pass did and cost, for /metrics and the dashboard's history."""

    __tablename__ = "pass_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    github_requests: Mapped[int] = mapped_column(Integer, default=0)
    github_not_modified: Mapped[int] = mapped_column(Integer, default=0)
    rate_limit_remaining: Mapped[int | None] = mapped_column(Integer)
    ec2_calls: Mapped[int] = mapped_column(Integer, default=0)
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    released: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    #: Servers busy (held by an environment) and queue length when the pass ended: the
    #: dashboard's pool-use chart is drawn from these samples.
    busy_servers: Mapped[int] = mapped_column(Integer, default=0)
    pool_size: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)


class Lease(Base):
    """A named lock with an expiry, so a crashed holder is taken over instead of waited for."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None]


class Scenario(Base):
    """A written acceptance test: steps a person performs on a PR's staging environment.

    Written in the UI (``pull_request_id`` None, attached by label or by hand), or read from a
    PR's ``.pullre/scenarios/*.md`` at its head commit (``pull_request_id`` and ``source_path``
    set): such a row belongs to that PR alone, because another PR's branch may say otherwise.
    ``steps`` is a list of ``{"action": ..., "expected": ...}``.
    """

    __tablename__ = "scenarios"
    __table_args__ = (UniqueConstraint("pull_request_id", "source_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    labels: Mapped[list[str]] = mapped_column(default=list)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    pull_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE")
    )
    source_path: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship()


class ScenarioAttachment(Base):
    """A scenario attached to a PR by hand (label matches are computed, never stored)."""

    __tablename__ = "scenario_attachments"
    __table_args__ = (UniqueConstraint("pull_request_id", "scenario_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    scenario_id: Mapped[int] = mapped_column(
        ForeignKey("scenarios.id", ondelete="CASCADE"), index=True
    )
    attached_by: Mapped[str] = mapped_column(String(100))
    attached_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScenarioRun(Base):
    """One person's run of a scenario on one head sha; ``results`` is one entry per step done.

    The steps are copied in, so editing a scenario later never rewrites what was signed off.
    """

    __tablename__ = "scenario_runs"
    __table_args__ = (
        Index("ix_scenario_runs_pull_request_id_scenario_id", "pull_request_id", "scenario_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id", ondelete="CASCADE"))
    scenario_id: Mapped[int] = mapped_column(
        ForeignKey("scenarios.id", ondelete="CASCADE"), index=True
    )
    head_sha: Mapped[str] = mapped_column(String(40))
    server_name: Mapped[str] = mapped_column(String(100), default="")
    runner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    runner_name: Mapped[str] = mapped_column(String(100))
    steps: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    results: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ScenarioFetch(Base):
    """The head sha whose ``.pullre/scenarios`` were last read for a PR, and what went wrong."""

    __tablename__ = "scenario_fetches"

    pull_request_id: Mapped[int] = mapped_column(
        ForeignKey("pull_requests.id", ondelete="CASCADE"), primary_key=True
    )
    head_sha: Mapped[str] = mapped_column(String(40))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
