"""Strict patterns for names that end up in SQL, URLs or git: checked on the way in.

Anything from GitHub or a form is matched against these before it is stored, so later code can
rely on a schema name being a plain identifier instead of escaping it at every use.
"""

from __future__ import annotations

import re

#: A MySQL schema name pullre will quote and use: letters, digits, underscore; at most 64.
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
#: ``[staging_mysql] schema_prefix``: a schema name's alphabet, a letter first, at most 16, so
#: ``<prefix>_<repo id>_<number>`` stays a readable MySQL user name of at most 32 characters.
SCHEMA_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
#: GitHub's own rule for logins: alphanumerics and single inner hyphens, at most 39.
GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
#: GitHub repository names: letters, digits, '.', '_', '-'; at most 100.
REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def is_schema_name(value: str) -> bool:
    return bool(SCHEMA_NAME.fullmatch(value))


def split_full_name(value: str) -> tuple[str, str]:
    """``owner/name`` → (owner, name), or ValueError saying what a valid name looks like."""
    owner, slash, name = value.strip().partition("/")
    if not slash or not GITHUB_LOGIN.fullmatch(owner) or not REPOSITORY_NAME.fullmatch(name):
        raise ValueError("expected OWNER/NAME as on GitHub, e.g. acme/shop")
    if name in {".", ".."}:
        raise ValueError("expected OWNER/NAME as on GitHub, e.g. acme/shop")
    return owner, name
