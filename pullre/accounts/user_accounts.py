"""UI accounts: creating them and checking passwords, shared by the web app, init.py and the CLI."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from pullre.models import Role, User

MIN_PASSWORD_LENGTH = 8

# Compared against when the username is unknown, so a login for a missing user costs the same
# scrypt work as a wrong password and response time does not reveal which usernames exist.
_DUMMY_HASH = generate_password_hash("pullre-not-a-password", method="scrypt")


class AccountError(ValueError):
    """A request about an account that cannot be carried out, worded for the person asking."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password, method="scrypt")


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(session: Session, username: str, password: str, role: Role) -> User:
    username = username.strip()
    if not username:
        raise AccountError("the username must not be blank")
    if find_user(session, username) is not None:
        raise AccountError(f"a user named {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, else None (without saying which part was wrong)."""
    user = find_user(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user
