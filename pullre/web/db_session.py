"""One database session per request, committed by the view that writes and closed at the end."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

_KEY = "pullre.session_factory"


def init_app(app: Flask, factory: sessionmaker[Session]) -> None:
    app.extensions[_KEY] = factory
    app.teardown_appcontext(_close)


def get_session() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions[_KEY]()
    session: Session = g.db_session
    return session


def _close(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def commit_or_report_duplicate(errors: list[str], message: str) -> bool:
    """Commit; on a unique-constraint clash roll back and add ``message`` to a form field.

    Views check for duplicates first for a friendly message, but two admins can still race,
    so the constraint is the last word and must become a form error, not a 500.
    """
    session = get_session()
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        errors.append(message)
        return False
    return True
