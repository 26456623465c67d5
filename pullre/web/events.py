"""The audit log for everyone who can log in: newest first, filterable, paged by id.

The log only grows, so pages are keyset pages (``before`` = the last id shown) rather than
offsets: page 500 costs what page 1 does, and an event written meanwhile never shifts a page.
Each filter is one indexed column of ``events``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pullre.models import Event, PullRequest, Repository, Server
from pullre.overview.dashboard import repository_choices
from pullre.web.bounded_numbers import lenient_query_int
from pullre.web.db_session import get_session

blueprint = Blueprint("events", __name__, url_prefix="/events")

PAGE_SIZE = 50


@dataclass(frozen=True)
class EventFilter:
    kind: str | None = None
    repository_id: int | None = None
    pull_request_id: int | None = None
    #: The PR number people know (``#42``), within ``repository_id`` when one is chosen.
    number: int | None = None
    server_id: int | None = None
    before: int | None = None

    def args(self, **changes: object) -> dict[str, object]:
        """Query-string values for links that keep the filter (None values are left out)."""
        values: dict[str, object] = {
            "kind": self.kind,
            "repository": self.repository_id,
            "pull": self.pull_request_id,
            "number": self.number,
            "server": self.server_id,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value is not None}

    @property
    def active(self) -> bool:
        return bool(self.args())


@dataclass(frozen=True)
class EventRow:
    event: Event
    repository: str | None
    pull_number: int | None
    pull_title: str | None
    server: str | None


def _filter() -> EventFilter:
    return EventFilter(
        kind=request.args.get("kind", "").strip() or None,
        repository_id=lenient_query_int("repository"),
        pull_request_id=lenient_query_int("pull"),
        number=lenient_query_int("number"),
        server_id=lenient_query_int("server"),
        before=lenient_query_int("before"),
    )


def event_rows(session: Session, where: EventFilter, limit: int = PAGE_SIZE) -> list[EventRow]:
    """Up to ``limit + 1`` events, so the caller knows whether an older page exists."""
    query = (
        select(Event, Repository.owner, Repository.name, PullRequest.number, PullRequest.title)
        .add_columns(Server.name, Server.instance_id)
        .outerjoin(Repository, Repository.id == Event.repository_id)
        .outerjoin(PullRequest, PullRequest.id == Event.pull_request_id)
        .outerjoin(Server, Server.id == Event.server_id)
        .order_by(Event.id.desc())
        .limit(limit + 1)
    )
    if where.kind is not None:
        query = query.where(Event.kind == where.kind)
    if where.repository_id is not None:
        query = query.where(Event.repository_id == where.repository_id)
    if where.pull_request_id is not None:
        query = query.where(Event.pull_request_id == where.pull_request_id)
    if where.number is not None:
        query = query.where(Event.pull_request_id.in_(_numbered(where)))
    if where.server_id is not None:
        query = query.where(Event.server_id == where.server_id)
    if where.before is not None:
        query = query.where(Event.id < where.before)
    return [
        EventRow(
            event=event,
            repository=f"{owner}/{name}" if owner is not None else None,
            pull_number=number,
            pull_title=title,
            server=(server_name or instance_id) if instance_id is not None else None,
        )
        for event, owner, name, number, title, server_name, instance_id in session.execute(query)
    ]


def _numbered(where: EventFilter) -> Select[int]:
    """The ids of the PRs numbered ``where.number`` (in the chosen repository, if any)."""
    query = select(PullRequest.id).where(PullRequest.number == where.number)
    if where.repository_id is not None:
        query = query.where(PullRequest.repository_id == where.repository_id)
    return query


@blueprint.get("/")
def index() -> str:
    session = get_session()
    where = _filter()
    rows = event_rows(session, where)
    older = rows[PAGE_SIZE - 1].event.id if len(rows) > PAGE_SIZE else None
    repositories = repository_choices(session)
    servers = session.execute(
        select(Server.id, Server.name, Server.instance_id)
        .where(Server.in_pool.is_(True) | (Server.id == where.server_id))
        .order_by(Server.name, Server.instance_id)
    ).all()
    pull = session.get(PullRequest, where.pull_request_id) if where.pull_request_id else None
    if pull is None and where.number is not None and where.repository_id is not None:
        pull = session.scalar(
            select(PullRequest).where(
                PullRequest.repository_id == where.repository_id,
                PullRequest.number == where.number,
            )
        )
    return render_template(
        "events/index.html",
        rows=rows[:PAGE_SIZE],
        where=where,
        older=older,
        repositories=repositories,
        servers=servers,
        pull=pull,
    )
