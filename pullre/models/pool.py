"""The pool: servers and their office hours, a PR's environments on them, running time, and
the steps its agent reported."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pullre.models.base import Base, enum_type, utcnow
from pullre.models.states import EnvironmentStatus, SleepReason, StepStatus

if TYPE_CHECKING:
    from pullre.models.github import PullRequest


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
        enum_type(EnvironmentStatus), default=EnvironmentStatus.QUEUED
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
    sleep_reason: Mapped[SleepReason | None] = mapped_column(enum_type(SleepReason))
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


class DeployStep(Base):
    """One step of one deploy as the agent reported it, with the tail of its log."""

    __tablename__ = "deploy_steps"
    __table_args__ = (Index("ix_deploy_steps_environment_id_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    head_sha: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(20))
    status: Mapped[StepStatus] = mapped_column(enum_type(StepStatus))
    log_tail: Mapped[str] = mapped_column(Text, default="")
    #: Structured results the step reported (the smoke step's checks), in the documented
    #: shape of pullre.smoke.runner; None for steps that only have a log.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
