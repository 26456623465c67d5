"""What every command group's arguments share: the parser-building signature, ``OWNER/NAME``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.identifiers import split_full_name
from pullre.models import Repository

#: ``build_parser``'s helper: (name, function, help, parent) → the sub-parser.
AddCommand = Callable[..., argparse.ArgumentParser]


def full_name(value: str) -> tuple[str, str]:
    """An ``OWNER/NAME`` argument, checked as pullre checks repository names everywhere."""
    try:
        return split_full_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def registered(session: Session, name: tuple[str, str]) -> Repository | None:
    owner, repo = name
    return session.scalar(
        select(Repository).where(Repository.owner == owner, Repository.name == repo)
    )
