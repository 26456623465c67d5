"""What people can ask of a PR's environment, from the UI and the API alike.

Each action only records intent in the database (and the audit log); the agent and the next
reconcile pass carry it out, so an action is safe to repeat and survives any crash.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments import action_rules
from pullre.environments.active import active_environment
from pullre.models import Environment, EnvironmentStatus, PullRequest, SleepReason, User
from pullre.policies import sleep
from pullre.scenarios.acceptance import is_author

#: Longest pin reason kept (the column's size).
PIN_REASON_LENGTH = 500


class ActionRefused(Exception):
    """The action does not apply to the PR as it stands; the message says why."""


def _require(action: str, pull: PullRequest, environment: Environment | None) -> None:
    """Refuse what :mod:`pullre.environments.action_rules` says does not apply now."""
    refused = action_rules.why_not(action, pull, environment)
    if refused is not None:
        raise ActionRefused(refused)


def _on(action: str, pull: PullRequest, environment: Environment | None) -> Environment:
    """The environment an action acts on, once the rules allow the action."""
    _require(action, pull, environment)
    if environment is None:  # every rule that acts on an environment refuses None first
        raise ActionRefused(f"#{pull.number} has no environment")
    return environment


def redeploy(session: Session, pull: PullRequest, *, actor: str, clock: Clock) -> None:
    """The agent deploys the PR's head again on its next pass, even if it runs already."""
    environment = active_environment(session, pull)
    environment = _on(action_rules.REDEPLOY, pull, environment)
    environment.deploy_requested_at = clock()
    environment.last_activity_at = clock()
    events.record(
        session,
        "redeploy",
        f"#{pull.number}: redeploy asked by {actor}",
        pull_request=pull,
        actor=actor,
    )
    sleep.wake(session, environment, why="redeploy asked", clock=clock, actor=actor)


def reset_data(session: Session, pull: PullRequest, *, actor: str, clock: Clock) -> None:
    """Re-clone the PR's schema from its source: the next pass clones, then the agent redeploys.

    The agent gets no assignment while the clone runs, so the app is stopped meanwhile rather
    than left serving half a database.
    """
    environment = active_environment(session, pull)
    environment = _on(action_rules.RESET_DATA, pull, environment)
    environment.schema_ready_at = None
    environment.deploy_requested_at = clock()
    events.record(
        session,
        "reset_data",
        f"#{pull.number}: data reset asked by {actor}",
        pull_request=pull,
        actor=actor,
    )


def release(session: Session, pull: PullRequest, *, actor: str) -> None:
    """Give the server back and keep the PR out of the queue until un-parked, pushed or reopened."""
    environment = active_environment(session, pull)
    _require(action_rules.RELEASE, pull, environment)
    pull.parked = True
    if environment is not None and environment.status is not EnvironmentStatus.RELEASING:
        environment.status = EnvironmentStatus.RELEASING
    events.record(
        session, "release", f"#{pull.number}: released by {actor}", pull_request=pull, actor=actor
    )


def unpark(session: Session, pull: PullRequest, *, actor: str) -> None:
    """Let a released PR queue for a server again."""
    _require(action_rules.UNPARK, pull, None)
    pull.parked = False
    events.record(
        session,
        "unpark",
        f"#{pull.number}: queued again by {actor}",
        pull_request=pull,
        actor=actor,
    )


def request_smoke(session: Session, pull: PullRequest, *, actor: str, clock: Clock) -> None:
    """Ask the agent to run the deep smoke tier against the app as it runs, without redeploying.

    Only a ready environment has an app worth checking: while it deploys, its own fast tier is
    about to run, and a failed one needs a redeploy rather than more checks.
    """
    environment = active_environment(session, pull)
    environment = _on(action_rules.SMOKE, pull, environment)
    environment.smoke_requested_at = clock()
    events.record(
        session,
        "smoke_requested",
        f"#{pull.number}: deep smoke checks asked by {actor}",
        pull_request=pull,
        actor=actor,
    )


def wake(session: Session, pull: PullRequest, *, actor: str, clock: Clock) -> None:
    """Start a sleeping environment again; it is ready once its agent has redeployed."""
    environment = active_environment(session, pull)
    environment = _on(action_rules.WAKE, pull, environment)
    sleep.wake(session, environment, why="woken", clock=clock, actor=actor)


def put_to_sleep(session: Session, pull: PullRequest, *, actor: str, clock: Clock) -> None:
    """Stop the instance now, keeping the server and the data for this PR."""
    environment = active_environment(session, pull)
    environment = _on(action_rules.SLEEP, pull, environment)
    sleep.put_to_sleep(session, environment, reason=SleepReason.BY_HAND, clock=clock, actor=actor)


def may_pin(user: User, pull: PullRequest) -> bool:
    """Admins pin anything; a PR's author pins their own PR (matched as for scenario sign-off)."""
    return user.is_admin or is_author(pull, user.username)


def pin(session: Session, pull: PullRequest, *, user: User, reason: str, clock: Clock) -> None:
    """Keep the PR's environment awake and unexpired until unpinned; a reason is required."""
    if not may_pin(user, pull):
        raise ActionRefused(f"only an admin or the author of #{pull.number} may pin it")
    reason = " ".join(reason.split())[:PIN_REASON_LENGTH]
    if not reason:
        raise ActionRefused("say why the environment must stay up")
    pull.pinned_by, pull.pinned_reason, pull.pinned_at = user.username, reason, clock()
    events.record(
        session,
        "pinned",
        f"#{pull.number} pinned by {user.username}: {reason}",
        pull_request=pull,
        actor=user.username,
    )


def unpin(session: Session, pull: PullRequest, *, user: User) -> None:
    if not may_pin(user, pull) and user.username != pull.pinned_by:
        raise ActionRefused(f"only an admin, the author or whoever pinned #{pull.number} may unpin")
    if pull.pinned_at is None:
        raise ActionRefused(f"#{pull.number} is not pinned")
    pull.pinned_by = pull.pinned_reason = None
    pull.pinned_at = None
    events.record(
        session,
        "unpinned",
        f"#{pull.number} unpinned by {user.username}",
        pull_request=pull,
        actor=user.username,
    )
