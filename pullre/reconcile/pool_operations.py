"""The EC2 side of a pass: observe the pool, stop what is released, start what is assigned.

Rules that keep it safe to run at any time: never act on an instance that is mid-transition
(pending, stopping) — a later pass sees it settle; a server is freed only once seen stopped;
a start is recorded only after EC2 took it, so a crash between the two cannot start an
instance twice for one assignment; and no transaction stays open while EC2 answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pullre import events
from pullre.cost import pricing as cost
from pullre.ec2.port import Ec2, Ec2Error, Ec2Throttled, InstanceInfo, InsufficientCapacity
from pullre.environments import tokens
from pullre.models import Environment, EnvironmentStatus, Server
from pullre.policies import server_hours
from pullre.reconcile import pool, provisioning
from pullre.reconcile.context import PassContext
from pullre.staging_db.port import StagingDatabase

#: A start asked for but not visible after this long is asked again (the instance may have
#: been stopped by hand, or the request lost).
START_RETRY_AFTER = timedelta(minutes=5)


class PoolOperations:
    def __init__(
        self,
        context: PassContext,
        ec2: Ec2,
        staging: StagingDatabase | None = None,
        *,
        prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.context, self.ec2, self.staging = context, ec2, staging
        #: Hourly price per instance type, for servers without a price of their own.
        self.prices: Mapping[str, Decimal] = prices or {}
        self.sessions, self.clock, self.renew = context.sessions, context.clock, context.renew
        self.report = context.report
        #: False after a throttle: more calls now would only deepen it.
        self.ec2_usable = True
        #: Whether this pass saw the pool; without that view nothing acts on it.
        self.observed_ok = False

    def run(self) -> None:
        observed = self.observe()
        self.observed_ok = observed is not None
        # Without a fresh view of the pool, acting on EC2 could double-start.
        if observed is not None:
            self.stop_sleeping(observed)
            self.release(observed)
            self.assign(observed)
            self.start_provisioning(observed)
            self.stop_orphans(observed)
            server_hours.follow(self, observed)

    def observe(self) -> dict[str, InstanceInfo] | None:
        """One DescribeInstances over the pool and the servers outside it that keep hours."""
        with self.sessions() as session:
            servers = session.scalars(
                select(Server).where(or_(Server.in_pool.is_(True), Server.schedule_id.is_not(None)))
            ).all()
            if not servers:
                return {}
            session.commit()  # hold no transaction while EC2 answers
            try:
                seen = self.ec2.describe([s.instance_id for s in servers])
            except Ec2Error as exc:
                self.context.error(
                    session, f"could not observe the pool, no EC2 action this pass: {exc}"
                )
                return None
            now = self.clock()
            for server in servers:
                info = seen.get(server.instance_id)
                server.observed_state = info.state if info else "missing"
                server.observed_at = now
                if info is not None and info.private_ip:
                    server.private_ip = info.private_ip
            cost.record_running(
                session,
                [server for server in servers if server.in_pool],  # a PR's cost is the pool's
                seen,
                pool.held_servers(session),
                now=now,
                prices=self.prices,
            )
            session.commit()
            return seen

    def stop_sleeping(self, observed: dict[str, InstanceInfo]) -> None:
        """Stop the running instance of every sleeping environment; it keeps its server."""
        if not self.ec2_usable:
            return
        with self.sessions() as session:
            for environment in session.scalars(
                select(Environment).where(Environment.status == EnvironmentStatus.SLEEPING)
            ).all():
                server = environment.server
                info = observed.get(server.instance_id) if server is not None else None
                if server is not None and info is not None and info.state == "running":
                    self._stop(session, server, environment)

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
                    self.report.settling += 1
                    continue  # pending: never stop mid-start; stopping: wait until stopped
                if self.staging is not None:
                    error = provisioning.drop(session, self.staging, environment)
                    if error is not None:
                        self.report.errors.append(error)
                        continue  # keep it releasing: the next pass drops it again
                environment.status = EnvironmentStatus.RELEASED
                environment.released_at = self.clock()
                environment.server_id = None
                tokens.revoke(environment)  # reports about this stay are refused from now on
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
                if pool.outside_office_hours(environment):
                    continue  # keeps its place; served once its repository's hours open
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
        """Start servers assigned by a pass that stopped before asking EC2 to start them.

        Woken environments are among them (provisioning, never started for this wake), taken
        in queue order so that when capacity runs short the oldest PRs are up first.
        """
        if not self.ec2_usable:
            return
        now = self.clock()
        with self.sessions() as session:
            for environment in session.scalars(
                select(Environment)
                .where(
                    Environment.status == EnvironmentStatus.PROVISIONING,
                    Environment.server_id.is_not(None),
                )
                .order_by(Environment.queued_at, Environment.id)
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
            self.ec2_failed(session, exc, environment, server)
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
            self.ec2_failed(session, exc, environment, server)
            return
        server.observed_state = state
        if pull is None:
            why = "held by no PR"
        elif environment is not None and environment.status is EnvironmentStatus.SLEEPING:
            why = f"#{pull.number} sleeps"
        else:
            why = f"#{pull.number} released"
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

    def ec2_failed(
        self, session: Session, exc: Ec2Error, environment: Environment | None, server: Server
    ) -> None:
        session.rollback()
        if isinstance(exc, Ec2Throttled):
            self.ec2_usable = False  # more calls now only deepen the throttle
        server.last_error = str(exc)
        if environment is not None:
            environment.last_error = str(exc)
        self.context.error(
            session,
            f"{server.instance_id}: {exc}",
            server=server,
            pull_request=environment.pull_request if environment else None,
        )
