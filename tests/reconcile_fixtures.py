"""A whole controller world for reconcile tests: a migrated DB, the GitHub stand-in, moto EC2.

Passes run against their own engine (not the rolled-back test transaction) because a pass opens
and commits many sessions of its own, as it does in production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from pullre import migrate
from pullre.clock import Clock, system_clock
from pullre.db import make_engine, make_session_factory
from pullre.ec2.port import Ec2
from pullre.environments.agent_reports import record_step
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Repository,
    Server,
    StepStatus,
)
from pullre.policies.savings import PoolPolicies
from pullre.reconcile.run import PassReport, run_pass
from pullre.staging_db.port import StagingDatabase
from tests.ec2_fixtures import Ec2Sandbox

OWNER, NAME = "acme", "shop"


@dataclass
class World:
    engine: Engine
    sessions: sessionmaker[Session]
    standin: GitHubStandIn
    github: PyGithubAdapter
    ec2: Ec2Sandbox
    servers: list[str] = field(default_factory=list)
    include_drafts: bool = False

    def add_repository(self, owner: str = OWNER, name: str = NAME, **values: object) -> int:
        self.standin.create_repo(owner, name)
        with self.sessions() as session:
            repo = Repository(owner=owner, name=name, **values)
            session.add(repo)
            session.commit()
            return repo.id

    def add_servers(self, count: int) -> list[str]:
        ids = self.ec2.create_instances(count)
        with self.sessions() as session:
            for index, instance_id in enumerate(ids, start=len(self.servers) + 1):
                session.add(
                    Server(
                        instance_id=instance_id,
                        name=f"stage-{index}",
                        staging_url=f"https://stage-{index}.example",
                    )
                )
            session.commit()
        self.servers.extend(ids)
        return ids

    def run(
        self,
        ec2: Ec2 | None = None,
        *,
        clock: Clock = system_clock,
        policies: PoolPolicies | None = None,
        staging: StagingDatabase | None = None,
        prices: Mapping[str, Decimal] | None = None,
    ) -> PassReport:
        return run_pass(
            self.engine,
            self.github,
            ec2 or self.ec2.adapter,
            include_drafts=self.include_drafts,
            lease_ttl=timedelta(seconds=60),
            clock=clock,
            policies=policies,
            staging=staging,
            prices=prices,
        )

    def environments(self) -> dict[int, tuple[str, str | None]]:
        """PR number → (status, instance id) of its newest environment."""
        with self.sessions() as session:
            rows = session.execute(
                select(PullRequest.number, Environment.status, Server.instance_id)
                .join(Environment, Environment.pull_request_id == PullRequest.id)
                .outerjoin(Server, Environment.server_id == Server.id)
                .order_by(Environment.id)
            ).all()
        return {number: (status.value, instance) for number, status, instance in rows}

    def active(self) -> dict[int, tuple[str, str | None]]:
        return {
            n: v for n, v in self.environments().items() if v[0] != EnvironmentStatus.RELEASED.value
        }

    def states(self) -> dict[str, str]:
        return {i: self.ec2.state_of(i) for i in self.servers}

    # -- for tests of what happens over time (policies, office hours, cost) -------------------

    def newest(self, number: int, owner: str = OWNER, name: str = NAME) -> Environment:
        """The PR's newest environment, loaded with its PR and server (for reading only)."""
        with self.sessions() as session:
            environment = session.scalars(
                select(Environment)
                .join(Environment.pull_request)
                .join(PullRequest.repository)
                .where(
                    PullRequest.number == number, Repository.owner == owner, Repository.name == name
                )
                .order_by(Environment.id.desc())
                .limit(1)
                .options(joinedload(Environment.pull_request), joinedload(Environment.server))
            ).one()
            return environment

    def act(self, number: int, do: Callable[[Session, PullRequest], object]) -> None:
        """Run an action (``actions.wake``...) on PR ``number`` of acme/shop and commit it."""
        with self.sessions() as session:
            pull = session.scalars(
                select(PullRequest)
                .join(PullRequest.repository)
                .where(PullRequest.number == number, Repository.name == NAME)
            ).one()
            do(session, pull)
            session.commit()

    def agent_deploys(self, number: int, clock: Clock, *, fails: bool = False) -> None:
        """PR ``number``'s server reports a deploy of its head sha, as the agent API records
        it (``agent_reports.record_step``): healthy and ready, or failed at the build."""
        environment = self.newest(number)
        steps = [("fetch", StepStatus.RUNNING)]
        steps += [("build", StepStatus.FAILED)] if fails else [("health", StepStatus.OK)]
        with self.sessions() as session:
            server = session.get(Server, environment.server_id)
            assert server is not None
            for step, status in steps:
                record_step(
                    session, server, environment_id=environment.id,
                    head_sha=environment.pull_request.head_sha, step=step, status=status,
                    log="build broke" if fails else "", clock=clock,
                )  # fmt: skip
            session.commit()

    def events(self, kind: str) -> list[str]:
        """Messages of every event of ``kind``, oldest first."""
        with self.sessions() as session:
            return list(
                session.scalars(select(Event.message).where(Event.kind == kind).order_by(Event.id))
            )


@pytest.fixture
def world(
    tmp_path: Path, github_standin: GitHubStandIn, github: PyGithubAdapter, ec2: Ec2Sandbox
) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'controller.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    yield World(engine, make_session_factory(engine), github_standin, github, ec2)
    engine.dispose()
