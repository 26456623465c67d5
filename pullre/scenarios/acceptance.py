"""Written acceptance scenarios: which ones a PR needs, who ran them, and what that means.

A PR's scenarios are those attached by hand, those whose labels it carries (computed on every
read, never stored, so removing a label detaches at once) and those read from its own branch
(``pullre.scenarios.sources``). A run is tied to the head sha it ran on: a push leaves every
earlier run *stale*, so acceptance goes back to pending until someone runs them again.

Who may sign off: the PR's author may not run its scenarios unless ``[pool]
allow_self_signoff`` says so. pullre's users are not GitHub accounts, so the author is matched
by name: a user whose username equals the PR's GitHub login (case-insensitively, as GitHub
compares logins) is taken to be the author. Give people their GitHub login as username for
the rule to bite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pullre.clock import Clock
from pullre.environments.active import active_environment
from pullre.github.port import CommitState
from pullre.models import (
    PullRequest,
    Scenario,
    ScenarioAttachment,
    ScenarioRun,
)
from pullre.scenarios.markdown import MAX_TEXT

StepStatus = Literal["pass", "fail", "blocked"]
STEP_STATUSES: tuple[StepStatus, ...] = ("pass", "fail", "blocked")
#: A scenario's standing on a PR: a run's outcome on the current head, or why there is none.
Result = Literal["passed", "failed", "blocked", "in progress", "stale", "not run"]


class ScenarioRefused(Exception):
    """The request breaks a rule (self sign-off, a stale run...); the message says which."""


@dataclass(frozen=True)
class Standing:
    scenario: Scenario
    how: str  # "by hand", "label <name>" or "repository"
    result: Result
    run: ScenarioRun | None  # the run the result comes from (or the newest stale one)


def attached(session: Session, pull: PullRequest) -> list[tuple[Scenario, str]]:
    """The PR's scenarios, each once, with how it got there; in a stable order (by id)."""
    return attached_for(session, [pull]).get(pull.id, [])


def attached_for(
    session: Session, pulls: Sequence[PullRequest]
) -> dict[int, list[tuple[Scenario, str]]]:
    """``attached`` for many PRs in two queries whatever their number: PR id → its list."""
    ids = [pull.id for pull in pulls]
    if not ids:
        return {}
    hand: dict[int, set[int]] = defaultdict(set)
    for pull_id, scenario_id in session.execute(
        select(ScenarioAttachment.pull_request_id, ScenarioAttachment.scenario_id).where(
            ScenarioAttachment.pull_request_id.in_(ids)
        )
    ):
        hand[pull_id].add(scenario_id)
    wanted = {scenario_id for found in hand.values() for scenario_id in found}
    by_id: dict[int, Scenario] = {}
    own: dict[int, list[Scenario]] = defaultdict(list)  # a PR's own, read from its branch
    by_label: dict[str, list[Scenario]] = defaultdict(list)  # the UI's, by each label
    for scenario in session.scalars(
        select(Scenario).where(
            or_(
                Scenario.id.in_(wanted),
                Scenario.pull_request_id.in_(ids),
                Scenario.pull_request_id.is_(None),
            )
        )
    ):
        by_id[scenario.id] = scenario
        if scenario.pull_request_id is not None:
            own[scenario.pull_request_id].append(scenario)
        else:
            for label in set(scenario.labels or ()):
                by_label[label].append(scenario)
    found: dict[int, list[tuple[Scenario, str]]] = {}
    for pull in pulls:
        labels, mine = set(pull.labels or ()), hand.get(pull.id, set())
        maybe = {scenario.id: scenario for scenario in own.get(pull.id, ())}
        maybe.update((i, by_id[i]) for i in mine if i in by_id)
        for label in labels:
            maybe.update((scenario.id, scenario) for scenario in by_label.get(label, ()))
        found[pull.id] = []
        for scenario_id, scenario in sorted(maybe.items()):
            matching = [label for label in scenario.labels or () if label in labels]
            if scenario.pull_request_id == pull.id:
                found[pull.id].append((scenario, "repository"))
            elif scenario_id in mine:
                found[pull.id].append((scenario, "by hand"))
            elif matching and scenario.pull_request_id is None:
                found[pull.id].append((scenario, f"label {matching[0]}"))
    return found


def attach(session: Session, pull: PullRequest, scenario: Scenario, actor: str) -> bool:
    """Attach by hand; False when it already was."""
    exists = session.scalar(
        select(ScenarioAttachment.id).where(
            ScenarioAttachment.pull_request_id == pull.id,
            ScenarioAttachment.scenario_id == scenario.id,
        )
    )
    if exists is not None:
        return False
    session.add(
        ScenarioAttachment(pull_request_id=pull.id, scenario_id=scenario.id, attached_by=actor)
    )
    return True


