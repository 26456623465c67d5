"""Which actions on a PR's environment apply right now, and why the others do not.

One rule for both sides: :mod:`pullre.environments.actions` refuses (409 in the API, a flash in
the UI) exactly what :func:`why_not` names, and the PR page offers only the actions for which it
says nothing, so a person is never shown a button that can only answer "not now".
"""

from __future__ import annotations

from collections.abc import Callable

from pullre.models import Environment, EnvironmentStatus, PullRequest, PullRequestState
from pullre.policies.sleep import SLEEPABLE

REDEPLOY = "redeploy"
RESET_DATA = "reset_data"
RELEASE = "release"
UNPARK = "unpark"
SMOKE = "smoke"
WAKE = "wake"
SLEEP = "sleep"

Rule = Callable[[str, PullRequest, Environment | None], str | None]


def _state(environment: Environment | None, none: str) -> str:
    return environment.status.value if environment is not None else none


def _releasing(number: str, environment: Environment) -> str | None:
    if environment.status is EnvironmentStatus.RELEASING:
        return f"{number} is being released"
    return None


def _redeploy(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if environment is None or environment.server_id is None:
        return f"{number} has no server to redeploy on"
    return _releasing(number, environment)


def _reset_data(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if environment is None or environment.schema_name is None:
        return f"{number} has no schema to reset"
    if environment.status is EnvironmentStatus.QUEUED:
        return f"{number} waits for a server; its data is cloned when it gets one"
    return _releasing(number, environment)


def _release(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if pull.parked:
        return f"{number} is already released"
    if pull.state is not PullRequestState.OPEN:
        return f"{number} is {pull.state.value}; pullre releases its server by itself"
    return None


def _unpark(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if not pull.parked:
        return f"{number} is not released"
    return None if pull.state is PullRequestState.OPEN else f"{number} is {pull.state.value}"


def _smoke(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if environment is None or environment.status is not EnvironmentStatus.READY:
        state = _state(environment, "not deployed")
        return f"{number} is {state}; deep smoke checks need it ready"
    return None


def _wake(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if environment is None or environment.status is not EnvironmentStatus.SLEEPING:
        return f"{number} is {_state(environment, 'not on the pool')}, not sleeping"
    return None


def _sleep(number: str, pull: PullRequest, environment: Environment | None) -> str | None:
    if environment is None or environment.status not in SLEEPABLE:
        state = _state(environment, "not on the pool")
        return f"{number} is {state}; only a ready or failed one can sleep"
    return None


RULES: dict[str, Rule] = {
    REDEPLOY: _redeploy,
    RESET_DATA: _reset_data,
    RELEASE: _release,
    UNPARK: _unpark,
    SMOKE: _smoke,
    WAKE: _wake,
    SLEEP: _sleep,
}


def why_not(action: str, pull: PullRequest, environment: Environment | None) -> str | None:
    """Why ``action`` cannot run on ``pull`` now (``environment`` is its current stay, if any);
    None when it can."""
    return RULES[action](f"#{pull.number}", pull, environment)


def refusals(pull: PullRequest, environment: Environment | None) -> dict[str, str | None]:
    """Every action's :func:`why_not`, for a page that shows which ones apply."""
    return {action: rule(f"#{pull.number}", pull, environment) for action, rule in RULES.items()}
