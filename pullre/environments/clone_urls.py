"""Where a box fetches a repository's code from, and whether a fetch token may go there.

By default the address is GitHub's (``https://<web host>/OWNER/NAME.git``, the web host taken
from ``[github] api_url``). A repository's own **clone URL** replaces it: an SSH address used
with a deploy key installed on the boxes, a GitHub Enterprise host, a mirror, or a local path.
It is stored as typed and handed to git as one argument after ``--end-of-options`` — never
through a shell — so the check here is about what git would do with it: only ordinary transports
(no ``ext::``), nothing that reads as an option, no whitespace or control characters, and no
password in the URL (a credential belongs on the boxes, not in pullre's database and every
assignment).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: ``user@host:path``, git's scp-like SSH syntax (no slash before the colon).
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:(?!-)[^\s:]\S*$")
_SCHEMES = ("https", "http", "ssh", "file")
LONGEST = 500  # the column's size


class BadCloneUrl(ValueError):
    """Not an address pullre hands to git; the message says what is accepted."""


ACCEPTED = (
    "https://host/OWNER/NAME.git, ssh://git@host/OWNER/NAME.git, git@host:OWNER/NAME.git or an "
    "absolute path on the boxes"
)


def check(url: str) -> str:
    """``url`` stripped, if git may be given it; else ``BadCloneUrl``."""
    url = url.strip()
    if not url or len(url) > LONGEST:
        raise BadCloneUrl(f"a clone URL is 1 to {LONGEST} characters: {ACCEPTED}")
    if url.startswith("-") or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise BadCloneUrl(f"{url[:80]!r} is not a repository address: {ACCEPTED}")
    if url.startswith("/"):
        return url
    if _SCP_LIKE.fullmatch(url):
        return url
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or "::" in url:
        raise BadCloneUrl(f"{url[:80]!r}: expected {ACCEPTED}")
    if parts.scheme != "file" and not parts.hostname:
        raise BadCloneUrl(f"{url[:80]!r} names no host: expected {ACCEPTED}")
    if parts.password is not None:
        raise BadCloneUrl(
            "a clone URL must not hold a password: put the credential on the boxes (an SSH "
            "deploy key) or use a GitHub App, whose short-lived tokens pullre hands out itself"
        )
    return url


def token_may_go(clone_url: str, github_api_url: str) -> bool:
    """Whether a GitHub fetch token may be sent to ``clone_url``: only over HTTP(S) to the host
    GitHub serves its web from (github.com for api.github.com, else the API's own host), with the
    API's scheme. A mirror or an SSH address elsewhere never sees a GitHub token."""
    target, api = urlsplit(clone_url), urlsplit(github_api_url)
    if target.scheme not in ("https", "http") or target.scheme != api.scheme:
        return False
    web_host = "github.com" if api.hostname == "api.github.com" else api.hostname
    return target.username is None and target.hostname is not None and target.hostname == web_host
