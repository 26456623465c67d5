"""The PR's code: fetched into a bare cache, each deploy exported into a tree of its own.

``refs/pull/N/head`` lives in the base repository, so fetching it works for fork PRs without
knowing the fork. A tree per deploy keeps the running app's files untouched while the next sha
is built; if that deploy fails, the old app keeps serving from its own tree.

The tree is a plain export of the commit (``git archive``, unpacked by ``tar`` running as the app
user): it has no ``.git`` leading back into the agent's repository, which stays in the agent's
0700 workdir where PR code cannot write. Every git call also runs with ``core.hooksPath``
pointing at ``/dev/null`` and ``core.fsmonitor`` off, so a hook or a config planted anywhere
never runs as the agent.

Every git call is an argument list; PR data (a sha, a number) is validated before it gets here,
and ``--end-of-options`` keeps a URL from ever being read as an option.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pullre.agent import fetch_auth
from pullre.agent.assignment import SHA

FETCH_TIMEOUT_S = 600.0
LOCAL_TIMEOUT_S = 120.0
CONFIG_FILE = ".pullre.toml"
#: Before every git subcommand: nothing of the repository's may run code as the agent.
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


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

    def _git(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = LOCAL_TIMEOUT_S,
        env: dict[str, str] | None = None,
    ) -> str:
        result = self._run(args, cwd, timeout, env)
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace")
        if result.returncode != 0:
            raise GitError(f"git {args[0]} failed ({result.returncode}):\n{output}")
        return output

    def _run(
        self,
        args: tuple[str, ...],
        cwd: Path | None,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["git", *SAFE, *args]
        try:
            return subprocess.run(  # noqa: S603 - an argv list, no shell
                argv,
                cwd=cwd or self.path,
                env=self.env if env is None else env,
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

    def fetch_pr(
        self,
        clone_url: str,
        pr_number: int,
        token: str | None = None,
        no_token_because: str | None = None,
    ) -> str:
        """Fetch ``refs/pull/N/head`` into ``refs/remotes/pullre/pr-N``; returns git's output.

        ``token`` (a short-lived read token) reaches this one git process through its
        environment (``fetch_auth``) and is masked in whatever git says, success or failure.
        ``no_token_because`` (the controller's word on why it gave none) ends a failure's text.
        """
        if not isinstance(pr_number, int) or isinstance(pr_number, bool) or pr_number < 1:
            raise ValueError(f"not a PR number: {pr_number!r}")
        self.ensure()
        refspec = f"+refs/pull/{pr_number}/head:refs/remotes/pullre/pr-{pr_number}"
        env = fetch_auth.environ(self.env, clone_url, token)
        try:
            output = self._git(
                "fetch",
                "--force",
                "--no-tags",
                "--end-of-options",
                clone_url,
                refspec,
                timeout=FETCH_TIMEOUT_S,
                env=env,
            )
        except GitError as exc:
            text = fetch_auth.explain(str(exc), clone_url, token, no_token_because)
            raise GitError(text) from None
        finally:
            env.clear()  # the only copy besides the assignment's, which the pass drops
        return fetch_auth.mask(output, token)

    def export(self, sha: str, dest: Path, *, popen_kwargs: dict[str, Any] | None = None) -> str:
        """The files of ``sha`` unpacked into the empty directory ``dest`` by ``tar`` run with
        ``popen_kwargs`` (as the app user), so the tree is its own and nothing in the archive
        can write where the app user could not."""
        _check_sha(sha)
        if not self.has_commit(sha):
            raise GitError(
                f"commit {sha} is not in the fetched PR ref; the PR may have moved on since the "
                "controller looked"
            )
        tar_env = {"PATH": self.env.get("PATH", os.defpath), "LC_ALL": "C"}
        git_argv = ["git", *SAFE, "archive", "--format=tar", sha]
        tar_argv = ["tar", "-x", "--no-same-owner", "-f", "-", "-C", str(dest)]
        with tempfile.TemporaryFile() as errors:
            archive = subprocess.Popen(  # noqa: S603 - an argv list, no shell
                git_argv,
                cwd=self.path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            assert archive.stdout is not None
            try:
                untar = subprocess.run(  # noqa: S603 - an argv list, no shell
                    tar_argv,
                    cwd=dest,
                    env=tar_env,
                    stdin=archive.stdout,
                    capture_output=True,
                    timeout=LOCAL_TIMEOUT_S,
                    check=False,
                    **(popen_kwargs or {}),
                )
            except subprocess.TimeoutExpired:
                archive.kill()
                raise GitError(
                    f"unpacking {sha} took longer than {LOCAL_TIMEOUT_S:.0f} s"
                ) from None
            finally:
                archive.stdout.close()
                archive.wait()
            errors.seek(0)
            git_errors = errors.read().decode("utf-8", errors="replace")
        if archive.returncode != 0:
            raise GitError(f"git archive failed ({archive.returncode}):\n{git_errors}")
        if untar.returncode != 0:
            output = (untar.stdout + untar.stderr).decode("utf-8", errors="replace")
            raise GitError(f"tar failed ({untar.returncode}) unpacking {sha}:\n{output}")
        return f"exported {sha} into {dest}\n"

    def has_commit(self, sha: str) -> bool:
        _check_sha(sha)
        try:
            self._git("cat-file", "-e", f"{sha}^{{commit}}")
        except GitError:
            return False
        return True

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
