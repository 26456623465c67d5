"""The sample repository the sandbox serves: a real git repo and its four PRs on the stand-in.

The repository is real (the agents fetch ``refs/pull/N/head`` from it as they do from GitHub)
and each PR shows one thing pullre handles: a SQL migration applied to the PR's schema only, a
commit that lives only in a fork, a smoke check that fails, and a fourth PR that must queue
because the pool has three servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pullre.github.standin.server import GitHubStandIn

OWNER, NAME = "acme", "shop"
APP = (Path(__file__).parent / "sample_app.py").read_text()
MIGRATION = "UPDATE greeting SET message = 'hello from the migration PR';\n"


def pullre_toml(*, migrations: bool = False, broken_smoke: bool = False) -> str:
    """The deploy settings at a commit; the port is left to each agent's ini (one per box)."""
    lines = [
        "[deploy]",
        f'start = [{_quoted(sys.executable)}, "app.py"]',
        'health_path = "/"',
        "health_timeout = 20",
        "",
        "[[smoke]]",
        'name = "home page"',
        'type = "http"',
        'path = "/"',
        'contains = "sample app"',
    ]
    if migrations:
        lines += ["", "[migrations]", 'sql_dir = "db/migrations"']
    if broken_smoke:
        lines += ["", "[[smoke]]", 'name = "orders page"', 'type = "http"', 'path = "/orders"']
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def git(cwd: Path, *args: str, extra: dict[str, str] | None = None, stdin: str = "") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Sandbox",
        "GIT_AUTHOR_EMAIL": "sandbox@example.com",
        "GIT_COMMITTER_NAME": "Sandbox",
        "GIT_COMMITTER_EMAIL": "sandbox@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,  # the user's hooks and signing must not apply here
        "GIT_CONFIG_NOSYSTEM": "1",
        **(extra or {}),
    }
    result = subprocess.run(  # noqa: S603 - an argv list, no shell
        ["git", *args],  # noqa: S607 - git from PATH, as the agent runs it
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class SampleRepo:
    """The origin repository and the PRs opened on the stand-in from it."""

    path: Path
    standin: GitHubStandIn
    base_files: dict[str, str] = field(default_factory=dict)
    trees: dict[int, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, path: Path, standin: GitHubStandIn) -> SampleRepo:
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        repo = cls(path=path, standin=standin)
        repo.base_files = {"app.py": APP, ".pullre.toml": pullre_toml()}
        sha = repo._commit(None, repo.base_files, "The sample app")
        git(path, "update-ref", "refs/heads/main", sha)
        standin.create_repo(OWNER, NAME)
        standin.commit_files(OWNER, NAME, sha, repo.base_files)
        return repo

    def open_pulls(self) -> list[int]:
        """The four PRs, oldest first, so the last one is the one that waits in the queue."""
        return [
            self._open(
                "Migrate the greeting",
                "alice",
                {
                    ".pullre.toml": pullre_toml(migrations=True),
                    "db/migrations/001_greeting.sql": MIGRATION,
                },
            ),
            self._open("Friendlier home page", "mallory", {}, fork="mallory"),
            self._open(
                "Add an orders page", "bob", {".pullre.toml": pullre_toml(broken_smoke=True)}
            ),
            self._open("Tidy the footer", "carol", {}),
        ]

    def open_pull(self, title: str, author: str) -> int:
        """One more PR with the base files (benchmarks open many); its number."""
        return self._open(title, author, {})

    def _open(self, title: str, author: str, changes: dict[str, str], fork: str = "") -> int:
        files = {**self.base_files, **changes}
        files["app.py"] = _with_version(files["app.py"], title)
        sha = self._commit(self.base_sha(), files, title)
        number = self.standin.open_pull(
            OWNER,
            NAME,
            title=title,
            author=author,
            head_sha=sha,
            fork_owner=fork or None,
            head_ref=f"change-{len(self.trees) + 1}",
        )
        self.standin.commit_files(OWNER, NAME, sha, files)
        self.trees[number] = files
        git(self.path, "update-ref", f"refs/pull/{number}/head", sha)
        return number

    def base_sha(self) -> str:
        return git(self.path, "rev-parse", "refs/heads/main")

    def push(self, number: int) -> str:
        """A new commit on top of PR ``number``'s head, as its author would push it."""
        with self.lock:
            pull = self.standin.pull(OWNER, NAME, number)
            if pull.state != "open":
                raise ValueError(f"PR #{number} is {pull.state}")
            files = dict(self.trees[number])
            stamp = time.strftime("%H:%M:%S")
            files["app.py"] = _with_version(files["app.py"], f"{pull.title}, pushed at {stamp}")
            sha = self._commit(pull.head_sha, files, f"Update #{number} at {stamp}")
            git(self.path, "update-ref", f"refs/pull/{number}/head", sha)
            self.trees[number] = files
            self.standin.commit_files(OWNER, NAME, sha, files)
            self.standin.push(OWNER, NAME, number, sha)
            return sha

    def _commit(self, parent: str | None, files: dict[str, str], message: str) -> str:
        """A commit with exactly ``files`` on no branch: only refs say who points at it."""
        index = self.path / ".git" / "sandbox-index"
        index.unlink(missing_ok=True)
        own_index = {"GIT_INDEX_FILE": str(index)}
        for name, text in files.items():
            blob = git(self.path, "hash-object", "-w", "--stdin", stdin=text)
            entry = f"100644,{blob},{name}"
            git(self.path, "update-index", "--add", "--cacheinfo", entry, extra=own_index)
        tree = git(self.path, "write-tree", extra=own_index)
        args = ["commit-tree", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        return git(self.path, *args)


def _with_version(app: str, version: str) -> str:
    start = app.index("VERSION = ")
    end = app.index("\n", start)
    return app[:start] + f"VERSION = {version!r}" + app[end:]
