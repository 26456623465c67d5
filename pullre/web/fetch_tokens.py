"""The agent API's fetch tokens: one ``FetchTokens`` per app, minting through its GitHub port.

The port is built on first need from the factory ``create_app`` was given (as the scenarios
pages do), so a controller with a personal token, or none, never builds one for this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from flask import current_app

from pullre.config import ConfigError, Settings
from pullre.environments import deploys, fetch_tokens
from pullre.github.port import FetchToken, GitHub, GitHubError
from pullre.models import Repository
from pullre.web.pull_scenarios import GITHUB_FACTORY_KEY

log = logging.getLogger(__name__)
#: ``app.extensions`` key of the app's :class:`~pullre.environments.fetch_tokens.FetchTokens`.
TOKENS_KEY = "pullre.fetch_tokens"
_setup = threading.Lock()


def for_repository(repository: Repository) -> dict[str, Any] | None:
    """The ``fetch_token`` member of an assignment of ``repository``, or None (none is due)."""
    settings: Settings = current_app.extensions["pullre.settings"]
    github_app = settings.github.app_id is not None and settings.github.installation_id is not None
    clone_url = deploys.clone_url(repository, settings.github.api_url)
    if not fetch_tokens.wanted(clone_url, settings.github.api_url, github_app=github_app):
        return None
    found = fetch_tokens.member(repository, _tokens())
    if "error" in found:
        log.warning("no fetch token for %s: %s", repository.full_name, found["error"])
    return found


def _tokens() -> fetch_tokens.FetchTokens:
    with _setup:
        tokens: fetch_tokens.FetchTokens | None = current_app.extensions.get(TOKENS_KEY)
        if tokens is None:
            factory = current_app.extensions.get(GITHUB_FACTORY_KEY)
            tokens = fetch_tokens.FetchTokens(_minter(factory))
            current_app.extensions[TOKENS_KEY] = tokens
        return tokens


def _minter(factory: Callable[[], GitHub] | None) -> fetch_tokens.Mint:
    """``GitHub.mint_fetch_token`` of one port built on the first mint (the cache serialises
    mints, so one port serves them all); a port that cannot be built is a GitHub failure."""
    built: list[GitHub] = []

    def mint(owner: str, name: str) -> FetchToken:
        if not built:
            if factory is None:
                raise GitHubError("this controller was started without a GitHub client")
            try:
                built.append(factory())
            except (ConfigError, OSError) as exc:
                raise GitHubError(f"the GitHub App settings are unusable: {exc}") from None
        return built[0].mint_fetch_token(owner, name)

    return mint
