"""Written acceptance scenarios, where they are attached, their runs, and repository reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pullre.models.base import Base, utcnow

if TYPE_CHECKING:
    from pullre.models.accounts import User


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
