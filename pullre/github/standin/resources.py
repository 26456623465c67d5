"""The REST resources of the fake GitHub, rendered in GitHub's documented JSON shapes.

Pulls follow the shape of the real webhook payloads (``head.repo.full_name`` naming a fork,
``merged_at`` on list items, ``merged`` only on the single-PR endpoint); issue comments,
deployments, deployment statuses and commit statuses follow docs.github.com/rest. Protocol
concerns (auth, rate limit, ETag, paging, faults) are the server's, in ``github_standin``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from pullre.github.standin.contents import GitHubContents
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


class GitHubResources(GitHubContents):
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

    def _repo(self, match: re.Match[str]) -> Repo:
        repo = self._repos.get(f"{match['o']}/{match['r']}")
        if repo is None:
            raise Fail(404, "Not Found")
        return repo

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

    def _resolve(self, repo: Repo, ref: str) -> str:
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            return ref
        for pull in repo.pulls.values():
            if ref in {pull.head_ref, f"refs/pull/{pull.number}/head"}:
                return pull.head_sha
        raise Fail(422, f"No ref found for: {ref}")

    def _deploy(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        ref = required(request, "ref")
        data = request.body
        deployment_id = next_id()
        now = iso(utc_now())
        url = f"{self.url}/repos/{repo.full_name}/deployments/{deployment_id}"
        environment = data.get("environment", "production")
        deployment = {
            "url": url,
            "id": deployment_id,
            "sha": self._resolve(repo, ref),
            "ref": ref,
            "task": data.get("task", "deploy"),
            "payload": data.get("payload", {}),
            "original_environment": environment,
            "environment": environment,
            "description": data.get("description"),
            "creator": user_json(request.login),
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{url}/statuses",
            "repository_url": f"{self.url}/repos/{repo.full_name}",
            "transient_environment": bool(data.get("transient_environment", False)),
            "production_environment": bool(
                data.get("production_environment", environment == "production")
            ),
        }
        repo.deployments.append(deployment)
        return Response(201, deployment)

    def _deployments(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        wanted = {k: request.query[k] for k in ("sha", "ref", "environment") if k in request.query}
        found = [d for d in repo.deployments if all(d[k] == v for k, v in wanted.items())]
        return Response(200, sorted(found, key=lambda d: -int(d["id"])), paginated=True)

    def _deployment(self, repo: Repo, match: re.Match[str]) -> dict[str, Any]:
        for deployment in repo.deployments:
            if deployment["id"] == int(match["id"]):
                return deployment
        raise Fail(404, "Not Found")

    def _deployment_status(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        deployment = self._deployment(repo, match)
        state = required(request, "state")
        states = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
        if state not in states:
            raise Fail(422, "Validation Failed")
        data = request.body
        short_description(data, "DeploymentStatus")
        status_id = next_id()
        now = iso(utc_now())
        status = {
            "url": f"{deployment['url']}/statuses/{status_id}",
            "id": status_id,
            "state": state,
            "creator": user_json(request.login),
            "description": data.get("description", ""),
            "environment": data.get("environment", deployment["environment"]),
            "target_url": data.get("target_url", ""),
            "log_url": data.get("log_url", data.get("target_url", "")),
            "environment_url": data.get("environment_url", ""),
            "created_at": now,
            "updated_at": now,
            "deployment_url": deployment["url"],
            "repository_url": deployment["repository_url"],
        }
        repo.deployment_statuses.setdefault(deployment["id"], []).insert(0, status)
        if state == "success" and data.get("auto_inactive", True):
            self._retire_earlier(repo, deployment, request.login)
        return Response(201, status)

    def _retire_earlier(self, repo: Repo, deployment: dict[str, Any], login: str) -> None:
        """GitHub's ``auto_inactive`` (default true): earlier deployments to the same
        environment that succeeded get an ``inactive`` status, but only non-transient,
        non-production ones; a transient deployment is its creator's to retire."""
        for earlier in repo.deployments:  # kept in creation order
            if earlier["id"] == deployment["id"]:
                return
            statuses = repo.deployment_statuses.get(earlier["id"], [])
            if (
                earlier["environment"] == deployment["environment"]
                and not earlier["transient_environment"]
                and not earlier["production_environment"]
                and statuses
                and statuses[0]["state"] == "success"
            ):
                status_id, now = next_id(), iso(utc_now())
                statuses.insert(
                    0,
                    {
                        **statuses[0],
                        "url": f"{earlier['url']}/statuses/{status_id}",
                        "id": status_id,
                        "state": "inactive",
                        "description": "",
                        "creator": user_json(login),
                        "created_at": now,
                        "updated_at": now,
                    },
                )

    def _deployment_statuses(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        deployment = self._deployment(repo, match)
        return Response(200, repo.deployment_statuses.get(deployment["id"], []), paginated=True)

    def _status(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        state = required(request, "state")
        if state not in {"error", "failure", "pending", "success"}:
            raise Fail(422, "Validation Failed")
        data = request.body
        short_description(data, "Status")
        status_id = next_id()
        now = iso(utc_now())
        status = {
            "url": f"{self.url}/repos/{repo.full_name}/statuses/{match['sha']}",
            "id": status_id,
            "state": state,
            "description": data.get("description"),
            "target_url": data.get("target_url"),
            "context": data.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": user_json(request.login),
            "sha": match["sha"],
        }
        repo.commit_statuses.insert(0, status)
        return Response(201, {k: v for k, v in status.items() if k != "sha"})

    def _statuses(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(match)
        sha = self._resolve(repo, match["sha"])
        found = [{k: v for k, v in s.items() if k != "sha"} for s in repo.commit_statuses]
        found = [f for f, s in zip(found, repo.commit_statuses, strict=True) if s["sha"] == sha]
        return Response(200, found, paginated=True)


def short_description(data: dict[str, Any], resource: str) -> None:
    """GitHub refuses a commit or deployment status whose description passes 140 characters."""
    description = data.get("description")
    if isinstance(description, str) and len(description) > 140:
        failure = Fail(422, "Validation Failed")
        failure.response.body["errors"] = [
            {
                "resource": resource,
                "code": "custom",
                "field": "description",
                "message": "description is too long (maximum is 140 characters)",
            }
        ]
        raise failure
