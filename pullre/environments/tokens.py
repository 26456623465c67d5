"""The agent token of one stay: what a report about an environment must carry.

A server's own token (``pullre.servers.registry``) lives as long as the server and only fetches
its assignment. Step reports, smoke results and heartbeats about an environment also need this
one, which the assignment hands out and release voids: a token a PR's code saw is worthless for
the next PR on the same box, and the server token alone cannot make an environment ``ready``.

Like server tokens, 256 random bits stored as a SHA-256 only (a fast hash loses nothing on a
secret nobody can guess, and makes the lookup one indexed equality). The plaintext is in one
answer only: the assignment that made it. An agent that lost it (its state file gone) gets a
replacement on its next fetch, and the one it lost stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pullre.models import Environment

#: The request header that carries it, beside ``Authorization: Bearer <server token>``.
HEADER = "X-Pullre-Environment-Token"
TOKEN_BYTES = 32
#: token_urlsafe(32) is 43 characters; a longer value is not ours and is not hashed.
_MAX_LENGTH = 128


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def holds(environment: Environment, token: str | None) -> bool:
    """Whether ``token`` is this environment's current one (constant-time on the hash)."""
    if not token or len(token) > _MAX_LENGTH or environment.agent_token_hash is None:
        return False
    return hmac.compare_digest(environment.agent_token_hash, hash_token(token))


def issue(environment: Environment) -> str:
    """A new token for the environment; whatever token it had stops working. Caller commits."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    environment.agent_token_hash = hash_token(token)
    return token


def revoke(environment: Environment) -> None:
    environment.agent_token_hash = None
