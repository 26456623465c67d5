"""One agent pass: ask, compare with what runs, deploy or restart or stop, then heartbeat.

The pass is safe to run at any time from cron or a loop. It holds ``<workdir>/agent.lock`` for
its whole length, and a second pass that finds the lock taken exits at once. When the controller
cannot be reached nothing is touched: the app keeps serving and the next pass asks again.

A sha whose deploy failed is retried after growing pauses (1, 2, 4 ... 60 minutes) instead of
every pass, so a broken PR does not rebuild every minute; a new push or a ``redeploy`` request
from the controller deploys at once.

The heartbeat also says whether clients used the app since the last pass (``activity``: the
app port's sockets, sampled at the start of the pass and again at its end), so a reviewer
clicking through the staging app keeps the environment awake.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from pullre.agent import activity, lock, state, supervisor
from pullre.agent.assignment import Assignment, InvalidAssignment
from pullre.agent.controller import (
    Controller,
    ControllerRefused,
    ControllerUnavailable,
    NotAssigned,
)
from pullre.agent.git import GitError, Repo
from pullre.agent.settings import AgentSettings
from pullre.agent.steps import Deploy, StepFailed, stop_app

log = logging.getLogger(__name__)
RETRY_FIRST_S = 60.0
RETRY_MAX_S = 3600.0


def run_pass(
    settings: AgentSettings,
    *,
    environ: Mapping[str, str] | None = None,
    controller: Controller | None = None,
) -> int:
    """Exit status: 0 when done or nothing could be done now, 1 when an operator must look."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    try:
        with lock.exclusive(settings.workdir / "agent.lock"):
            return _locked_pass(
                settings,
                controller or Controller(settings.controller_url, settings.token),
                os.environ if environ is None else environ,
            )
    except lock.LockHeld as exc:
        log.info("%s; this pass exits", exc)
        return 0


def retry_due(failure: state.Failure | None, sha: str, now: float) -> bool:
    if failure is None or failure.sha != sha:
        return True
    pause = min(RETRY_FIRST_S * 2.0 ** (failure.attempts - 1), RETRY_MAX_S)
    return now >= failure.at + pause


def app_running(current: state.State) -> bool:
    app = current.app
    return app is not None and supervisor.is_alive(app.pid, app.start_time)


def app_in_use(current: state.State) -> bool | None:
    """Whether clients are (or were within about a minute) connected to the app's port, not
    counting the agent's own checks; None when unknown (no app or port known, not Linux)."""
    app = current.app
    if app is None or app.port is None:
        return None
    return activity.in_use(activity.sample(app.port), current.app_probed_at)


def _locked_pass(
    settings: AgentSettings, controller: Controller, environ: Mapping[str, str]
) -> int:
    workdir = settings.workdir
    current = state.load(workdir)
    # Before this pass's own checks can leave sockets of their own on the app's port.
    used_before, served_before = app_in_use(current), current.environment_id
    if controller.environment_token is None:
        controller.environment_token = current.environment_token
    try:
        assignment = controller.assignment()
    except ControllerUnavailable as exc:
        log.warning("controller unavailable, leaving everything as it is: %s", exc)
        return 0
    except ControllerRefused as exc:
        log.error("the controller refused this agent: %s", exc)
        return 1
    except InvalidAssignment as exc:
        log.error("refusing the controller's assignment: %s", exc)
        return 1

    if assignment is None or current.environment_id not in {None, assignment.environment_id}:
        _release(settings, current, environ)
    if assignment is not None:
        current.environment_id = assignment.environment_id
        current.environment_token = controller.environment_token
        current.pr_number = assignment.pr_number
        deploy = Deploy(settings, controller, assignment, current, environ)
        try:
            _act(deploy, assignment, current)
        except StepFailed as exc:
            log.warning("deploy of %s failed at %s", assignment.head_sha, exc)
        except NotAssigned as exc:
            log.info("the environment is no longer this server's; stopping here (%s)", exc)
        finally:
            state.save(workdir, current)

    in_use = app_in_use(current)
    if current.environment_id is not None and current.environment_id == served_before:
        in_use = activity.either(used_before, in_use)  # else it was another PR's app
    try:
        controller.heartbeat(
            current.deployed_sha, app_running(current), current.environment_id, app_in_use=in_use
        )
    except (ControllerUnavailable, ControllerRefused) as exc:
        log.warning("heartbeat not delivered: %s", exc)
    return 0


def _act(deploy: Deploy, assignment: Assignment, current: state.State) -> None:
    _deploy_if_needed(deploy, assignment, current)
    # After any deploy this pass made (which ran the fast tier), so deep checks see the head;
    # a deploy that failed leaves the request for a later pass, when the app is healthy again.
    asked = assignment.run_deep_smoke and current.deployed_sha == assignment.head_sha
    if asked and app_running(current):
        deploy.deep_smoke()


def _deploy_if_needed(deploy: Deploy, assignment: Assignment, current: state.State) -> None:
    sha = assignment.head_sha
    if assignment.redeploy or current.deployed_sha != sha:
        if assignment.redeploy or retry_due(current.failure, sha, time.time()):
            deploy.full()
        else:
            log.info("deploy of %s failed before; waiting before the next try", sha)
    elif not app_running(current):
        if current.app is None or not Path(current.app.checkout).is_dir():
            deploy.full()
        elif retry_due(current.failure, sha, time.time()):
            deploy.restart()


def _release(settings: AgentSettings, current: state.State, environ: Mapping[str, str]) -> None:
    """No assignment (or another one): stop the app, drop the checkouts, forget the PR."""
    if current.app is not None:
        log.info("no longer assigned PR #%s; stopping its app", current.pr_number)
    stop_app(current)
    repo = Repo(settings.workdir / "repo.git", environ)
    for path in list(current.checkouts):
        try:
            repo.remove_worktree(Path(path))
        except (GitError, OSError) as exc:
            log.warning("could not remove checkout %s: %s", path, exc)
            continue
        current.checkouts.remove(path)
    current.environment_id = None
    current.environment_token = None
    current.pr_number = None
    current.failure = None
    state.save(settings.workdir, current)
