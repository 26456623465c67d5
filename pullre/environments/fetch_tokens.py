"""Which assignments carry a fetch token, and one token per repository kept until near its end.

A box fetching a private repository from GitHub needs a credential, and a box runs untrusted PR
code, so it never gets the controller's own: with a GitHub App the controller mints a token that
reads that one repository and expires within the hour (``GitHub.mint_fetch_token``), and hands it
out with the assignment. The rule: **whenever ``[github]`` is a GitHub App, every assignment
whose clone URL is on GitHub's own web host over HTTP(S) carries a token** (the derived
``https://github.com/OWNER/NAME.git``, or a clone URL set to the same host, e.g. on GitHub
Enterprise). A public repository fetches fine with it too. A clone URL anywhere else (an SSH
address used with a deploy key, a mirror) is fetched with what the box holds for it, and never
sees a GitHub token (``clone_urls.token_may_go``).

Agents ask often (a waiting agent asks again after every change and every minute), so a token is
reused per repository until ``RENEW_BEFORE`` its expiry rather than minted on every ask: an agent
always gets one with at least that long to run, far more than a fetch takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pullre.clock import Clock, system_clock
from pullre.environments import clone_urls
from pullre.github.port import FetchToken, GitHubError
from pullre.models import Repository

RENEW_BEFORE = timedelta(minutes=10)

Mint = Callable[[str, str], FetchToken]


def wanted(clone_url: str, github_api_url: str, *, github_app: bool) -> bool:
    """Whether an assignment fetching from ``clone_url`` carries a token (the module's rule)."""
    return github_app and clone_urls.token_may_go(clone_url, github_api_url)


class FetchTokens:
    """Per-repository tokens from ``mint`` (``GitHub.mint_fetch_token``), shared by threads.

    ``clock`` is the real time: GitHub's tokens expire by it, whatever a test's clock says.
    """

    def __init__(self, mint: Mint, clock: Clock = system_clock) -> None:
        self._mint = mint
        self._clock = clock
        self._held: dict[str, FetchToken] = {}
        self._lock = threading.Lock()

    def get(self, owner: str, name: str) -> FetchToken:
        """A held token with more than ``RENEW_BEFORE`` left, else a new one (``GitHubError``)."""
        key = f"{owner}/{name}"
        with self._lock:
            held = self._held.get(key)
            if held is None or held.expires_at - self._clock() <= RENEW_BEFORE:
                self._held.pop(key, None)
                held = self._mint(owner, name)
                self._held[key] = held
            return held


def member(repository: Repository, tokens: FetchTokens) -> dict[str, Any]:
    """The assignment's ``fetch_token``: ``{"token", "expires_at"}``, or ``{"error"}`` saying why
    there is none (GitHub refused or is down), which the agent shows if its fetch then fails."""
    try:
        found = tokens.get(repository.owner, repository.name)
    except GitHubError as exc:
        return {"error": f"the controller could not get a fetch token from GitHub: {exc}"}
    return {"token": found.token, "expires_at": found.expires_at.isoformat()}
