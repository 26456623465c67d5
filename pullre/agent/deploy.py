"""One agent pass: ask, compare with what runs, deploy or restart or stop, then heartbeat.

The pass is safe to run at any time from cron or a loop. It holds ``<workdir>/agent.lock`` for
its whole length, and a second pass that finds the lock taken exits at once. When the controller
cannot be reached nothing is touched: the app keeps serving and the next pass asks again.

A sha whose deploy failed is retried after growing pauses (1, 2, 4 ... 60 minutes) instead of
every pass, so a broken PR does not rebuild every minute; a new push or a ``redeploy`` request
from the controller deploys at once.

PR code runs as the app user (see ``app_user``); a pass that cannot run it so, and may not run
it as the agent's own user, deploys nothing and says ``refused`` in its heartbeat. On release,
and before a new assignment starts, everything of the app user's goes (see ``cleanup``); a box
where that fails is reported ``dirty`` and deploys nothing until a clean-up succeeds (and the
controller gives it no new PR until an admin marks it clean).

The heartbeat also says whether clients used the app since the last pass (``activity``: the
app port's sockets, sampled at the start of the pass and again at its end), so a reviewer
clicking through the staging app keeps the environment awake.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from pullre.agent import activity, app_user, cleanup, lock, state, supervisor
from pullre.agent.app_user import AppUser, Unseparated
from pullre.agent.assignment import Assignment, InvalidAssignment
from pullre.agent.controller import (
    Controller,
    ControllerRefused,
    ControllerUnavailable,
    NotAssigned,
)
from pullre.agent.settings import AgentSettings
from pullre.agent.steps import Deploy, StepFailed, stop_app

#: Below this share of free space the agent warns on every pass.
LOW_DISK_FRACTION = 0.1

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
    os.chmod(settings.workdir, 0o700)  # state, logs, repository: the agent's alone
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


def app_user_for(settings: AgentSettings) -> tuple[AppUser | None, str | None]:
    """Who may run this pass's PR code, or None and why nobody may."""
    try:
        app = app_user.resolve(settings)
    except Unseparated as exc:
        return None, str(exc)
    problems = app_user.private_problems(settings) if app.separate else []
    if problems:
        return None, "refusing to run PR code: " + "; ".join(problems)
    return app, None


def _locked_pass(
    settings: AgentSettings, controller: Controller, environ: Mapping[str, str]
) -> int:
    workdir = settings.workdir
    current = state.load(workdir)
    app, refusal = app_user_for(settings)
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

    status = 0
    cleaned = False
    if assignment is None or current.environment_id not in {None, assignment.environment_id}:
        cleaned = _release(settings, current, app)
    if assignment is not None:
        new = current.environment_id != assignment.environment_id
        if new and app is not None and not cleaned:  # before each new assignment, always
            _clean(settings, current, app)
        status = _serve(settings, controller, assignment, current, environ, who=(app, refusal))

    in_use = app_in_use(current)
    if current.environment_id is not None and current.environment_id == served_before:
        in_use = activity.either(used_before, in_use)  # else it was another PR's app
    try:
        controller.heartbeat(
            current.deployed_sha,
            app_running(current),
            current.environment_id,
            app_in_use=in_use,
            runs_as=app.mode if app is not None else app_user.REFUSED,
            dirty=current.dirty,
        )
    except (ControllerUnavailable, ControllerRefused) as exc:
        log.warning("heartbeat not delivered: %s", exc)
    if app is not None:
        _empty_trash(settings, app)
    return status


def _empty_trash(settings: AgentSettings, app: AppUser) -> None:
    """Delete what clean-ups set aside, last in the pass; warn while the disk runs low."""
    for problem in cleanup.empty_trash(app):
        log.warning("%s", problem)
    try:
        usage = shutil.disk_usage(app.root)
    except OSError:
        return
    if usage.free < LOW_DISK_FRACTION * usage.total:
        log.warning(
            "only %d MiB of %d MiB free on the disk of %s",
            usage.free >> 20, usage.total >> 20, app.root,
        )  # fmt: skip


def _serve(
    settings: AgentSettings,
    controller: Controller,
    assignment: Assignment,
    current: state.State,
    environ: Mapping[str, str],
    *,
    who: tuple[AppUser | None, str | None],
) -> int:
    """Deploy (or keep running) the assignment, unless PR code may not run or the box is dirty."""
    app, refusal = who
    if app is None:
        log.error("%s", refusal)
        return 1
    if current.dirty:
        log.error("the box is dirty, deploying nothing: %s", current.dirty)
        return 1
    current.environment_id = assignment.environment_id
    current.environment_token = controller.environment_token
    current.pr_number = assignment.pr_number
    deploy = Deploy(settings, controller, assignment, current, environ, app)
    try:
        _act(deploy, assignment, current)
    except StepFailed as exc:
        log.warning("deploy of %s failed at %s", assignment.head_sha, exc)
    except NotAssigned as exc:
        log.info("the environment is no longer this server's; stopping here (%s)", exc)
    finally:
        state.save(settings.workdir, current)
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


def _release(settings: AgentSettings, current: state.State, app: AppUser | None) -> bool:
    """No assignment (or another one): stop the app, forget the PR, and clean the box if PR
    code ran since it was last clean. Returns whether it cleaned."""
    if current.app is not None:
        log.info("no longer assigned PR #%s; stopping its app", current.pr_number)
    stop_app(current)
    current.environment_id = None
    current.environment_token = None
    current.pr_number = None
    current.failure = None
    cleaned = False
    if app is not None and not current.clean:
        _clean(settings, current, app)
        cleaned = True
    state.save(settings.workdir, current)
    return cleaned


def _clean(settings: AgentSettings, current: state.State, app: AppUser) -> None:
    """Everything of the app user's gone, or the box marked dirty with what was left."""
    stop_app(current)
    problems = cleanup.clean(app)
    if not app.separate:
        # PR code could write the repository as this very user: the next PR gets a fresh one.
        repo = settings.workdir / "repo.git"
        try:
            if repo.exists():
                shutil.rmtree(repo)
        except OSError as exc:
            problems.append(f"cannot remove {repo}: {exc.strerror or exc}")
    if problems:
        current.dirty = "; ".join(problems)[:2000]
        current.clean = False
        log.error("the box could not be cleaned: %s", current.dirty)
    else:
        current.dirty = None
        current.clean = True
        current.checkouts = []
    state.save(settings.workdir, current)
