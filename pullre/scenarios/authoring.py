"""Scenarios written in the UI: their bounds, who may change them, and deleting one safely.

A repository scenario belongs to its file in the PR's branch and changes there; a UI scenario
changes here, by its owner or an admin, and is never deleted once run (its runs are sign-off
records).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from pullre.models import PullRequest, PullRequestState, Scenario, ScenarioAttachment, ScenarioRun
from pullre.scenarios.acceptance import ScenarioRefused
from pullre.scenarios.markdown import MAX_TEXT, MAX_TITLE, ScenarioFormatError, Step


def validate(title: str, steps: list[Step]) -> None:
    """The same bounds as repository files, so a UI scenario is as printable as a file one."""
    if not title.strip() or len(title) > MAX_TITLE:
        raise ScenarioFormatError(f"a title of 1 to {MAX_TITLE} characters is needed")
    if not steps:
        raise ScenarioFormatError("a scenario needs at least one step")
    for number, step in enumerate(steps, start=1):
        if not step.action or not step.expected:
            raise ScenarioFormatError(f"step {number} needs an action and an expected result")
        if max(len(step.action), len(step.expected)) > MAX_TEXT:
            raise ScenarioFormatError(f"step {number} is longer than {MAX_TEXT} characters")


def steps_text(steps: Sequence[dict[str, str]]) -> str:
    """Stored steps back in the form's text, which ``parse`` reads into the same steps."""
    return "\n".join(
        f"{number}. {step['action']}\nExpected: {step['expected']}"
        for number, step in enumerate(steps, start=1)
    )


def may_change(scenario: Scenario, user_id: int, is_admin: bool) -> bool:
    """Only a scenario written in the UI changes in the UI, by its owner or an admin.

    A repository scenario belongs to its file in the PR's branch: it changes there.
    """
    if scenario.pull_request_id is not None:
        return False
    return is_admin or (scenario.owner_id is not None and scenario.owner_id == user_id)


def run_count(session: Session, scenario: Scenario) -> int:
    """Runs of the scenario on any PR: the record of who signed off what."""
    return (
        session.scalar(
            select(func.count(ScenarioRun.id)).where(ScenarioRun.scenario_id == scenario.id)
        )
        or 0
    )


def gated_pulls(session: Session, scenario: Scenario) -> list[PullRequest]:
    """The open PRs the scenario is attached to now (by hand or label), by number."""
    pulls = session.scalars(
        select(PullRequest).where(PullRequest.state == PullRequestState.OPEN)
    ).all()
    candidates = [
        pull
        for pull in pulls
        if set(pull.labels or ()) & set(scenario.labels or ())
        or pull.id == scenario.pull_request_id
    ]
    hand = set(
        session.scalars(
            select(ScenarioAttachment.pull_request_id).where(
                ScenarioAttachment.scenario_id == scenario.id
            )
        )
    )
    candidates += [pull for pull in pulls if pull.id in hand and pull not in candidates]
    return sorted(candidates, key=lambda pull: (pull.repository_id, pull.number))


def delete(session: Session, scenario: Scenario) -> None:
    """Delete a UI scenario and its hand attachments; refused while it has runs.

    Runs are sign-off records: the database would cascade them away with the scenario, and
    with them a PR's ``pullre/acceptance`` could turn from failure to success unseen. So a
    scenario that was run stays; clearing its labels and detaching it stops it gating PRs.
    The check and the delete are one statement, so a run started meanwhile still blocks it.
    """
    if scenario.pull_request_id is not None:
        raise ScenarioRefused("a repository scenario changes in the pull request's branch")
    runs = run_count(session, scenario)
    if runs:
        raise ScenarioRefused(
            f"it has {runs} run{'s' if runs != 1 else ''}, the record of who signed off what; "
            "clear its labels and detach it instead"
        )
    has_runs = exists().where(ScenarioRun.scenario_id == Scenario.id)
    result = session.execute(
        sql_delete(Scenario)
        .where(Scenario.id == scenario.id, ~has_runs)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ScenarioRefused("a run was started meanwhile; it stays")
    session.expunge(scenario)
