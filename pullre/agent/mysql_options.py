"""The PR's MySQL credentials for the ``mariadb``/``mysql`` client, without a password in argv.

A password on the command line shows in ``ps`` to every user of the box; the client reads it
from an option file instead, which exists (owner-only) only while the client runs. Shared by
the built-in migrator and the ``sql`` smoke check, both part of the agent bundle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class Credentials(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...


def find_client(path: str | None = None) -> str | None:
    """The MariaDB client, else MySQL's, on ``path`` (default: this process's PATH)."""
    return shutil.which("mariadb", path=path) or shutil.which("mysql", path=path)


@contextmanager
def option_file(
    database: Credentials, *, directory: Path | None = None, prefix: str = "pullre-mysql-"
) -> Iterator[Path]:
    """A ``[client]`` option file for ``database``, removed as soon as the block ends."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".cnf", dir=directory)  # mode 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(
                "[client]\n"
                f"user={_quote(database.user)}\n"
                f"password={_quote(database.password)}\n"
                f"host={_quote(database.host)}\n"
                f"port={database.port}\n"
            )
        yield path
    finally:
        path.unlink(missing_ok=True)


def _quote(value: str) -> str:
    """An option-file value: quoted (``#`` and spaces survive) with the escapes the client reads."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'
