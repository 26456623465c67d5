"""``/api/v1/repos/OWNER/NAME/pulls/NUMBER[/ACTION]``: the PR routes by the number people use.

pullre's own ids (``/api/v1/pulls/ID``) are not GitHub's PR numbers, and a script written from
a PR's page knows only ``acme/shop#42``. These routes find the PR by repository and number and
hand the request to the id route with the same tail, so every action under ``/pulls/ID/`` (and
any added later) answers the same here, with the same checks, statuses and errors.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from pullre.models import PullRequest, Repository
from pullre.web.db_session import get_session


def pull_id(owner: str, name: str, number: int) -> int:
    """The id of ``owner/name#number`` (matched without regard to case, as GitHub does)."""
    found = get_session().scalar(
        select(PullRequest.id)
        .join(Repository, Repository.id == PullRequest.repository_id)
        .where(
            func.lower(Repository.owner) == owner.lower(),
            func.lower(Repository.name) == name.lower(),
            PullRequest.number == number,
        )
    )
    if found is None:
        raise NotFound(f"pullre knows no pull request {owner}/{name}#{number}")
    return found


def dispatch(prefix: str, owner: str, name: str, number: int, action: str | None) -> Any:
    """Answer as ``{prefix}/pulls/<id>[/action]`` would for this request's method."""
    path = f"{prefix}/pulls/{pull_id(owner, name, number)}" + (f"/{action}" if action else "")
    adapter = current_app.url_map.bind_to_environ(request.environ)
    endpoint, args = adapter.match(path, method=request.method)  # 404/405 as for the id route
    if not endpoint.startswith(f"{request.blueprint}."):
        raise NotFound()
    return current_app.view_functions[endpoint](**args)
