"""The fake GitHub's repository contents: ``GET /repos/{o}/{r}/contents/{path}?ref=``.

Shapes follow docs.github.com/rest/repos/contents: a directory answers a JSON array of entries
(``type`` ``file``/``dir``, ``name``, ``path``, ``sha``, ``size``...), a file one object with
its text base64-encoded in ``content`` (``encoding: base64``, wrapped every 60 characters as
GitHub does), a missing path or ref 404. Trees are kept per commit sha; a push carries the
previous head's files to the new commit, as a commit that touches nothing else would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import textwrap
from typing import Any
from urllib.parse import unquote

from pullre.github.standin.state import Fail, GitHubState, Repo, Request, Response


class GitHubContents(GitHubState):
    def __init__(self) -> None:
        super().__init__()
        self._trees: dict[tuple[str, str], dict[str, str]] = {}

    @property
    def url(self) -> str:
        raise NotImplementedError

    def commit_files(self, owner: str, name: str, sha: str, files: dict[str, str]) -> None:
        """Make ``files`` (path → text) the tree of commit ``sha``, replacing what it had."""
        with self._lock:
            self._trees[(f"{owner}/{name}", sha)] = dict(files)

    def push(self, owner: str, name: str, number: int, sha: str | None = None) -> str:
        with self._lock:
            before = self.pull(owner, name, number).head_sha
            after = super().push(owner, name, number, sha)
            key = f"{owner}/{name}"
            if (key, before) in self._trees and (key, after) not in self._trees:
                self._trees[(key, after)] = dict(self._trees[(key, before)])
            return after

    def _contents(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repos.get(f"{match['o']}/{match['r']}")
        if repo is None:
            raise Fail(404, "Not Found")
        ref = request.query.get("ref", "")
        sha = next(
            (p.head_sha for p in repo.pulls.values() if ref in {p.head_sha, p.head_ref}),
            ref,
        )
        tree = self._trees.get((repo.full_name, sha))
        if tree is None:
            raise Fail(404, f"No commit found for the ref {ref}")
        path = unquote(match["path"] or "").strip("/")
        if path in tree:
            return Response(200, self._entry(repo, path, tree[path], with_content=True))
        prefix = f"{path}/" if path else ""
        children: dict[str, dict[str, Any]] = {}
        for file_path, text in sorted(tree.items()):
            if not file_path.startswith(prefix):
                continue
            head, _, rest = file_path[len(prefix) :].partition("/")
            if rest:
                children.setdefault(head, self._dir(repo, prefix + head))
            else:
                children[head] = self._entry(repo, file_path, text, with_content=False)
        if not children:
            raise Fail(404, "Not Found")
        return Response(200, list(children.values()))

    def _entry(self, repo: Repo, path: str, text: str, *, with_content: bool) -> dict[str, Any]:
        data = text.encode("utf-8")
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 (git's id)
        entry: dict[str, Any] = {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob,
            "size": len(data),
            "url": f"{self.url}/repos/{repo.full_name}/contents/{path}",
            "download_url": None,
        }
        if with_content:
            encoded = base64.b64encode(data).decode()
            entry["encoding"] = "base64"
            entry["content"] = "\n".join(textwrap.wrap(encoded, 60)) + "\n"
        return entry

    def _dir(self, repo: Repo, path: str) -> dict[str, Any]:
        return {
            "type": "dir",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": hashlib.sha1(path.encode()).hexdigest(),  # noqa: S324 (a stand-in id)
            "size": 0,
            "url": f"{self.url}/repos/{repo.full_name}/contents/{path}",
            "download_url": None,
        }
