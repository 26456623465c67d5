"""Reading stored smoke results: what the dashboard, the PR page and the API show of them.

The results ride in the smoke step's ``details``; "latest" means the newest smoke report for
the sha the environment has deployed, found for a whole page of environments in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from pullre.environments.deploys import STEPS
from pullre.models import DeployStep, Environment, StepStatus
from pullre.smoke.results import failed_tests, short_label, summary

SMOKE_STEP = STEPS[-1]


def smoke_badges(session: Session, environment_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Environment id → (badge kind, text) of its latest smoke report for its deployed sha.

    One statement for the whole page: the results ride along in ``details``.
    """
    if not environment_ids:
        return {}
    rows = session.execute(
        select(DeployStep.environment_id, DeployStep.status, DeployStep.details).where(
            DeployStep.id.in_(_latest_smoke_ids(environment_ids))
        )
    )
    found = {}
    for env_id, status, details in rows:
        text = short_label(details) if isinstance(details, dict) else status.value
        found[env_id] = (status.value, text)
    return found


def _latest_smoke_ids(
    environment_ids: list[int], statuses: tuple[StepStatus, ...] = ()
) -> Select[int]:
    """Per environment, the id of its newest smoke report for the sha it has deployed."""
    query = (
        select(func.max(DeployStep.id))
        .join(
            Environment,
            and_(
                Environment.id == DeployStep.environment_id,
                Environment.deployed_sha == DeployStep.head_sha,
            ),
        )
        .where(DeployStep.environment_id.in_(environment_ids), DeployStep.step == SMOKE_STEP)
        .group_by(DeployStep.environment_id)
    )
    if statuses:
        query = query.where(DeployStep.status.in_(statuses))
    return query


@dataclass(frozen=True)
class SmokeResults:
    """The latest finished smoke run of an environment's deployed sha, as people read it."""

    sha: str
    reported_at: datetime
    step_status: str
    results: dict[str, Any] | None

    def to_json(self) -> dict[str, Any] | None:
        """The API's ``smoke`` member; None for a run that sent no results (an older agent)."""
        r = self.results
        if r is None:
            return None
        return {
            "status": r["status"],
            "counts": r["counts"],
            "failed": r["failed"],
            "summary": summary(r),
            "failed_tests": failed_tests(r),
            "time_ms": r["time_ms"],
            "tier": r["tier"],
            "sha": self.sha,
            "reported_at": self.reported_at.isoformat(),
        }


def latest_smoke(session: Session, environment_ids: list[int]) -> dict[int, SmokeResults]:
    """Environment id → its latest ok/failed smoke report for its deployed sha, in one query.

    A run still going (or skipped) does not hide the results before it: the page keeps
    showing what is known until the new results arrive.
    """
    if not environment_ids:
        return {}
    finished = (StepStatus.OK, StepStatus.FAILED)
    steps = session.scalars(
        select(DeployStep).where(DeployStep.id.in_(_latest_smoke_ids(environment_ids, finished)))
    )
    return {
        step.environment_id: SmokeResults(
            sha=step.head_sha,
            reported_at=step.reported_at,
            step_status=step.status.value,
            results=step.details if isinstance(step.details, dict) else None,
        )
        for step in steps
    }