def is_author(pull: PullRequest, username: str) -> bool:
    return bool(pull.author_login) and pull.author_login.casefold() == username.casefold()


def start_run(
    session: Session,
    pull: PullRequest,
    scenario: Scenario,
    *,
    runner_id: int,
    runner_name: str,
    allow_self_signoff: bool,
    clock: Clock,
) -> ScenarioRun:
    """A new run on the PR's current head, on the server it is staged on (if any)."""
    if is_author(pull, runner_name) and not allow_self_signoff:
        raise ScenarioRefused(
            f"{runner_name} opened this pull request and may not sign off its own scenarios"
        )
    if not pull.head_sha:
        raise ScenarioRefused("the pull request has no head commit yet")
    environment = active_environment(session, pull)
    server = environment.server if environment is not None else None
    run = ScenarioRun(
        pull_request_id=pull.id,
        scenario_id=scenario.id,
        head_sha=pull.head_sha,
        server_name=(server.name or server.instance_id) if server is not None else "",
        runner_id=runner_id,
        runner_name=runner_name,
        steps=[dict(step) for step in scenario.steps],
        results=[{"status": "", "note": ""} for _ in scenario.steps],
        started_at=clock(),
    )
    session.add(run)
    session.flush()
    return run


def record_step(
    session: Session,
    run: ScenarioRun,
    pull: PullRequest,
    index: int,
    *,
    status: str,
    note: str,
    runner_id: int,
    clock: Clock,
) -> None:
    """Record step ``index`` (0-based) of the caller's own run on the current head."""
    if run.runner_id != runner_id:
        raise ScenarioRefused("only the person who started a run records its steps")
    if run.head_sha != pull.head_sha:
        raise ScenarioRefused("a newer commit was pushed since this run began; start a new run")
    if status not in STEP_STATUSES:
        raise ScenarioRefused(f"a step is pass, fail or blocked, not {status!r}")
    if not 0 <= index < len(run.steps):
        raise ScenarioRefused("no such step")
    results = [dict(result) for result in run.results]
    results[index] = {"status": status, "note": note.strip()[:MAX_TEXT]}
    run.results = results  # a new list: JSON columns see assignment, not mutation
    done = all(result["status"] for result in results)
    run.finished_at = clock() if done and run.finished_at is None else run.finished_at


def outcome(run: ScenarioRun) -> Result:
    """Failed as soon as one step failed; otherwise only a finished run passes or is blocked."""
    statuses = [result.get("status", "") for result in run.results]
    if "fail" in statuses:
        return "failed"
    if not all(statuses):
        return "in progress"
    return "blocked" if "blocked" in statuses else "passed"


def standings(session: Session, pull: PullRequest) -> list[Standing]:
    return standings_for(session, [pull]).get(pull.id, [])


def standings_for(session: Session, pulls: Sequence[PullRequest]) -> dict[int, list[Standing]]:
    """Each PR's standings (PR id → list), in at most three queries whatever their number."""
    attached = attached_for(session, pulls)
    ids = [pull_id for pull_id, found in attached.items() if found]
    runs: dict[tuple[int, int], list[ScenarioRun]] = defaultdict(list)  # newest first
    if ids:  # only PRs with scenarios have runs that matter
        for run in session.scalars(
            select(ScenarioRun)
            .where(ScenarioRun.pull_request_id.in_(ids))
            .order_by(ScenarioRun.id.desc())
        ):
            runs[(run.pull_request_id, run.scenario_id)].append(run)
    found: dict[int, list[Standing]] = {}
    for pull in pulls:
        found[pull.id] = []
        for scenario, how in attached.get(pull.id, ()):
            mine = runs.get((pull.id, scenario.id), [])
            current = [run for run in mine if run.head_sha == pull.head_sha]
            settled = [run for run in current if outcome(run) != "in progress"]
            if settled:
                standing = Standing(scenario, how, outcome(settled[0]), settled[0])
            elif current:
                standing = Standing(scenario, how, "in progress", current[0])
            elif mine:
                standing = Standing(scenario, how, "stale", mine[0])
            else:
                standing = Standing(scenario, how, "not run", None)
            found[pull.id].append(standing)
    return found


def acceptance(results: Sequence[str]) -> CommitState | None:
    """``pullre/acceptance``: None without scenarios (nothing to gate on)."""
    if not results:
        return None
    if "failed" in results:
        return "failure"
    return "success" if all(result == "passed" for result in results) else "pending"
