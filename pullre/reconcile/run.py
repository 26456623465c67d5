"""One reconcile pass: make the pool match what GitHub wants, safely, any number of times.

The pass never trusts that the previous one finished. Every step reads the state left in the
database and what EC2 reports now, and each PR's change is its own transaction, so a pass killed
at any point is finished by the next one. Order matters:

Steps 4 to 7 are the EC2 side, in ``pullre.reconcile.pool_operations``.

1. sync every enabled repository (a GitHub problem is recorded, the other repositories go on);
2. plan: queue wanted PRs, mark unwanted environments for release;
3. policies (``pullre.policies.savings``): office hours, expiry, idle sleep, reclaiming sleepers'
   servers for PRs that waited too long — decisions in the database only;
4. observe the pool (and scheduled servers outside it) with one paginated DescribeInstances;
5. stop the instances of sleeping environments; release: stop what is no longer wanted, drop
   its schema, free its server once stopped;
6. assign queued PRs to free servers, pinned first, then oldest first, and start them (and
   the stopped servers of woken environments);
7. stop running pool instances that no environment holds (left by a crash); start and stop
   servers outside the pool by their office hours;
8. clone the schema of every environment that has a server but no schema yet;
9. report to GitHub what changed (last, and even when EC2 could not be observed: a GitHub
   problem never holds back assignment or deploys, and a PR's queue position still shows).

Reporting runs after the pass has given its lease back, under a lease of its own
(:func:`report_pass`): GitHub writes are paced (one a second) and a busy minute has many, so
the next pass's sync, assignment and EC2 calls never wait behind the last one's reports. A
report that finds another reporter at work leaves the rest to it and to the next pass.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import Clock, system_clock
from pullre.config import Settings, public_url
from pullre.ec2.port import Ec2
from pullre.github.port import GitHub, GitHubError, GitHubRateLimited
from pullre.models import Repository
from pullre.policies import savings as pool_policies
from pullre.policies.savings import PoolPolicies
from pullre.reconcile import history as pass_history
from pullre.reconcile import lease, pool, provisioning
from pullre.reconcile.context import PassContext, PassReport
from pullre.reconcile.pool_operations import PoolOperations
from pullre.reconcile.sync import sync_repository
from pullre.reporting import pass_report as reporting
from pullre.secret_key import resolve_secret_key
from pullre.staging_db.port import StagingDatabase

log = logging.getLogger(__name__)

__all__ = [
    "LEASE_NAME",
    "PassReport",
    "PoolPolicies",
    "new_holder",
    "report_pass",
    "run_configured_pass",
    "run_pass",
]

LEASE_NAME = "reconcile"
REPORT_LEASE_NAME = "report"


def run_configured_pass(
    settings: Settings,
    engine: Engine,
    github: GitHub,
    ec2: Ec2,
    *,
    staging: StagingDatabase | None = None,
    clock: Clock = system_clock,
    report: bool = True,
) -> PassReport:
    """``run_pass`` with its options read from settings: what cron and webhooks both run.

    ``report=False`` leaves reporting to a :func:`run_configured_report` of the caller's own.
    """
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
        prices=settings.cost.instance_prices,
        policies=PoolPolicies.from_settings(settings.pool),
        currency=settings.cost.currency,
        report=report,
    )


def run_configured_report(
    settings: Settings, engine: Engine, github: GitHub, *, clock: Clock = system_clock
) -> list[str] | None:
    """``report_pass`` with its options read from settings."""
    return report_pass(
        engine,
        github,
        lease_ttl=timedelta(seconds=settings.pool.lease_seconds),
        clock=clock,
        public_url=public_url(settings),
        ttl=PoolPolicies.from_settings(settings.pool).ttl,
        currency=settings.cost.currency,
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
    prices: Mapping[str, Decimal] | None = None,
    policies: PoolPolicies | None = None,
    currency: str = "",
    report: bool = True,
) -> PassReport:
    """Take the lease and reconcile once; a pass that finds the lease taken does nothing.

    ``policies`` None turns idle sleep, expiry and reclaim off (office hours, which are each
    repository's own, are followed whatever they say). With ``report`` the pass then reports
    to GitHub (:func:`report_pass`) once its own lease is given back.
    """
    holder = holder or new_holder()
    handle = lease.try_acquire(engine, LEASE_NAME, holder, lease_ttl, clock)
    if handle is None:
        other, until = lease.current_holder(engine, LEASE_NAME)
        log.info("another pass (%s) holds the lease until %s; nothing to do", other, until)
        return PassReport(skipped=True, lease_holder=other)
    sessions = sessionmaker(engine, expire_on_commit=False)
    context = PassContext(sessions=sessions, clock=clock, renew=handle.renew)
    work = _Pass(context, github, PoolOperations(context, ec2, staging, prices=prices))
    work.secret_key, work.policies = secret_key, policies
    meter = pass_history.Meter(github, ec2, clock)
    finished = False
    try:
        work.run(include_drafts)
        finished = True
    except Exception as exc:
        context.report.errors.append(f"pass failed: {exc}")  # so its history row shows it
        raise
    finally:
        handle.release()  # the next pass may start while this one reports
        if report and finished:
            context.report.errors += report_pass(
                engine, github, lease_ttl=lease_ttl, clock=clock, holder=holder,
                public_url=public_url, ttl=policies.ttl if policies else None, currency=currency,
            ) or []  # fmt: skip
        _record_history(sessions, meter, context.report, clock)
    context.report.lease_holder = holder
    return context.report


def report_pass(
    engine: Engine,
    github: GitHub,
    *,
    lease_ttl: timedelta,
    clock: Clock = system_clock,
    holder: str | None = None,
    public_url: str = "",
    ttl: timedelta | None = None,
    currency: str = "",
) -> list[str] | None:
    """Report to GitHub what changed, under the report lease; None when another reporter holds
    it (it, or the next pass's reporter, reports what is left: digests stay stale until sent).
    """
    handle = lease.try_acquire(engine, REPORT_LEASE_NAME, holder or new_holder(), lease_ttl, clock)
    if handle is None:
        log.info("another reporter holds the report lease; it reports what changed")
        return None
    try:
        return reporting.report_changes(
            sessionmaker(engine, expire_on_commit=False), github, public_url=public_url,
            clock=clock, renew=handle.renew, ttl=ttl, currency=currency,
        )  # fmt: skip
    finally:
        handle.release()


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
    def __init__(self, context: PassContext, github: GitHub, pool_ops: PoolOperations) -> None:
        self.context, self.github, self.pool_ops = context, github, pool_ops
        self.sessions, self.clock, self.renew = context.sessions, context.clock, context.renew
        self.report = context.report
        self.secret_key = ""
        self.policies: PoolPolicies | None = None

    def run(self, include_drafts: bool) -> None:
        self.sync_all()
        with self.sessions() as session:
            pool.plan(session, include_drafts, self.clock)
            session.commit()
        self.renew()
        pool_policies.apply(self.context, self.policies)
        self.pool_ops.run()
        if self.pool_ops.observed_ok:
            self.provision_schemas()

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
                    self.context.error(
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
                    self.context.error(
                        session, f"{repository.full_name}: {exc}", repository_id=repository_id
                    )
                    continue
                except GitHubError as exc:
                    session.rollback()
                    self.context.error(
                        session, f"{repository.full_name}: {exc}", repository_id=repository_id
                    )
                    continue
                self.report.unchanged += result.unchanged
                self.report.errors.extend(result.errors)
            self.renew()

    # -- staging MySQL ------------------------------------------------------------------------

    def provision_schemas(self) -> None:
        staging = self.pool_ops.staging
        if staging is None:
            return
        with self.sessions() as session:
            for environment in provisioning.environments_needing_a_schema(session):
                error = provisioning.provision(
                    session,
                    staging,
                    environment,
                    secret_key=self.secret_key,
                    clock=self.clock,
                )
                if error is not None:
                    self.report.errors.append(error)
                self.renew()
