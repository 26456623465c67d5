"""A short-lived fetch token given to git for one fetch, through its environment only.

The controller hands an assignment a token that reads one repository for under an hour (see
``pullre.environments.fetch_tokens``). git gets it as an HTTP header set by
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` in the environment of that one
``git fetch``: never in argv (which any user on the box can read in ``/proc``), never in a file
(a config, a credential store) and never in a URL git might print. The header is scoped to the
clone URL (``http.<url>.extraHeader``), so a redirect elsewhere does not carry it, and a URL that
is not HTTP(S) gets nothing. Whatever git prints is masked before it becomes a step log.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

MASK = "***"


def basic_credentials(token: str) -> str:
    """GitHub's form for an installation token over HTTPS: user ``x-access-token``."""
    return base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")


def environ(base: Mapping[str, str], clone_url: str, token: str | None) -> dict[str, str]:
    """``base`` plus the header for ``clone_url``, appended after any config entries it holds."""
    env = dict(base)
    if not token or not clone_url.startswith(("https://", "http://")):
        return env
    count = env.get("GIT_CONFIG_COUNT", "0")
    index = int(count) if count.isdigit() else 0
    env[f"GIT_CONFIG_KEY_{index}"] = f"http.{clone_url}.extraHeader"
    env[f"GIT_CONFIG_VALUE_{index}"] = f"Authorization: Basic {basic_credentials(token)}"
    env["GIT_CONFIG_COUNT"] = str(index + 1)
    return env


def mask(text: str, token: str | None) -> str:
    """``text`` with the token, and the header value made from it, replaced by ``***``."""
    if not token:
        return text
    return text.replace(basic_credentials(token), MASK).replace(token, MASK)


#: What git says when an HTTP server wants credentials it did not get or did not take.
_REFUSED = ("could not read Username", "Authentication failed", "401", "403")


def explain(failure: str, clone_url: str, token: str | None, no_token_because: str | None) -> str:
    """A failed fetch's text (masked), ending with what to do when credentials were the cause."""
    text = mask(failure, token)
    refused = clone_url.startswith(("https://", "http://")) and any(
        sign in text for sign in _REFUSED
    )
    if refused and token:
        text += (
            "\nThe repository refused the fetch token the controller gave (expired, or not for "
            "this repository); the next assignment brings a new one."
        )
    elif refused:
        text += (
            "\nThe repository wants credentials and the controller gave no fetch token: "
            "configure a GitHub App ([github] app_id) or give the repository a clone URL the "
            "boxes can read (repo set OWNER/NAME --clone-url URL)."
        )
    if no_token_because:
        text += f"\n{no_token_because}"
    return text
