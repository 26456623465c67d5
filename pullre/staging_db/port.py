"""The staging MySQL port: per-PR schemas and users, as the reconciler asks for them.

The controller is the only holder of the admin URL (``[staging_mysql] url``); a staging instance
gets only the :class:`Credentials` of its PR's user, which can do anything inside its own schema
and nothing outside it. Domain code takes a :class:`StagingDatabase` and catches
:class:`StagingDatabaseError`; entry points build the real one with
:func:`pullre.staging_db.database.make_staging_database`. Nothing here imports PyMySQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol
from urllib.parse import quote


class StagingDatabaseError(Exception):
    """Something went wrong on the staging MySQL; the message is safe to show and to log."""


class StagingUnavailable(StagingDatabaseError):
    """The server could not be reached, or the connection was lost."""


class SourceMissing(StagingDatabaseError):
    """The schema to clone from does not exist."""

    def __init__(self, schema: str) -> None:
        super().__init__(f"source schema {schema!r} does not exist on the staging MySQL")
        self.schema = schema


class CloneFailed(StagingDatabaseError):
    """A clone stopped part-way; the half-made target has been dropped (the message says if not)."""

    def __init__(self, message: str, source: str, target: str) -> None:
        super().__init__(message)
        self.source = source
        self.target = target


@dataclass(frozen=True)
class CloneResult:
    source: str
    target: str
    tables: int
    rows: int
    views: int
    triggers: int
    routines: int
    events: int
    seconds: float


@dataclass(frozen=True)
class Credentials:
    """What a staging instance needs to reach its PR's schema; ``repr`` hides the password."""

    user: str
    password: str = field(repr=False)
    host: str
    port: int
    database: str

    @property
    def url(self) -> str:
        return (
            f"mysql+pymysql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{self.database}?charset=utf8mb4"
        )


class Leftover(NamedTuple):
    #: ``look-alike``: a schema named like a PR schema where its ``_`` are other characters,
    #: which the PR's user could create while its grant was an unescaped pattern.
    kind: Literal["schema", "user", "look-alike"]
    name: str


class StagingDatabase(Protocol):
    """Per-PR schemas and users on the shared staging server.

    Several controllers may share one server, each with its own ``schema_prefix``; one never
    drops (nor clones over) a schema or user that is not named with its own prefix.
    """

    @property
    def schema_prefix(self) -> str:
        """``[staging_mysql] schema_prefix``: PR schemas are ``<prefix>_<repo id>_<number>``."""
        ...

    def clone(self, source: str, target: str) -> CloneResult:
        """Make ``target`` (one of ours) a copy of ``source``, dropping any old ``target``."""
        ...

    def reset(self, source: str, target: str) -> CloneResult:
        """Throw away the PR's data and start again from ``source``."""
        ...

    def create_user(self, schema: str, *, password: str | None = None) -> Credentials:
        """Create the schema's user, or give it a new password; granted on that schema only.

        Without ``password`` a random one is made (each call rotates it); a caller that derives
        the password from its own secret can pass it, so it need not store it anywhere.
        """
        ...

    def drop(self, schema: str) -> None:
        """Remove schema, user and the schema's look-alikes; nothing to remove is not an error;
        a schema not named with this controller's prefix is refused (``StagingDatabaseError``),
        never dropped."""
        ...

    def exists(self, schema: str) -> bool: ...

    def leftovers(self, prefix: str | None = None) -> list[Leftover]:
        """This controller's schemas and users (named with its prefix), and look-alikes of its
        PR schemas (``_`` read as any character), for checking releases; ``prefix`` narrows the
        list (e.g. ``pr_12_`` for one repository) and must begin with ``<schema_prefix>_``."""
        ...
