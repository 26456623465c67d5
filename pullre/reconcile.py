"""One reconcile pass: make the pool match what GitHub wants, safely, any number of times.

The pass never trusts that the previous one finished. Every step reads the state left in the
database and what EC2 reports now, and each PR's change is its own transaction, so a pass killed
at any point is finished by the next one. Order matters:

1. sync every enabled repository (a GitHub problem is recorded, the other repositories go on);
2. plan: queue wanted PRs, mark unwanted environments for release;
3. observe the pool with one paginated DescribeInstances;
4. release: stop what is no longer wanted, drop its schema, free its server once stopped;
5. assign queued PRs to free servers, oldest first, and start them;
6. stop running pool instances that no environment holds (left by a crash);
7. clone the schema of every environment that has a server but no schema yet;
8. report to GitHub what changed (last, and even when EC2 could not be observed: a GitHub
   problem never holds back assignment or deploys, and a PR's queue position still shows).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pullre import events, lease, pass_history, pool, provisioning, reporting
from pullre.clock import Clock, system_clock
from pullre.config import Settings, public_url
from pullre.ec2 import Ec2, Ec2Error, Ec2Throttled, InstanceInfo, InsufficientCapacity
from pullre.github import GitHub, GitHubError, GitHubRateLimited
from pullre.models import Environment, EnvironmentStatus, Repository, Server
from pullre.mysql import StagingDatabase
from pullre.secret_key import resolve_secret_key
from pullre.sync import sync_repository

log = logging.getLogger(__name__)

LEASE_NAME = "reconcile"
#: A start asked for but not visible after this long is asked again (the instance may have
#: been stopped by hand, or the request lost).
START_RETRY_AFTER = timedelta(minutes=5)


@dataclass
class PassReport:
    """What one pass did, for the log line, the exit status and the tests."""

    skipped: bool = False
    lease_holder: str | None = None
    repositories: int = 0
    unchanged: int = 0
    assigned: list[tuple[int, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_configured_pass(
    settings: Settings,
    engine: Engine,
    github: GitHub,
    ec2: Ec2,
    *,
    staging: StagingDatabase | None = None,
    clock: Clock = system_clock,
) -> PassReport:
    """``run_pass`` with its options read from settings: what cron and webhooks both run."""
    return run_pass(
        engine,
        github,
        ec2,
        include_drafts=settings.pool.include_drafts,
        lease_ttl=timedelta(seconds=settings.pool.lease_seconds),
        clock=clock,
        staging=staging,
        secret_key=resolve_secret_key(settings),
        public_url=public_url(settings),
    )


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_pass(
    engine: Engine,
    github: GitHub,
    ec2: Ec2,
    *,
    include_drafts: bool,
    lease_ttl: timedelta,
    clock: Clock = system_clock,
    holder: str | None = None,
    staging: StagingDatabase | None = None,
    secret_key: str = "",
    public_url: str = "",
) -> PassReport:
    """Take the lease and reconcile once; a pass that finds the lease taken does nothing."""
    holder = holder or new_holder()
    handle = lease.try_acquire(engine, LEASE_NAME, holder, lease_ttl, clock)
    if handle is None:
        other, until = lease.current_holder(engine, LEASE_NAME)
        log.info("another pass (%s) holds the lease until %s; nothing to do", other, until)
        return PassReport(skipped=True, lease_holder=other)
    sessions = sessionmaker(engine, expire_on_commit=False)
    work = _Pass(sessions=sessions, github=github, ec2=ec2, clock=clock, renew=handle.renew)
    work.staging, work.secret_key = staging, secret_key
    work.public_url = public_url
    meter = pass_history.Meter(github, ec2, clock)
    try:
        work.run(include_drafts)
    except Exception as exc:
        work.report.errors.append(f"pass failed: {exc}")  # so its history row shows it
        raise
    finally:
        handle.release()
        _record_history(sessions, meter, work.report, clock)
    work.report.lease_holder = holder
    return work.report


def _record_history(
    sessions: sessionmaker[Session], meter: pass_history.Meter, report: PassReport, clock: Clock
) -> None:
    """After the lease is given back: history is a by-product and never fails the pass."""
    pass_history.record(
        sessions,
        meter,
        assigned=len(report.assigned),
        released=len(report.released),
        errors=len(report.errors),
        clock=clock,
    )


class _Pass:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        github: GitHub,
        ec2: Ec2,
        clock: Clock,
        renew: Callable[[], None],
    ) -> None:
        self.sessions, self.github, self.ec2, self.clock = sessions, github, ec2, clock
        self.renew = renew
        self.report = PassReport()
        self.ec2_usable = True
        self.staging: StagingDatabase | None = None
        self.secret_key = ""
        self.public_url = ""

    def run(self, include_drafts: bool) -> None:
        self.sync_all()
        with self.sessions() as session:
            pool.plan(session, include_drafts, self.clock)
            session.commit()
        self.renew()
        observed = self.observe()
        # Without a fresh view of the pool, acting on EC2 could double-start.
        if observed is not None:
            self.release(observed)
            self.assign(observed)
            self.start_provisioning(observed)
            self.stop_orphans(observed)
            self.provision_schemas()
        self.report.errors += reporting.report_changes(
            self.sessions, self.github, public_url=self.public_url, clock=self.clock,
            renew=self.renew,
        )  # fmt: skip

    # -- GitHub -------------------------------------------------------------------------------

    def sync_all(self) -> None:
        with self.sessions() as session:
            ids = session.scalars(
                select(Repository.id).where(Repository.enabled.is_(True)).order_by(Repository.id)
            ).all()
        rate_limited: GitHubRateLimited | None = None
        for repository_id in ids:
            with self.sessions() as session:
                repository = session.get(Repository, repository_id)
                if repository is None:
                    continue
                self.report.repositories += 1
                if rate_limited is not None:
                    self._error(
                        session,
                        f"{repository.full_name}: not synced, {rate_limited}",
                        repository_id=repository.id,
                    )
                    continue
                session.commit()  # GitHub may be slow: hold no transaction while it answers
                try:
                    result = sync_repository(session, self.github, repository, self.clock)
                    session.commit()
                except GitHubRateLimited as exc:
                    session.rollback()
                    rate_limited = exc  # every later request would be refused as well
                    self._error(
                        session, f"{repository.full_name}: {exc}", repository_id=repository_id
                    )
                    continue
                except GitHubError as exc:
                    session.rollback()
                    self._error(
                        session, f"{repository.full_name}: {exc}", repository_id=repository_id
                    )
                    continue
                self.report.unchanged += result.unchanged
                self.report.errors.extend(result.errors)
            self.renew()

    # -- staging MySQL ------------------------------------------------------------------------

    def provision_schemas(self) -> None:
        if self.staging is None:
            return
        with self.sessions() as session:
            for environment in provisioning.environments_needing_a_schema(session):
                error = provisioning.provision(
                    session,
                    self.staging,
                    environment,
                    secret_key=self.secret_key,
                    clock=self.clock,
                )
                if error is not None:
                    self.report.errors.append(error)
                self.renew()

    # -- EC2 ----------------------------------------------------------------------------------

    def observe(self) -> dict[str, InstanceInfo] | None:
        with self.sessions() as session:
            servers = session.scalars(select(Server).where(Server.in_pool.is_(True))).all()
            if not servers:
                return {}
            session.commit()  # hold no transaction while EC2 answers
            try:
                seen = self.ec2.describe([s.instance_id for s in servers])
            except Ec2Error as exc:
                self._error(session, f"could not observe the pool, no EC2 action this pass: {exc}")
                return None
            now = self.clock()
            for server in servers:
                info = seen.get(server.instance_id)
                server.observed_state = info.state if info else "missing"
                server.observed_at = now
                if info is not None and info.private_ip:
                    server.private_ip = info.private_ip
            session.commit()
            return seen

    def release(self, observed: dict[str, InstanceInfo]) -> None:
        with self.sessions() as session:
            releasing = session.scalars(
                select(Environment).where(Environment.status == EnvironmentStatus.RELEASING)
            ).all()
            for environment in releasing:
                server = environment.server
                info = observed.get(server.instance_id) if server else None
                state = info.state if info else "gone"
                if server is not None and state in {"running", "pending", "stopping"}:
                    if state == "running" and self.ec2_usable:
                        self._stop(session, server, environment)
                    continue  # pending: never stop mid-start; stopping: wait until stopped
                if self.staging is not None:
                    error = provisioning.drop(session, self.staging, environment)
                    if error is not None:
                        self.report.errors.append(error)
                        continue  # keep it releasing: the next pass drops it again
                environment.status = EnvironmentStatus.RELEASED
                environment.released_at = self.clock()
                environment.server_id = None
                where = f" from {server.name or server.instance_id}" if server else ""
                events.record(
                    session,
                    "released",
                    f"#{environment.pull_request.number} released{where}",
                    pull_request=environment.pull_request,
                    server=server,
                )
                session.commit()
                self.report.released.append(environment.pull_request.number)
                self.renew()

    def assign(self, observed: dict[str, InstanceInfo]) -> None:
        if not self.ec2_usable:
            return
        with self.sessions() as session:
            candidates = pool.free_servers(session)
            for environment in pool.queued_environments(session):
                while candidates and self.ec2_usable:
                    server = candidates.pop(0)
                    if self._assign_one(session, environment, server):
                        break

    def _assign_one(self, session: Session, environment: Environment, server: Server) -> bool:
        pull = environment.pull_request
        environment.server_id = server.id
        environment.status = EnvironmentStatus.PROVISIONING
        environment.assigned_at = self.clock()
        environment.last_error = None
        events.record(
            session,
            "assigned",
            f"#{pull.number} gets {server.name or server.instance_id}",
            pull_request=pull,
            server=server,
        )
        try:
            session.commit()
        except IntegrityError:  # the database saw the server held after all: never share it
            session.rollback()
            return False
        self.report.assigned.append((pull.number, server.instance_id))
        if server.observed_state == "stopped":
            return self._start(session, environment, server)
        return True

    def start_provisioning(self, observed: dict[str, InstanceInfo]) -> None:
        """Start servers assigned by a pass that stopped before asking EC2 to start them."""
        if not self.ec2_usable:
            return
        now = self.clock()
        with self.sessions() as session:
            for environment in session.scalars(
                select(Environment).where(
                    Environment.status == EnvironmentStatus.PROVISIONING,
                    Environment.server_id.is_not(None),
                )
            ):
                server = environment.server
                assert server is not None
                info = observed.get(server.instance_id)
                asked = environment.start_requested_at
                if info is None or info.state != "stopped":
                    continue
                if asked is not None and now - asked < START_RETRY_AFTER:
                    continue
                self._start(session, environment, server)

    def stop_orphans(self, observed: dict[str, InstanceInfo]) -> None:
        if not self.ec2_usable:
            return
        with self.sessions() as session:
            held = pool.held_servers(session)
            for server in session.scalars(select(Server).where(Server.in_pool.is_(True))):
                info = observed.get(server.instance_id)
                if info is not None and info.state == "running" and server.id not in held:
                    self._stop(session, server, None)

    def _start(self, session: Session, environment: Environment, server: Server) -> bool:
        """Start the assigned server; on no capacity the PR goes back to the queue head."""
        pull = environment.pull_request
        session.commit()  # hold no transaction while EC2 answers
        try:
            state = self.ec2.start(server.instance_id)
        except InsufficientCapacity as exc:
            environment.server_id = None
            environment.status = EnvironmentStatus.QUEUED  # keeps queued_at: keeps its place
            environment.assigned_at = None
            server.last_error = str(exc)
            events.record(
                session,
                "error",
                f"{server.instance_id} has no capacity; #{pull.number} tries another server",
                pull_request=pull,
                server=server,
            )
            session.commit()
            self.report.errors.append(str(exc))
            return False
        except Ec2Error as exc:
            self._ec2_failed(session, exc, environment, server)
            return True
        environment.start_requested_at = self.clock()
        server.observed_state = state
        server.last_error = None
        events.record(
            session,
            "started",
            f"{server.instance_id} starting for #{pull.number}",
            pull_request=pull,
            server=server,
        )
        session.commit()
        self.report.started.append(server.instance_id)
        self.renew()
        return True

    def _stop(self, session: Session, server: Server, environment: Environment | None) -> None:
        pull = environment.pull_request if environment else None
        session.commit()  # hold no transaction while EC2 answers
        try:
            state = self.ec2.stop(server.instance_id)
        except Ec2Error as exc:
            self._ec2_failed(session, exc, environment, server)
            return
        server.observed_state = state
        why = f"#{pull.number} released" if pull else "held by no PR"
        events.record(
            session,
            "stopped",
            f"{server.instance_id} stopping ({why})",
            pull_request=pull,
            server=server,
        )
        session.commit()
        self.report.stopped.append(server.instance_id)
        self.renew()

    def _ec2_failed(
        self, session: Session, exc: Ec2Error, environment: Environment | None, server: Server
    ) -> None:
        session.rollback()
        if isinstance(exc, Ec2Throttled):
            self.ec2_usable = False  # more calls now only deepen the throttle
        server.last_error = str(exc)
        if environment is not None:
            environment.last_error = str(exc)
        self._error(
            session,
            f"{server.instance_id}: {exc}",
            server=server,
            pull_request=environment.pull_request if environment else None,
        )

    def _error(self, session: Session, message: str, **where: object) -> None:
        log.warning("%s", message)
        self.report.errors.append(message)
        events.record(session, "error", message, **where)  # type: ignore[arg-type]
        session.commit()
