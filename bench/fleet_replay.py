"""Replaying a month of PR activity through the real reconcile pass, at simulated time.

One replay is one pullre controller on a throwaway SQLite database, its two ports faked in
process (``bench.fleet_ports``) and a clock the replay moves. At every ``step`` of simulated
time it does what the world would have done since the last pass, then runs the pass:

1. EC2 finishes the starts and stops the previous pass asked for (``FleetEc2.settle``);
2. the month's activities due by now happen, each at its own moment: opens, pushes and merges
   on the fake GitHub (the pass learns of them by syncing, as it does), and review visits in
   the controller DB as the visit link records them (``sleep.touch``; a reviewer who finds the
   environment asleep presses **wake**, ``actions.wake``);
3. the agent of every box EC2 shows running deploys what its environment asks for, reported
   through ``agent_reports.record_step`` (fetch running, health ok), so it is ready at this step;
4. ``reconcile.run_pass`` with the replay's clock, prices and policies, reporting to the fake
   GitHub included (the whole pass, as the controller runs it).

Passes that cannot change anything are skipped: after a pass that recorded no event, with no
instance starting or stopping and no environment on its way, the next pass is at the step of
the next activity, policy deadline (idle sleep, reclaim, expiry) or office-hours edge, and at
most ``quiet`` later. ``quiet=None`` runs every step; the results are the same (the benchmark's
test checks it), only slower.

Instance-hours and queue waits come from what the controller recorded: the ``RunningSpan``
rows the passes wrote from observed EC2 states, and each stay's ``assigned_at - queued_at`` (a
stay that never got a server counts until it left the queue or the month ended). A reviewer's
wait is the replay's own measure: from a visit that found the environment not ready (asleep,
starting, queued, reclaimed for another PR, or not yet seen by a pass) to the step its agent
reported it ready. A visit that finds it ready, or expired (parked until someone acts), waits
for nothing and is not counted.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.fleet_model import (
    WORK_CLOSES,
    WORK_DAYS,
    WORK_OPENS,
    Activity,
    Kind,
    Model,
    generate,
    working_time,
)
from bench.fleet_ports import FleetEc2, FleetGitHub
from pullre import migrate
from pullre.config import PoolSettings
from pullre.db import make_engine, make_session_factory
from pullre.environments import actions, agent_reports, deploys
from pullre.environments.active import active_environment
from pullre.models import (
    ACTIVE_ENVIRONMENT_STATUSES,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Repository,
    RunningSpan,
    Schedule,
    Server,
    StepStatus,
)
from pullre.policies import office_hours, sleep
from pullre.policies.savings import PoolPolicies
from pullre.reconcile.run import run_pass

OWNER = "acme"
INSTANCE_TYPE = "t3.medium"
#: On-demand price of a t3.medium in us-east-1, USD per hour.
PRICE = Decimal("0.0416")
LEASE_TTL = timedelta(minutes=5)

#: Statuses a pass or an agent moves on from by itself, once it holds a server.
_ON_THEIR_WAY = frozenset(
    {EnvironmentStatus.PROVISIONING, EnvironmentStatus.DEPLOYING, EnvironmentStatus.RELEASING}
)


@dataclass(frozen=True)
class Policies:
    """What one replay switches on: ``pool`` None and no office hours is "always on"."""

    name: str
    #: The ``[pool]`` settings the policies are read from, as ``update_pull.py`` reads them.
    pool: PoolSettings | None = None
    office_hours: bool = False

    @classmethod
    def on(
        cls,
        name: str,
        *,
        idle_stop_minutes: int,
        reclaim_sleeping_after_minutes: int,
        ttl_hours: int,
        expiry_warning_hours: int,
        office_hours: bool,
    ) -> Policies:
        pool = PoolSettings(
            include_drafts=False,
            lease_seconds=int(LEASE_TTL.total_seconds()),
            allow_self_signoff=False,
            idle_stop_minutes=idle_stop_minutes,
            reclaim_sleeping_after_minutes=reclaim_sleeping_after_minutes,
            ttl_hours=ttl_hours,
            expiry_warning_hours=expiry_warning_hours,
        )
        return cls(name, pool, office_hours)

    def for_pass(self) -> PoolPolicies | None:
        return PoolPolicies.from_settings(self.pool) if self.pool is not None else None


@dataclass
class Outcome:
    policies: Policies
    instance_hours: float = 0.0
    unattributed_hours: float = 0.0
    cost: Decimal = Decimal(0)
    #: Minutes per stay, from queued to assigned.
    queue_waits: list[float] = field(default_factory=list)
    #: The part of each of those waits that fell in working time.
    working_queue_waits: list[float] = field(default_factory=list)
    #: Minutes per visit that found the environment not ready, until it was.
    reviewer_waits: list[float] = field(default_factory=list)
    found: Counter[str] = field(default_factory=Counter)
    #: Visits whose wait never ended (the PR merged, or the month ended, first).
    unanswered: int = 0
    stays: int = 0
    passes: int = 0
    seconds: float = 0.0
    events: Counter[str] = field(default_factory=Counter)


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values (nobody waited)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


class Replay:
    def __init__(
        self,
        model: Model,
        policies: Policies,
        *,
        servers: int,
        step: timedelta,
        quiet: timedelta | None,
        directory: Path,
    ) -> None:
        self.model, self.policies, self.step, self.quiet = model, policies, step, quiet
        self.clock = _Clock(model.begins)
        self.ec2 = FleetEc2(INSTANCE_TYPE)
        self.github = FleetGitHub()
        url = f"sqlite:///{directory / f'{policies.name}.db'}"
        migrate.upgrade(url)
        self.engine: Engine = make_engine(url)
        event.listen(self.engine, "connect", _no_fsync)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.pool_policies = policies.for_pass()
        self.outcome = Outcome(policies)
        #: PR (repository index, number) -> moments of visits waiting for it to be ready.
        self.waiting: dict[tuple[int, int], list[datetime]] = defaultdict(list)
        self._populate(servers)

    def _populate(self, servers: int) -> None:
        with self.sessions() as session:
            schedule = None
            if self.policies.office_hours:
                schedule = Schedule(
                    name="office hours",
                    time_zone=self.model.time_zone,
                    days=list(WORK_DAYS),
                    opens_at=WORK_OPENS,
                    closes_at=WORK_CLOSES,
                )
                session.add(schedule)
            for index in range(self.model.repositories):
                self.github.create_repo(OWNER, _repo_name(index))
                session.add(Repository(owner=OWNER, name=_repo_name(index), schedule=schedule))
            for number, instance_id in enumerate(self.ec2.add_instances(servers), start=1):
                session.add(Server(instance_id=instance_id, name=f"stage-{number:02d}"))
            session.commit()

    def run(self, activities: Sequence[Activity]) -> Outcome:
        started = time.perf_counter()
        pending = deque(activities)
        tick, busy = self.model.begins, True
        while tick < self.model.ends:
            tick = min(self._next_tick(tick, busy, pending), self.model.ends)
            self.ec2.settle()
            happened = False
            while pending and pending[0].at <= tick:
                activity = pending.popleft()
                self.clock.now = activity.at
                self._happen(activity)
                happened = True
            self.clock.now = tick
            self._agents()
            busy = self._pass() or happened or self._in_motion()
        self.outcome.seconds = time.perf_counter() - started
        self._measure()
        self.engine.dispose()
        return self.outcome

    # -- when the next pass runs --------------------------------------------------------------

    def _next_tick(self, tick: datetime, busy: bool, pending: deque[Activity]) -> datetime:
        """The next step; after a quiet pass, the step of the next thing that can change.

        A pass that changed nothing, with nothing under way, is followed by passes that change
        nothing until an activity, a policy's deadline or an office-hours edge comes round: those
        are skipped (``quiet=None`` runs them all, and gives the same results, only slower).
        """
        following = tick + self.step
        if busy or self.quiet is None:
            return following
        # A deadline already past that the last pass did not act on waits for something else
        # (a sleeper to reclaim, the office to open), which is an activity or a deadline too;
        # one falling on this very tick may need the next step (reclaim counts from after it).
        candidates = [tick + self.quiet, *(d for d in self._deadlines(tick) if d >= tick)]
        if pending:
            candidates.append(pending[0].at)
        return max(following, self._on_grid(min(candidates)))

    def _on_grid(self, moment: datetime) -> datetime:
        """The first step at or after ``moment``: passes keep the cadence they would have."""
        steps = -((self.model.begins - moment) // self.step)  # ceiling division
        return self.model.begins + steps * self.step

    def _deadlines(self, now: datetime) -> list[datetime]:
        """When a policy will next have something to do, from the state the last pass left."""
        found: list[datetime] = []
        rules = self.pool_policies
        with self.sessions() as session:
            for schedule in session.scalars(select(Schedule)):
                edge = office_hours.next_change(schedule, now)
                found += [edge] if edge is not None else []
            if rules is None:
                return found
            holding = session.scalars(
                select(Environment)
                .join(Environment.pull_request)
                .where(Environment.server_id.is_not(None), PullRequest.pinned_at.is_(None))
                .where(Environment.status.in_(ACTIVE_ENVIRONMENT_STATUSES))
            ).all()
            for environment in holding:
                touched = sleep.last_touched(environment)
                if rules.idle_stop is not None and environment.status in sleep.SLEEPABLE:
                    found.append(touched + rules.idle_stop)
                if rules.ttl is not None:
                    warning = rules.expiry_warning or timedelta(0)
                    found += [touched + rules.ttl - warning, touched + rules.ttl]
            if rules.reclaim_sleeping_after is not None:
                found += [
                    queued.queued_at + rules.reclaim_sleeping_after
                    for queued in session.scalars(
                        select(Environment).where(Environment.status == EnvironmentStatus.QUEUED)
                    )
                ]
        return found

    def _in_motion(self) -> bool:
        """Something the next pass will act on: EC2 moving, or an environment on its way."""
        if self.ec2.in_transition():
            return True
        with self.sessions() as session:
            moving = session.scalar(
                select(Environment.id)
                .where(Environment.server_id.is_not(None))
                .where(
                    Environment.status.in_(_ON_THEIR_WAY)
                    | (
                        Environment.status.in_(deploys.SERVING)
                        & Environment.deploy_requested_at.is_not(None)
                    )
                )
                .limit(1)
            )
        return moving is not None

    # -- the world between passes -------------------------------------------------------------

    def _happen(self, activity: Activity) -> None:
        name, number, at = _repo_name(activity.repository), activity.number, activity.at
        if activity.kind is Kind.OPEN:
            self.github.open_pull(OWNER, name, number, activity.author, at)
        elif activity.kind is Kind.PUSH:
            self.github.push(OWNER, name, number, at)
        elif activity.kind is Kind.MERGE:
            self.github.merge(OWNER, name, number, at)
            self.outcome.unanswered += len(self.waiting.pop((activity.repository, number), []))
        else:
            self._visit(activity)

    def _visit(self, activity: Activity) -> None:
        """A reviewer opens the PR's staging URL (through the PR page, which records it)."""
        with self.sessions() as session:
            pull = session.scalar(
                select(PullRequest)
                .join(PullRequest.repository)
                .where(
                    Repository.name == _repo_name(activity.repository),
                    PullRequest.number == activity.number,
                )
            )
            environment = active_environment(session, pull) if pull is not None else None
            if pull is not None:
                sleep.touch(session, pull, self.clock)
            if pull is None:
                found = "unknown"  # opened since the last pass: no stay yet
            elif environment is None or environment.status is EnvironmentStatus.RELEASING:
                # Reclaimed for another PR (it queues again) or expired (parked: it stays out
                # until someone acts, so there is nothing to wait for).
                found = "expired" if pull.parked else "reclaimed"
            elif environment.status is EnvironmentStatus.SLEEPING:
                found = "asleep"
                actions.wake(session, pull, actor="reviewer", clock=self.clock)
            elif environment.status is EnvironmentStatus.QUEUED:
                found = "queued"
            elif environment.status in {EnvironmentStatus.READY, EnvironmentStatus.FAILED}:
                found = "ready"
            else:
                found = "starting"
            session.commit()
        self.outcome.found[found] += 1
        if found not in {"ready", "expired"}:
            self.waiting[(activity.repository, activity.number)].append(activity.at)

    def _agents(self) -> None:
        """Each running box's agent deploys what its environment asks for, and reports it."""
        with self.sessions() as session:
            rows = session.execute(
                select(Environment, Server)
                .join(Server, Server.id == Environment.server_id)
                .where(Environment.status.in_(deploys.SERVING))
            ).all()
            for environment, server in rows:
                wants = (
                    environment.status is EnvironmentStatus.PROVISIONING
                    or environment.deploy_requested_at is not None
                )
                if not wants or not self.ec2.running(server.instance_id):
                    continue
                sha = environment.pull_request.head_sha
                for step, status in (("fetch", StepStatus.RUNNING), ("health", StepStatus.OK)):
                    agent_reports.record_step(
                        session, server, environment_id=environment.id, head_sha=sha,
                        step=step, status=status, log="", clock=self.clock,
                    )  # fmt: skip
                pull = environment.pull_request
                key = (_repo_index(pull.repository.name), pull.number)
                for visited in self.waiting.pop(key, []):
                    self.outcome.reviewer_waits.append(_minutes(self.clock.now - visited))
            session.commit()

    def _pass(self) -> bool:
        """Run one pass; whether it decided anything (any audit event means it did)."""
        with self.sessions() as session:
            last_event = session.scalar(select(func.max(Event.id))) or 0
        report = run_pass(
            self.engine, self.github, self.ec2, include_drafts=False, lease_ttl=LEASE_TTL,
            clock=self.clock, prices={INSTANCE_TYPE: PRICE}, policies=self.pool_policies,
            currency="USD",
        )  # fmt: skip
        self.outcome.passes += 1
        if report.errors:
            raise RuntimeError(f"pass at {self.clock.now:%Y-%m-%d %H:%M}: {report.errors[:3]}")
        with self.sessions() as session:
            return (session.scalar(select(func.max(Event.id))) or 0) > last_event

    # -- what the controller recorded ---------------------------------------------------------

    def _measure(self) -> None:
        end = self.model.ends
        outcome = self.outcome
        outcome.unanswered += sum(len(v) for v in self.waiting.values())
        with self.sessions() as session:
            for span in session.scalars(select(RunningSpan)):
                hours = ((span.ended_at or end) - span.started_at).total_seconds() / 3600
                outcome.instance_hours += hours
                if span.environment_id is None:
                    outcome.unattributed_hours += hours
                if span.hourly_price is not None:
                    outcome.cost += Decimal(str(hours)) * span.hourly_price
            for environment in session.scalars(select(Environment)):
                left_queue = environment.assigned_at or environment.released_at or end
                outcome.queue_waits.append(_minutes(left_queue - environment.queued_at))
                worked = working_time(environment.queued_at, left_queue, self.model.zone)
                outcome.working_queue_waits.append(_minutes(worked))
                outcome.stays += 1
            outcome.events.update(session.scalars(select(Event.kind)))


def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
    """A throwaway database: losing it in a crash costs nothing, waiting for the disk does."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.execute("PRAGMA journal_mode = MEMORY")
    cursor.close()


def _repo_name(index: int) -> str:
    return f"service-{index:02d}"


def _repo_index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def replay(
    model: Model,
    policies: Policies,
    servers: int,
    step: timedelta,
    quiet: timedelta | None,
    directory: Path,
) -> Outcome:
    """One whole run, from the model's seed: what a worker process is handed."""
    run = Replay(model, policies, servers=servers, step=step, quiet=quiet, directory=directory)
    return run.run(generate(model))
