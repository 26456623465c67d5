"""One database session per request, committed by the view that writes and closed at the end.

GET and HEAD requests read through a read session (deferred on SQLite, see :mod:`pullre.db`), so
pages and the API's lists never queue behind a reconcile pass for the write lock. A GET that must
write (activity touches, a token's last use) does it in a short write transaction of its own,
:func:`writing`; a read session refuses to flush, so a forgotten one fails in tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pullre.db import make_read_session_factory

WRITE_FACTORY_KEY = "pullre.session_factory"
READ_FACTORY_KEY = "pullre.read_session_factory"
_WRITING_BLUEPRINTS_KEY = "pullre.writing_blueprints"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask, factory: sessionmaker[Session]) -> None:
    app.extensions[WRITE_FACTORY_KEY] = factory
    app.extensions[READ_FACTORY_KEY] = make_read_session_factory(factory)
    app.teardown_appcontext(_close)


def writes_on_every_method(app: Flask, blueprint_name: str) -> None:
    """Give this blueprint's GETs a write session too: an API whose GETs hand out something new
    (the agent API's assignment mints an environment token), not a page a person reads."""
    app.extensions.setdefault(_WRITING_BLUEPRINTS_KEY, set()).add(blueprint_name)


def get_session() -> Session:
    """The request's session: a read session for GET/HEAD, a write session otherwise."""
    if "db_session" not in g:
        g.db_session_reads = (
            has_request_context()
            and request.method in READ_METHODS
            and request.blueprint not in current_app.extensions.get(_WRITING_BLUEPRINTS_KEY, ())
        )
        key = READ_FACTORY_KEY if g.db_session_reads else WRITE_FACTORY_KEY
        g.db_session = current_app.extensions[key]()
    session: Session = g.db_session
    return session


@contextmanager
def writing() -> Iterator[Session]:
    """A short write transaction beside the request's session, committed when the block ends.

    Objects from the request's session are not attached here: load them by id.
    """
    factory: sessionmaker[Session] = current_app.extensions[WRITE_FACTORY_KEY]
    with factory() as session:
        yield session
        session.commit()


def _close(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    if g.pop("db_session_reads", False):
        # A read transaction ends the same either way; ending it with COMMIT (after dropping
        # anything unflushed) also keeps the short write transactions that ran beside it when
        # both share one connection, as the tests' rolled-back outer transaction does.
        session.expunge_all()
        session.commit()
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
