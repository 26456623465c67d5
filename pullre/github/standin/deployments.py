"""The fake GitHub's deployments, deployment statuses and commit statuses.

Shapes follow docs.github.com/rest: a deployment's ``ref`` is resolved to a sha (a branch or
``refs/pull/N/head`` of a known PR), ``auto_inactive`` retires earlier successful deployments
of the same environment as GitHub does (never transient or production ones), and a status
whose description passes 140 characters is refused with GitHub's 422. Also here: the
repository lookup (404 when unknown) every resource shares.
"""

from __future__ import annotations

import re
from typing import Any

from pullre.github.standin.contents import GitHubContents
from pullre.github.standin.state import (
    Fail,
    Repo,
    Request,
    Response,
    iso,
    next_id,
    required,
    user_json,
    utc_now,
)


class GitHubDeployments(GitHubContents):
    @property
    def url(self) -> str:
        raise NotImplementedError

    def _repo(self, match: re.Match[str]) -> Repo:
        repo = self._repos.get(f"{match['o']}/{match['r']}")
        if repo is None:
            raise Fail(404, "Not Found")
        return repo

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
