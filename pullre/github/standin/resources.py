"""The REST resources of the fake GitHub, rendered in GitHub's documented JSON shapes.

Pulls follow the shape of the real webhook payloads (``head.repo.full_name`` naming a fork,
``merged_at`` on list items, ``merged`` only on the single-PR endpoint); issue comments follow
docs.github.com/rest. Deployments and statuses are ``deployments``, contents ``contents``; this
class holds the route table for all of them. Protocol concerns (auth, rate limit, ETag, paging,
faults) are the server's, in ``server``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from pullre.github.standin.deployments import GitHubDeployments
from pullre.github.standin.state import (
    Fail,
    Pull,
    Repo,
    Request,
    Response,
    iso,
    next_id,
    required,
    user_json,
    utc_now,
)

Route = Callable[[Request, re.Match[str]], Response]
_REPO = r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)"


class GitHubResources(GitHubDeployments):
    @property
    def url(self) -> str:
        raise NotImplementedError

    def routes(self) -> list[tuple[str, re.Pattern[str], Route]]:
        table: list[tuple[str, str, Route]] = [
            ("GET", "/pulls", self._list_pulls),
            ("GET", r"/pulls/(?P<n>\d+)", self._get_pull),
            ("GET", r"/issues/(?P<n>\d+)/comments", self._comments),
            ("POST", r"/issues/(?P<n>\d+)/comments", self._comment),
            ("PATCH", r"/issues/comments/(?P<id>\d+)", self._edit),
            ("GET", "/deployments", self._deployments),
            ("POST", "/deployments", self._deploy),
            ("GET", r"/deployments/(?P<id>\d+)/statuses", self._deployment_statuses),
            ("POST", r"/deployments/(?P<id>\d+)/statuses", self._deployment_status),
            ("POST", r"/statuses/(?P<sha>\w+)", self._status),
            ("GET", r"/commits/(?P<sha>[^/]+)/statuses", self._statuses),
            ("GET", r"/contents(?:/(?P<path>.*))?", self._contents),
        ]
        return [(verb, re.compile(_REPO + path + "$"), route) for verb, path, route in table]

    def _list_pulls(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        state = request.query.get("state", "open")
        sort = request.query.get("sort", "created")
        default_direction = "desc" if sort == "created" else "asc"
        descending = request.query.get("direction", default_direction) == "desc"
        pulls = [p for p in repo.pulls.values() if state in {"all", p.state}]
        key = (lambda p: p.updated_at) if sort == "updated" else (lambda p: p.number)
        pulls.sort(key=key, reverse=descending)
        return Response(200, [self._pull_json(repo, p) for p in pulls], paginated=True)

    def _get_pull(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        pull = repo.pulls.get(int(match["n"]))
        if pull is None:
            raise Fail(404, "Not Found")
        body = self._pull_json(repo, pull)
        body.update(
            merged=pull.merged_at is not None,
            mergeable=None if pull.state == "closed" else True,
            merged_by=user_json("octocat") if pull.merged_at else None,
            comments=len(repo.comments.get(pull.number, [])),
            commits=1,
        )
        return Response(200, body)

    def _pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        html = f"https://github.com/{repo.full_name}"
        head_repo = self._repo_json(Repo(pull.head_owner, repo.name, id=repo.id + 1))
        if pull.head_owner == repo.owner:
            head_repo = self._repo_json(repo)
        else:
            head_repo["fork"] = True
        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": repo.id * 100000 + pull.number,
            "html_url": f"{html}/pull/{pull.number}",
            "issue_url": f"{api}/issues/{pull.number}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": user_json(pull.author),
            "body": pull.body,
            "labels": [
                {"id": abs(hash(label)) % 10**9, "name": label, "color": "ededed", "default": False}
                for label in pull.labels
            ],
            "draft": pull.draft,
            "created_at": iso(pull.created_at),
            "updated_at": iso(pull.updated_at),
            "closed_at": iso(pull.closed_at),
            "merged_at": iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "head": {
                "label": f"{pull.head_owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "user": user_json(pull.head_owner),
                "repo": None if pull.fork_deleted else head_repo,
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": "0" * 40,
                "user": user_json(repo.owner),
                "repo": self._repo_json(repo),
            },
            "author_association": pull.author_association,
        }

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": user_json(repo.owner),
            "private": False,
            "fork": False,
            "html_url": f"https://github.com/{repo.full_name}",
            "url": f"{self.url}/repos/{repo.full_name}",
        }

    def _issue_number(self, repo: Repo, match: re.Match[str]) -> int:
        number = int(match["n"])
        if number not in repo.pulls:
            raise Fail(404, "Not Found")
        return number

    def _comments(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        return Response(200, repo.comments.get(self._issue_number(repo, match), []), paginated=True)

    def _comment(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        number = self._issue_number(repo, match)
        body = required(request, "body")
        comment_id = next_id()
        now = iso(utc_now())
        comment = {
            "id": comment_id,
            "url": f"{self.url}/repos/{repo.full_name}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo.full_name}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{number}",
            "body": body,
            "user": user_json(request.login),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
        }
        repo.comments.setdefault(number, []).append(comment)
        return Response(201, comment)

    def _edit(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        body = required(request, "body")
        for comment in itertools.chain.from_iterable(repo.comments.values()):
            if comment["id"] == int(match["id"]):
                comment.update(body=body, updated_at=iso(utc_now()))
                return Response(200, comment)
        raise Fail(404, "Not Found")
