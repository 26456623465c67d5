"""What a dashboard row shows beside its status: the pin, acceptance, and a deploy's progress.

People scan the table to decide where to look: a pinned PR stays up on purpose, a PR whose
scenarios fail is not ready to merge whatever its environment says, and ``deploying`` alone
does not say whether it is stuck. A fixed number of queries per page, whatever its rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from pullre.environments.deploys import STEPS
from pullre.environments.visit_status import DeployProgress, progress_of
from pullre.models import DeployStep, Environment, EnvironmentStatus, PullRequest, StepStatus
from pullre.scenarios.acceptance import standings_for


@dataclass(frozen=True)
class RowDetails:
    pinned_by: str | None = None
    #: Scenarios passed on the head and attached in all; (0, 0) when none gates the PR.
    passed: int = 0
    scenarios: int = 0
    #: Where a deploy is while deploying (``step 3 of 7 (build)``, timed as of the request).
    progress: DeployProgress | None = None


def row_details(session: Session, pull_ids: Sequence[int]) -> dict[int, RowDetails]:
    """PR id → its details, for the PRs of one dashboard page."""
    if not pull_ids:
        return {}
    pulls = list(session.scalars(select(PullRequest).where(PullRequest.id.in_(pull_ids))))
    standings = standings_for(session, pulls)
    deploying = {
        pull_id: progress_of(steps)
        for pull_id, steps in _deploying_steps(session, pull_ids).items()
    }
    found = {}
    for pull in pulls:
        results = [standing.result for standing in standings.get(pull.id, ())]
        pinned = pull.pinned_at is not None
        found[pull.id] = RowDetails(
            pinned_by=pull.pinned_by if pinned else None,
            passed=results.count("passed"),
            scenarios=len(results),
            progress=deploying.get(pull.id),
        )
    return found


def _deploying_steps(session: Session, pull_ids: Sequence[int]) -> dict[int, list[DeployStep]]:
    """PR id → the current deploy's steps (as ``latest_deploy_steps``) of each deploying PR,
    in one query: a deploy begins at its newest ``fetch`` running report."""
    began = aliased(DeployStep)
    started = (
        select(func.max(began.id))
        .where(
            began.environment_id == DeployStep.environment_id,
            began.step == STEPS[0],
            began.status == StepStatus.RUNNING,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(Environment.pull_request_id, DeployStep)
        .join(DeployStep, DeployStep.environment_id == Environment.id)
        .where(
            Environment.pull_request_id.in_(pull_ids),
            Environment.status == EnvironmentStatus.DEPLOYING,
            DeployStep.id >= func.coalesce(started, 0),
        )
        .order_by(DeployStep.id)
    )
    latest: dict[int, dict[str, DeployStep]] = {}
    for pull_id, step in rows:
        latest.setdefault(pull_id, {})[step.step] = step
    order = {step: place for place, step in enumerate(STEPS)}
    return {
        pull_id: sorted(steps.values(), key=lambda r: (order.get(r.step, len(STEPS)), r.id))
        for pull_id, steps in latest.items()
    }


def summary(statuses: Sequence[str | None]) -> str:
    """One sentence on the rows' statuses, announced politely when a refresh changes it."""
    counts = Counter(status or "no environment" for status in statuses)
    if not counts:
        return "No pull request is shown."
    return "Shown: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + "."
