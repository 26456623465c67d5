"""Installation tokens narrowed to one repository's contents, for staging boxes to fetch with.

The adapter's own installation token may write deployments, statuses and comments on every
repository of the installation. A box runs untrusted PR code, so it gets another token instead,
one GitHub itself restricts (the access-token endpoint's ``repositories`` and ``permissions``)
to reading the one repository it deploys, and which expires within the hour. Minting needs the
App's JWT, so only App auth can do it; a personal token is never handed on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from github import Auth, GithubException
from github.Requester import Requester

from pullre.github.payloads import parse_time
from pullre.github.port import FetchToken, GitHubAuthError, GitHubError, GitHubUnavailable
from pullre.github.transport import GitHubStats, decode, error_for, expected_shape

#: All a fetch needs. GitHub adds ``metadata: read`` to every token by itself.
READ_CONTENTS = {"contents": "read"}
#: GitHub's installation tokens last an hour; a longer promise is not believed.
LONGEST = timedelta(hours=1)


def mint_fetch_token(
    auth: Auth.Auth, requester: Requester, stats: GitHubStats, owner: str, name: str
) -> FetchToken:
    """``POST /app/installations/{id}/access_tokens`` for ``name`` with ``contents: read``.

    ``requester`` is the adapter's (its pool, retries and timeouts); the request is signed with
    the App's JWT. An answer granting anything but reading is refused rather than handed on.
    """
    if not isinstance(auth, Auth.AppInstallationAuth):
        raise GitHubAuthError(
            "fetch tokens need GitHub App auth ([github] app_id, app_private_key_file, "
            "installation_id); a personal token is never given to a staging box"
        )
    path = f"/app/installations/{int(auth.installation_id)}/access_tokens"
    what = f"POST {path} for {owner}/{name}"
    body = {"repositories": [name], "permissions": dict(READ_CONTENTS)}
    headers = {"Accept": "application/vnd.github+json"}
    try:
        as_app = requester.withAuth(auth._app_auth)  # the JWT, not the installation token
        status, answer_headers, text = as_app.requestJson("POST", path, None, headers, body)
    except GithubException as exc:
        raise error_for(exc.status, exc.headers or {}, exc.data, what) from exc
    except requests.RequestException as exc:
        raise GitHubUnavailable(f"{what}: {exc}") from exc
    stats.count(token=True)
    data = decode(status, answer_headers, text, what)
    with expected_shape(what, status):
        token = str(data["token"])
        expires_at = parse_time(data["expires_at"])
        granted: dict[str, Any] = dict(data.get("permissions") or {})
    wider = sorted(key for key, level in granted.items() if level != "read")
    if wider:
        raise GitHubError(f"{what}: GitHub granted more than reading ({', '.join(wider)})")
    if not token:
        raise GitHubError(f"{what}: the answer has no token")
    return FetchToken(
        token=token,
        expires_at=min(expires_at, datetime.now(UTC) + LONGEST),
        repository=f"{owner}/{name}",
    )
