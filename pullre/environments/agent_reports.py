"""What an agent's reports do to the environment it was assigned.

The agent drives the deploy; the controller only follows its reports: the first step of a deploy
turns the environment ``deploying``, a failed step ``failed`` (with the step's log as the
error), and a healthy app ``ready``. Reports for an environment the server no longer holds are
refused, so a slow agent cannot flip the state of the PR that now has its server.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.environments import step_retention
from pullre.environments.deploys import (
    LOG_TAIL_BYTES,
    SERVING,
    STEPS,
    NotYourEnvironment,
    serving_environment,
)
from pullre.models import DeployStep, Environment, EnvironmentStatus, Server, StepStatus


def record_step(
    session: Session,
    server: Server,
    *,
    environment_id: int,
    head_sha: str,
    step: str,
    status: StepStatus,
    log: str,
    clock: Clock,
    details: dict[str, Any] | None = None,
) -> Environment:
    """Store one step report and move the environment's status along.

    ``details`` are the step's structured results (the smoke step's, already validated against
    ``pullre.smoke.runner``'s shape by the API). A failed fast tier fails the environment like any
    other step: it is the check that this deploy works. The deep tier runs on demand against an app
    that is already serving, so its failure is shown as results but leaves the environment
    as it was; its final report answers the pending request. A smoke step "running" never moves
    the status either: the app answered its health check and is ready while checks run.
    """
    environment = session.get(Environment, environment_id)
    if (
        environment is None
        or environment.server_id != server.id
        or environment.status not in SERVING
    ):
        raise NotYourEnvironment(f"environment {environment_id} is not served by this server")
    tail = log.encode()[-LOG_TAIL_BYTES:].decode(errors="replace")
    session.add(
        DeployStep(
            environment_id=environment.id,
            head_sha=head_sha,
            step=step,
            status=status,
            log_tail=tail,
            details=details,
            reported_at=clock(),
        )
    )
    session.flush()
    step_retention.prune(session, environment.id)
    pull = environment.pull_request
    deep = step == "smoke" and (details or {}).get("tier") == "deep"
    if step == "smoke" and status is not StepStatus.RUNNING and (deep or details is None):
        environment.smoke_requested_at = None  # deep results, or none to give: answered
    if deep or (step == "smoke" and status is StepStatus.RUNNING):
        if deep and status is StepStatus.FAILED:
            events.record(
                session,
                "smoke_failed",
                f"#{pull.number} deep smoke checks failed on {head_sha[:7]}",
                pull_request=pull,
                server=server,
            )
        return environment
    if step == STEPS[0] and status is StepStatus.RUNNING:
        environment.deploy_requested_at = None  # this deploy answers the request
        environment.last_error = None
        events.record(
            session,
            "deploying",
            f"#{pull.number} deploying {head_sha[:7]}",
            pull_request=pull,
            server=server,
        )
    if status is StepStatus.FAILED:
        environment.status = EnvironmentStatus.FAILED
        # The end of a log says why it failed; keep that end when cutting it short.
        last_lines = "\n".join(tail.strip().splitlines()[-20:])[-3900:]
        environment.last_error = f"{step} failed: {last_lines}"
        events.record(
            session,
            "deploy_failed",
            f"#{pull.number} {step} failed on {head_sha[:7]}",
            pull_request=pull,
            server=server,
            step=step,
        )
    elif step == "health" and status is StepStatus.OK:
        now = clock()
        environment.status = EnvironmentStatus.READY
        environment.ready_at = now
        environment.deployed_sha = head_sha
        environment.deployed_at = now
        server.deployed_sha = head_sha
        events.record(
            session,
            "ready",
            f"#{pull.number} ready at {head_sha[:7]}",
            pull_request=pull,
            server=server,
        )
    elif status is StepStatus.RUNNING and environment.status is not EnvironmentStatus.DEPLOYING:
        environment.status = EnvironmentStatus.DEPLOYING
    return environment


def record_heartbeat(
    session: Session,
    server: Server,
    *,
    agent_version: str,
    deployed_sha: str | None,
    clock: Clock,
    environment_id: int | None = None,
    app_in_use: bool | None = None,
    runs_as: str | None = None,
    dirty: str | None = None,
) -> Environment | None:
    """Note the agent's pass; when it saw clients on the app, that is the environment's activity.

    ``runs_as`` (who runs PR code on the box) is kept as last said. ``dirty`` (why the agent
    could not clean up after a PR) marks the server dirty; a later heartbeat without it does
    not clear the mark, an admin does (``servers.registry.mark_clean``).

    ``app_in_use`` (None from agents that cannot tell, or too old to say) touches only the
    environment this server serves now, and only when the agent speaks of that one: never a
    sleeping or released one, nor the next PR's from a late report about the previous app. No
    event is recorded: a reviewer's session would write one a minute. Returns the environment
    touched, if any.
    """
    server.last_heartbeat = clock()
    server.agent_version = agent_version[:40]
    server.deployed_sha = deployed_sha
    if runs_as is not None:
        server.runs_as = runs_as[:20]
    if dirty:
        if server.dirty_reason is None:
            events.record(
                session,
                "server.dirty",
                f"{server.instance_id} is dirty: {dirty[:300]}",
                server=server,
            )
        server.dirty_reason = dirty[:2000]
    if app_in_use is not True or environment_id is None:
        return None
    environment = serving_environment(session, server)
    if environment is None or environment.id != environment_id:
        return None
    # As ``sleep.touch`` does, for this server's environment rather than the PR's newest.
    environment.last_activity_at = clock()
    environment.expiry_warned_at = None
    return environment
