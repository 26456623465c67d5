"""The built-in SQL migrator: ``*.sql`` files of ``[migrations] sql_dir``, each applied once.

Applied files are recorded with their SHA-256 in ``pullre_schema_migrations`` inside the PR's
own schema, so the record travels with the data (a "reset data" that re-clones the schema also
forgets what was applied to it). A recorded file whose content changed fails the step: silently
re-running or skipping an edited migration would leave a schema nobody can reason about.

It drives the ``mariadb``/``mysql`` command-line client rather than a Python driver (the agent
is stdlib only), run as the app user: the files are the PR's code, and the client runs ``\\!``
shell lines. The password goes through a 0600 option file of the app user's, never the command
line, where any user of the box could read it in ``ps``. The agent reads each file itself with
``app_user.read_owned``, so a file the build swapped for a symlink or a hard link to the agent's
own files is refused, not sent. DDL commits implicitly in MySQL, so a file and its
record cannot be one transaction: a file is recorded right after it succeeds, and a pass killed
in between re-runs that one file next time.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pullre.agent.app_user import AppUser, read_owned
from pullre.agent.assignment import Database
from pullre.agent.mysql_options import find_client, option_file

TABLE = "pullre_schema_migrations"
FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$")
FILE_TIMEOUT_S = 1800.0
_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS `{TABLE}` ("
    "filename VARCHAR(255) NOT NULL PRIMARY KEY, "
    "checksum CHAR(64) NOT NULL, "
    "applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


class MigrationError(Exception):
    """The migrate step failed; the message is the whole step log, ending with the reason."""


def migrate(
    checkout: Path, sql_dir: str, database: Database, app: AppUser, environ: Mapping[str, str]
) -> str:
    """Apply pending files; returns the step log. Raises MigrationError with the log so far."""
    lines: list[str] = []

    def fail(reason: str) -> MigrationError:
        return MigrationError("\n".join([*lines, reason]))

    directory = (checkout / sql_dir).resolve()
    if not directory.is_relative_to(checkout.resolve()) or not directory.is_dir():
        raise fail(f"[migrations] sql_dir {sql_dir!r} is not a directory in the repository")
    files = sorted(path for path in directory.iterdir() if path.name.endswith(".sql"))
    bad = [path.name for path in files if not FILENAME.fullmatch(path.name) or not path.is_file()]
    if bad:
        raise fail(f"not migration files (letters, digits, . _ - and .sql only): {bad}")
    binary = find_client()
    if binary is None:
        raise fail("neither the mariadb nor the mysql client is installed on this box")

    try:
        contents = {path.name: read_owned(path, app) for path in files}
    except OSError as exc:
        raise fail(f"cannot read a migration file: {exc.strerror or exc}") from None
    with option_file(database, directory=app.tmp, prefix="mysql-client-") as options:
        app.give(options)
        client = _Client(binary, options, database, environ, app)
        client.execute(_CREATE_TABLE, "create the migrations table")
        applied = client.applied()
        checksums = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
        changed = [
            f"  {name}: applied with sha256 {applied[name]}, now {digest}"
            for name, digest in checksums.items()
            if name in applied and applied[name] != digest
        ]
        if changed:
            raise fail(
                "already applied migration file(s) changed since they were applied:\n"
                + "\n".join(changed)
                + "\nA migration runs once; add a new file instead of editing an applied one "
                "(or reset the environment's data)."
            )
        lines.extend(
            f"recorded but no longer in {sql_dir}: {name}"
            for name in sorted(set(applied) - set(checksums))
        )
        for path in files:
            if path.name in applied:
                lines.append(f"already applied: {path.name}")
                continue
            try:
                client.execute(contents[path.name], path.name)
            except MigrationError as exc:
                raise fail(str(exc)) from None
            client.execute(
                # Both values are checked shapes (FILENAME, hex digest): nothing to escape.
                f"INSERT INTO `{TABLE}` (filename, checksum) "  # noqa: S608
                f"VALUES ('{path.name}', '{checksums[path.name]}')",
                f"record {path.name}",
            )
            lines.append(f"applied: {path.name} (sha256 {checksums[path.name]})")
    if not files:
        lines.append(f"no .sql files in {sql_dir}")
    return "\n".join(lines)


class _Client:
    """The CLI logged in as the PR's user through an option file (see ``mysql_options``)."""

    def __init__(
        self,
        binary: str,
        option_file: Path,
        database: Database,
        environ: Mapping[str, str],
        app: AppUser,
    ) -> None:
        self.binary = binary
        self.option_file = option_file
        self.database = database
        self.env = {k: v for k, v in environ.items() if not k.startswith("PULLRE_AGENT_")}
        self.env.pop("MYSQL_PWD", None)
        self.app = app

    def _run(self, sql: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
        argv = [
            self.binary,
            f"--defaults-extra-file={self.option_file}",  # must come first
            "--batch",
            "--default-character-set=utf8mb4",
            *extra,
            f"--database={self.database.name}",
        ]
        try:
            return subprocess.run(  # noqa: S603 - an argv list, no shell
                argv,
                input=sql,
                env=self.env,
                capture_output=True,
                timeout=FILE_TIMEOUT_S,
                check=False,
                cwd=self.app.tmp,
                **self.app.popen_kwargs(),
            )
        except subprocess.TimeoutExpired:
            raise MigrationError(f"{self.binary} took longer than {FILE_TIMEOUT_S:.0f} s") from None

    def execute(self, sql: str | bytes, what: str) -> None:
        data = sql.encode() if isinstance(sql, str) else sql
        result = self._run(data)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode("utf-8", errors="replace")
            raise MigrationError(f"{what} failed (exit {result.returncode}):\n{output[-8000:]}")

    def applied(self) -> dict[str, str]:
        query = f"SELECT filename, checksum FROM `{TABLE}`"  # noqa: S608 - a constant
        result = self._run(query.encode(), "--skip-column-names")
        if result.returncode != 0:
            raise MigrationError(
                f"reading {TABLE} failed:\n{result.stderr.decode('utf-8', errors='replace')}"
            )
        rows = (line.split("\t") for line in result.stdout.decode().splitlines() if line)
        return {row[0]: row[1] for row in rows if len(row) == 2}
