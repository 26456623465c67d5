"""The PR's code: fetched into a bare cache, each deploy checked out into a worktree of its own.

``refs/pull/N/head`` lives in the base repository, so fetching it works for fork PRs without
knowing the fork. A worktree per deploy keeps the running app's files untouched while the next
sha is built; if that deploy fails, the old app keeps serving from its own tree.

Every git call is an argument list; PR data (a sha, a number) is validated before it gets here,
and ``--end-of-options`` keeps a URL from ever being read as an option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pullre.agent.assignment import SHA

FETCH_TIMEOUT_S = 600.0
LOCAL_TIMEOUT_S = 120.0
CONFIG_FILE = ".pullre.toml"


class GitError(Exception):
    """A git command failed; the message holds its output."""


def git_environ(base: Mapping[str, str]) -> dict[str, str]:
    """Never prompt for credentials (a cron job would hang) and speak only ordinary protocols."""
    env = {k: v for k, v in base.items() if not k.startswith("PULLRE_AGENT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ALLOW_PROTOCOL="file:git:http:https:ssh",
        LC_ALL="C",
    )
    return env


class Repo:
    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.env = git_environ(os.environ if environ is None else environ)

    def _git(self, *args: str, cwd: Path | None = None, timeout: float = LOCAL_TIMEOUT_S) -> str:
        result = self._run(args, cwd, timeout)
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace")
        if result.returncode != 0:
            raise GitError(f"git {args[0]} failed ({result.returncode}):\n{output}")
        return output

    def _run(
        self, args: tuple[str, ...], cwd: Path | None, timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["git", *args]
        try:
            return subprocess.run(  # noqa: S603 - an argv list, no shell
                argv,
                cwd=cwd or self.path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from None

    def ensure(self) -> None:
        if not (self.path / "HEAD").is_file():
            self.path.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", ".")

    def fetch_pr(self, clone_url: str, pr_number: int) -> str:
        """Fetch ``refs/pull/N/head`` into ``refs/remotes/pullre/pr-N``; returns git's output."""
        if not isinstance(pr_number, int) or isinstance(pr_number, bool) or pr_number < 1:
            raise ValueError(f"not a PR number: {pr_number!r}")
        self.ensure()
        refspec = f"+refs/pull/{pr_number}/head:refs/remotes/pullre/pr-{pr_number}"
        return self._git(
            "fetch",
            "--force",
            "--no-tags",
            "--end-of-options",
            clone_url,
            refspec,
            timeout=FETCH_TIMEOUT_S,
        )

    def checkout(self, sha: str, dest: Path) -> str:
        """A clean worktree at exactly ``sha`` in ``dest`` (replacing whatever was there)."""
        _check_sha(sha)
        if not self.has_commit(sha):
            raise GitError(
                f"commit {sha} is not in the fetched PR ref; the PR may have moved on since the "
                "controller looked"
            )
        self.remove_worktree(dest)
        output = self._git(
            "worktree", "add", "--force", "--detach", "--no-checkout", str(dest), sha
        )
        output += self._git("checkout", "--force", "--detach", sha, cwd=dest)
        output += self._git("clean", "-ffdx", cwd=dest)
        return output

    def has_commit(self, sha: str) -> bool:
        _check_sha(sha)
        try:
            self._git("cat-file", "-e", f"{sha}^{{commit}}")
        except GitError:
            return False
        return True

    def remove_worktree(self, dest: Path) -> None:
        if dest.exists():
            try:
                self._git("worktree", "remove", "--force", "--force", str(dest))
            except GitError:
                shutil.rmtree(dest, ignore_errors=True)  # a tree git no longer knows
        self._git("worktree", "prune")

    def read_file(self, sha: str, name: str = CONFIG_FILE) -> bytes | None:
        """A top-level file's bytes at ``sha`` as committed (a symlink is not followed)."""
        _check_sha(sha)
        listing = self._git("ls-tree", "-z", sha, "--", name).rstrip("\0")
        if not listing:
            return None
        mode, kind, _ = listing.split("\t", 1)[0].split(" ")
        if kind != "blob" or mode == "120000":
            raise GitError(f"{name} must be a regular file, not a {kind} (mode {mode})")
        result = self._run(("cat-file", "blob", f"{sha}:{name}"), None, LOCAL_TIMEOUT_S)
        if result.returncode != 0:
            raise GitError(result.stderr.decode("utf-8", errors="replace"))
        return result.stdout


def _check_sha(sha: str) -> None:
    if not SHA.fullmatch(sha):
        raise ValueError(f"not a 40-hex commit sha: {sha[:60]!r}")
