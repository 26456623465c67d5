"""Personal API tokens: how a person's scripts reach ``/api/v1`` with that person's role.

A token is ``pullre_`` and ``secrets.token_urlsafe(32)``: the prefix lets secret scanners (and
people) recognise a leaked one. Only its SHA-256 is stored, for the reasons given in
:mod:`pullre.servers.registry` (256 random bits need no slow hash, and a deterministic hash is
found in one indexed lookup). The token itself is returned once, by :func:`create_token`.

A token grants nothing of its own: every request re-reads its owner, so deactivating a person
or changing their role takes effect on their tokens at once. Revoking deletes the row.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.clock import Clock
from pullre.models import ApiToken, User
from pullre.servers.registry import hash_token

TOKEN_PREFIX = "pullre_"  # noqa: S105 (a public marker, not a secret)
TOKEN_BYTES = 32
#: Column size of ``api_tokens.name``.
NAME_LENGTH = 100
#: ``last_used_at`` is for people deciding which token to revoke: a minute's precision is
#: plenty, and it keeps a busy script from turning every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)
#: Ours are 50 characters; anything much longer is not ours and is not hashed.
_MAX_TOKEN_LENGTH = 128


class TokenError(ValueError):
    """A refused token request, worded for the person asking."""


@dataclass(frozen=True)
class TokenRow:
    """A token as the tokens page lists it, with its owner's name for the admin's view."""

    token: ApiToken
    owner: str


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise TokenError("the token needs a name, to tell it apart when revoking")
    if len(name) > NAME_LENGTH:
        raise TokenError(f"the name is longer than {NAME_LENGTH} characters")
    return name


def create_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; the returned string is the only copy of it anywhere."""
    name = check_name(name)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(secret))
    session.add(token)
    session.flush()
    events.record(
        session,
        "api_token.created",
        f"API token {name!r} of {user.username} created",
        token_id=token.id,
        owner=user.username,
    )
    return token, secret


def revoke_token(session: Session, token: ApiToken, *, actor: str) -> None:
    """Delete the token: its next request is refused. Callers check who may revoke it."""
    owner = session.scalar(select(User.username).where(User.id == token.user_id))
    events.record(
        session,
        "api_token.revoked",
        f"API token {token.name!r} of {owner} revoked by {actor}",
        token_id=token.id,
        owner=owner,
        actor=actor,
    )
    session.delete(token)


def authenticate(session: Session, secret: str, *, clock: Clock) -> User | None:
    """The active owner of a token, or None (unknown, revoked, or its owner deactivated).

    Marks the token used (see :data:`LAST_USED_PRECISION`); the caller commits. A caller that
    reads in one session and writes in another uses :func:`owner` and :func:`mark_used`.
    """
    found = owner(session, secret)
    if found is None:
        return None
    token, user = found
    mark_used(token, clock())
    return user


def owner(session: Session, secret: str) -> tuple[ApiToken, User] | None:
    """The token and its active owner, or None; reads only.

    The lookup is by hash equality; ``compare_digest`` then checks the stored hash in constant
    time, so a case-insensitive database collation can never make a near-match count.
    """
    if not secret or len(secret) > _MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(secret)
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).one_or_none()
    if row is None:
        return None
    token, user = row
    if not hmac.compare_digest(token.token_hash, digest) or not user.active:
        return None
    return token, user


def due_for_marking(token: ApiToken, now: datetime) -> bool:
    """Whether ``last_used_at`` is older than :data:`LAST_USED_PRECISION` (or unset)."""
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION


def mark_used(token: ApiToken, now: datetime) -> bool:
    """Move ``last_used_at`` on when it is due; True when it moved."""
    if due_for_marking(token, now):
        token.last_used_at = now
        return True
    return False


def visible_tokens(session: Session, viewer_id: int, *, everyone: bool) -> list[TokenRow]:
    """The viewer's own tokens, or every token for an admin (``everyone``), newest first."""
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if not everyone:
        query = query.where(ApiToken.user_id == viewer_id)
    rows = session.execute(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
    return [TokenRow(token=token, owner=owner) for token, owner in rows]


def visible_token(
    session: Session, token_id: int, viewer_id: int, *, everyone: bool
) -> ApiToken | None:
    """The token if the viewer may see (and so revoke) it; someone else's is as good as absent."""
    token = session.get(ApiToken, token_id)
    if token is None or (not everyone and token.user_id != viewer_id):
        return None
    return token
