"""The agent API's fetch tokens: one ``FetchTokens`` per app, minting through its GitHub port.

The app's GitHub port (:mod:`pullre.web.ports`) mints them; a controller with a personal token
raises an auth error there, so its token never goes to a box.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import current_app

from pullre.config import Settings
from pullre.environments import deploys, fetch_tokens
from pullre.github.port import FetchToken
from pullre.models import Repository
from pullre.web import ports

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
            tokens = fetch_tokens.FetchTokens(_mint)
            current_app.extensions[TOKENS_KEY] = tokens
        return tokens


def _mint(owner: str, name: str) -> FetchToken:
    """Through the app's GitHub port; a port that cannot be built is a GitHub failure."""
    return ports.github().mint_fetch_token(owner, name)
