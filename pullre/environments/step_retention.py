"""How much of an environment's deploy history the controller keeps, whatever a box sends.

A staging box runs PR code and may report as often as the rate limit lets it, so stored steps
are bounded per environment: the latest ``KEEP_DEPLOYS`` deploys keep their log tails and
structured results, older ones keep only their rows (step, status, sha, time: what the deploy
counters and history need), and past ``MAX_STEPS`` rows the oldest rows go. A deploy starts
with its ``fetch`` step reported running. The worst an environment holds is then about
``MAX_LOGGED_STEPS`` times 128 KiB of logs and results and ``MAX_STEPS`` small rows.
"""

from __future__ import annotations

from sqlalchemy import delete, null, select, update
from sqlalchemy.orm import Session

from pullre.models import DeployStep, StepStatus

#: Deploys per environment whose logs and results are kept.
KEEP_DEPLOYS = 5
#: Steps per environment that keep a log, even within those deploys (a flood without ``fetch``).
MAX_LOGGED_STEPS = 80
#: Rows per environment; beyond, the oldest are deleted.
MAX_STEPS = 1000


def prune(session: Session, environment_id: int) -> None:
    """Apply the limits above after a report was added (flushed) for ``environment_id``."""
    mine = DeployStep.environment_id == environment_id
    newest_first = select(DeployStep.id).where(mine).order_by(DeployStep.id.desc())
    oldest_deploy = session.scalar(
        newest_first.where(DeployStep.step == "fetch", DeployStep.status == StepStatus.RUNNING)
        .offset(KEEP_DEPLOYS - 1)
        .limit(1)
    )
    oldest_logged = session.scalar(newest_first.offset(MAX_LOGGED_STEPS - 1).limit(1))
    cutoffs = [cutoff for cutoff in (oldest_deploy, oldest_logged) if cutoff is not None]
    if cutoffs:
        session.execute(
            update(DeployStep)
            .where(
                mine,
                DeployStep.id < max(cutoffs),
                (DeployStep.log_tail != "") | DeployStep.details.is_not(None),
            )
            .values(log_tail="", details=null())  # SQL NULL: matched once, not every time
            .execution_options(synchronize_session=False)
        )
    oldest_kept = session.scalar(newest_first.offset(MAX_STEPS - 1).limit(1))
    if oldest_kept is not None:
        session.execute(
            delete(DeployStep)
            .where(mine, DeployStep.id < oldest_kept)
            .execution_options(synchronize_session=False)
        )
