"""EC2 and GitHub as in-process fakes of pullre's two ports, for replaying a month in a minute.

The fleet benchmark runs tens of thousands of reconcile passes; over HTTP (moto, the GitHub
stand-in) that would take hours, and neither HTTP layer is what it measures. These fakes keep
the behaviour the pass depends on and nothing more:

* EC2: an instance asked to start is ``pending`` and one asked to stop is ``stopping`` until
  ``settle()``, which the simulation calls once per tick, before the pass: so a transition
  takes one pass, and the pass sees the in-between state as it would on EC2.
* GitHub: a weak ETag per repository that changes only when one of its PRs does, so an
  unchanged repository answers ``NotModified`` as GitHub's 304 does; writes (deployments,
  statuses, the PR comment) are accepted and kept just enough for the reporter to find its
  comment again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from pullre.ec2.port import IncorrectState, InstanceInfo, InstanceNotFound, InstancePage
from pullre.github.port import (
    Comment,
    CommitState,
    CommitStatus,
    ContentEntry,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    GitHubNotFound,
    NotModified,
    OpenPulls,
    PullRequestInfo,
)

_SETTLED = {"pending": "running", "stopping": "stopped"}


class FleetEc2:
    """A pool of instances that take one ``settle()`` to finish starting or stopping."""

    def __init__(self, instance_type: str) -> None:
        self.instance_type = instance_type
        self.states: dict[str, str] = {}
        self._calls: Counter[str] = Counter()

    def add_instances(self, count: int) -> list[str]:
        ids = [f"i-{len(self.states) + n:017x}" for n in range(count)]
        self.states.update(dict.fromkeys(ids, "stopped"))
        return ids

    def settle(self) -> None:
        """EC2 finishes every transition asked for before now."""
        for instance_id, state in self.states.items():
            self.states[instance_id] = _SETTLED.get(state, state)

    def in_transition(self) -> bool:
        return any(state in _SETTLED for state in self.states.values())

    def running(self, instance_id: str) -> bool:
        return self.states.get(instance_id) == "running"

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        self._calls["DescribeInstances"] += 1
        return {i: self._info(i) for i in instance_ids if i in self.states}

    def list_instances(
        self,
        tag_filter: tuple[str, str] | None = None,
        page_token: str | None = None,
        page_size: int = 100,
    ) -> InstancePage:
        self._calls["DescribeInstances"] += 1
        return InstancePage([self._info(i) for i in self.states], None)

    def start(self, instance_id: str) -> str:
        self._calls["StartInstances"] += 1
        state = self._state(instance_id, "StartInstances")
        if state == "stopping":
            raise IncorrectState(f"{instance_id} is stopping", code="IncorrectInstanceState")
        if state == "stopped":
            self.states[instance_id] = state = "pending"
        return state

    def stop(self, instance_id: str) -> str:
        self._calls["StopInstances"] += 1
        state = self._state(instance_id, "StopInstances")
        if state in {"pending", "running"}:
            self.states[instance_id] = state = "stopping"
        return state

    @property
    def calls(self) -> Mapping[str, int]:
        return dict(self._calls)

    def _state(self, instance_id: str, operation: str) -> str:
        if instance_id not in self.states:
            raise InstanceNotFound(f"{operation}: no {instance_id}", operation=operation)
        return self.states[instance_id]

    def _info(self, instance_id: str) -> InstanceInfo:
        return InstanceInfo(
            instance_id, self.states[instance_id], "10.0.0.1", "", self.instance_type
        )


@dataclass
class FleetGitHubStats:
    requests: int = 0
    not_modified: int = 0
    rate_limit_remaining: int | None = None


@dataclass
class _Repo:
    version: int = 0
    pulls: dict[int, PullRequestInfo] = field(default_factory=dict)
    comments: dict[int, list[Comment]] = field(default_factory=dict)


class FleetGitHub:
    """Repositories whose PRs the simulation opens, pushes to and closes, at given moments."""

    def __init__(self) -> None:
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._ids = itertools.count(1)
        self._stats = FleetGitHubStats()

    # -- driving, as people do on github.com --------------------------------------------------

    def create_repo(self, owner: str, name: str) -> None:
        self._repos.setdefault((owner, name), _Repo())

    def open_pull(self, owner: str, name: str, number: int, author: str, at: datetime) -> None:
        self._change(owner, name).pulls[number] = PullRequestInfo(
            number=number,
            title=f"Change {number}",
            author_login=author,
            head_ref=f"feature/{number}",
            head_sha=self._sha(),
            head_repository=None,
            state="open",
            draft=False,
            labels=(),
            created_at=at,
            updated_at=at,
        )

    def push(self, owner: str, name: str, number: int, at: datetime) -> None:
        repo = self._change(owner, name)
        repo.pulls[number] = replace(repo.pulls[number], head_sha=self._sha(), updated_at=at)

    def merge(self, owner: str, name: str, number: int, at: datetime) -> None:
        repo = self._change(owner, name)
        repo.pulls[number] = replace(repo.pulls[number], state="merged", updated_at=at)

    def _change(self, owner: str, name: str) -> _Repo:
        repo = self._repos[(owner, name)]
        repo.version += 1
        return repo

    def _sha(self) -> str:
        return f"{next(self._ids):040x}"

    # -- the port -----------------------------------------------------------------------------

    @property
    def stats(self) -> FleetGitHubStats:
        return self._stats

    def list_open_pulls(
        self, owner: str, name: str, etag: str | None = None
    ) -> OpenPulls | NotModified:
        repo = self._repo(owner, name)
        current = f'W/"{repo.version}"'
        if etag == current:
            self._stats.not_modified += 1
            return NotModified(current)
        open_pulls = tuple(p for p in repo.pulls.values() if p.state == "open")
        return OpenPulls(open_pulls, current)

    def get_pull(self, owner: str, name: str, number: int) -> PullRequestInfo:
        pull = self._repo(owner, name).pulls.get(number)
        if pull is None:
            raise GitHubNotFound(f"{owner}/{name}#{number}", 404)
        return pull

    def create_deployment(
        self, owner: str, name: str, *, ref: str, environment: str, description: str = ""
    ) -> Deployment:
        self._repo(owner, name)
        return Deployment(next(self._ids), ref, ref, environment, _EPOCH)

    def create_deployment_status(
        self,
        owner: str,
        name: str,
        deployment_id: int,
        *,
        state: DeploymentState,
        environment_url: str = "",
        log_url: str = "",
        description: str = "",
    ) -> DeploymentStatus:
        self._repo(owner, name)
        return DeploymentStatus(next(self._ids), deployment_id, state, environment_url, _EPOCH)

    def list_issue_comments(self, owner: str, name: str, number: int) -> tuple[Comment, ...]:
        return tuple(self._repo(owner, name).comments.get(number, ()))

    def create_comment(self, owner: str, name: str, number: int, body: str) -> Comment:
        comment = Comment(next(self._ids), "pullre-bot", body, "", _EPOCH, _EPOCH)
        self._repo(owner, name).comments.setdefault(number, []).append(comment)
        return comment

    def edit_comment(self, owner: str, name: str, comment_id: int, body: str) -> Comment:
        for comments in self._repo(owner, name).comments.values():
            for index, comment in enumerate(comments):
                if comment.id == comment_id:
                    comments[index] = replace(comment, body=body)
                    return comments[index]
        raise GitHubNotFound(f"comment {comment_id}", 404)

    def create_commit_status(
        self,
        owner: str,
        name: str,
        sha: str,
        *,
        state: CommitState,
        context: str,
        description: str = "",
        target_url: str = "",
    ) -> CommitStatus:
        self._repo(owner, name)
        return CommitStatus(next(self._ids), state, context, description, target_url, _EPOCH)

    def list_directory(
        self, owner: str, name: str, path: str, ref: str
    ) -> tuple[ContentEntry, ...]:
        self._repo(owner, name)
        raise GitHubNotFound(f"{path} at {ref}", 404)  # the simulated PRs carry no scenarios

    def read_file(self, owner: str, name: str, path: str, ref: str) -> str:
        self._repo(owner, name)
        raise GitHubNotFound(f"{path} at {ref}", 404)

    def _repo(self, owner: str, name: str) -> _Repo:
        self._stats.requests += 1
        repo = self._repos.get((owner, name))
        if repo is None:
            raise GitHubNotFound(f"{owner}/{name}", 404)
        return repo


_EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
