"""Lifting a scenario's gate from a PR: who may, and the trace it always leaves.

A scenario attached to a PR gates its merge through ``pullre/acceptance``. Taking it away
(detaching it by hand, or editing away the label that attached it) is the one way to make a
failing or pending gate disappear, so it is for admins and the scenario's owner only — never
the PR's author, who would otherwise lift the gate on their own change — and it always writes
a ``scenario.detached`` event naming who and which PR. A PR that was ever gated keeps a
``pullre/acceptance`` status (pending when nothing is attached any more; see
``pullre.reporting.facts``), so lifting a gate is seen on GitHub, not just in pullre's log.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.models import Event, PullRequest, Scenario, ScenarioAttachment, ScenarioRun
from pullre.scenarios.acceptance import is_author
from pullre.scenarios.authoring import gated_pulls

DETACHED = "scenario.detached"


def may_lift(
    scenario: Scenario, pull: PullRequest, user_id: int, username: str, *, admin: bool
) -> bool:
    """Admins and the scenario's owner; never the PR's author, whatever their role."""
    if is_author(pull, username):
        return False
    return admin or (scenario.owner_id is not None and scenario.owner_id == user_id)


def detach(session: Session, pull: PullRequest, scenario: Scenario, actor: str) -> bool:
    """Undo a hand attachment and record it; False when there was none (a label match stays)."""
    rows = list(
        session.scalars(
            select(ScenarioAttachment).where(
                ScenarioAttachment.pull_request_id == pull.id,
                ScenarioAttachment.scenario_id == scenario.id,
            )
        )
    )
    for row in rows:
        session.delete(row)
    if rows:
        lifted(session, [pull], scenario, actor, how="by hand")
    return bool(rows)


def lifted(
    session: Session, pulls: Iterable[PullRequest], scenario: Scenario, actor: str, *, how: str
) -> None:
    """One ``scenario.detached`` event per PR the scenario no longer gates."""
    for pull in pulls:
        events.record(
            session, DETACHED,
            f"scenario “{scenario.title}” detached from "
            f"{pull.repository.full_name}#{pull.number} by {actor} ({how})",
            pull_request=pull, scenario_id=scenario.id, actor=actor, how=how,
            number=pull.number,
        )  # fmt: skip


def lost_by_labels(
    session: Session, scenario: Scenario, labels: Iterable[str]
) -> list[PullRequest]:
    """The open PRs that only a label of ``scenario`` gates, and that ``labels`` would free."""
    hand = set(
        session.scalars(
            select(ScenarioAttachment.pull_request_id).where(
                ScenarioAttachment.scenario_id == scenario.id
            )
        )
    )
    keep = set(labels)
    return [
        pull
        for pull in gated_pulls(session, scenario)
        if pull.id not in hand
        and pull.id != scenario.pull_request_id
        and not set(pull.labels or ()) & keep
    ]


def ever_gated(session: Session, pull_ids: Iterable[int]) -> set[int]:
    """The PRs among ``pull_ids`` that had a scenario run or a detached scenario, in one query.

    What is attached now is computed elsewhere; this is the memory that a gate existed.
    """
    ids = list(pull_ids)
    if not ids:
        return set()
    runs = select(ScenarioRun.pull_request_id).where(ScenarioRun.pull_request_id.in_(ids))
    detached = select(Event.pull_request_id).where(
        Event.kind == DETACHED, Event.pull_request_id.in_(ids)
    )
    return {pull_id for pull_id in session.scalars(runs.union(detached)) if pull_id is not None}
