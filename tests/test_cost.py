"""What environments cost, recorded by whole reconcile passes from the EC2 states they observe:
moto's EC2 server, the GitHub stand-in, a SQLite DB and a clock the test moves.

Running time is counted from the pass that first sees an instance running to the pass that
first sees it otherwise, so each step below runs a pass twice at the same instant: once to act,
once to observe what the act did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from pullre.cost import pricing as cost
from pullre.environments import actions
from pullre.models import PullRequest, RunningSpan, Server
from pullre.policies.savings import PoolPolicies
from tests.clock import MovingClock
from tests.ec2_fixtures import PassThroughEc2
from tests.reconcile_fixtures import NAME, OWNER, World

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: moto launches the pool as t3.micro; this price comes from ``[cost] instance_prices``.
PRICES = {"t3.micro": Decimal("0.0104")}


def pull_cost(world: World, number: int, until: datetime | None = None) -> cost.Cost:
    with world.sessions() as session:
        pull = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        return cost.pull_cost(session, pull, until=until)


def test_ran_3_hours_slept_5_and_ran_1_costs_4_hours_at_the_servers_price(world: World) -> None:
    clock = MovingClock(T0)
    policies = PoolPolicies(idle_stop=timedelta(hours=3))

    def settle() -> None:
        """A pass that acts, then one that sees what EC2 did."""
        for _ in range(2):
            assert world.run(clock=clock, policies=policies, prices=PRICES).errors == []

    world.add_repository()
    own_price, type_price = world.add_servers(2)
    with world.sessions() as session:
        server = session.scalars(select(Server).where(Server.instance_id == own_price)).one()
        server.hourly_price = Decimal("0.5")  # set on the server: wins over its type's price
        session.commit()
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    settle()
    assert world.active() == {one: ("provisioning", own_price), two: ("provisioning", type_price)}
    world.agent_deploys(one, clock)
    world.agent_deploys(two, clock)

    clock.advance(hours=1)
    running = pull_cost(world, one)  # what the PR comment shows: no change every pass
    assert (running.hours, running.running_since) == (Decimal(0), T0)
    assert pull_cost(world, one, until=clock.now).hours == 1  # what the PR page shows

    clock.advance(hours=2)
    settle()  # idle for 3 h: asleep, instances stopped
    assert world.active() == {one: ("sleeping", own_price), two: ("sleeping", type_price)}

    clock.advance(hours=5)
    for number in (one, two):
        world.act(number, lambda s, pull: actions.wake(s, pull, actor="alice", clock=clock))
    settle()
    assert set(world.states().values()) == {"running"}

    clock.advance(hours=1)
    world.standin.close(OWNER, NAME, one)
    world.standin.close(OWNER, NAME, two)
    settle()
    assert world.active() == {}

    assert pull_cost(world, one) == cost.Cost(hours=Decimal(4), amount=Decimal("2.0"))
    assert pull_cost(world, two) == cost.Cost(hours=Decimal(4), amount=Decimal("0.0416"))
    assert pull_cost(world, one, until=clock.now + timedelta(hours=9)).hours == 4


def test_monthly_totals_per_repository_split_at_the_month_boundary(world: World) -> None:
    clock = MovingClock(datetime(2026, 1, 31, 22, 0, tzinfo=UTC))

    def settle() -> None:
        for _ in range(2):
            assert world.run(clock=clock, prices=PRICES).errors == []

    world.add_repository()
    world.add_repository(OWNER, "blog")
    world.add_servers(2)
    shop = world.standin.open_pull(OWNER, NAME)
    settle()  # the shop PR runs from Jan 31 22:00 ...
    clock.now = datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
    blog = world.standin.open_pull(OWNER, "blog")
    settle()  # ... and the blog PR from Feb 1 01:00
    clock.now = datetime(2026, 2, 1, 3, 0, tzinfo=UTC)
    world.standin.close(OWNER, NAME, shop)
    world.standin.close(OWNER, "blog", blog)
    settle()

    with world.sessions() as session:
        totals = cost.monthly_by_repository(
            session, months=2, now=datetime(2026, 2, 10, tzinfo=UTC)
        )
    january, february = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert [(row.month, row.repository, row.cost.hours) for row in totals] == [
        (january, f"{OWNER}/{NAME}", Decimal(2)),
        (february, f"{OWNER}/blog", Decimal(2)),
        (february, f"{OWNER}/{NAME}", Decimal(3)),
    ]
    assert totals[0].cost.amount == 2 * PRICES["t3.micro"]


class Crash(BaseException):
    """The controller process dying (killed, power lost): no ``except Exception`` sees it."""


class DiesAfterStopping(PassThroughEc2):
    """The real EC2 adapter, until the controller dies just after EC2 accepted a stop."""

    def stop(self, instance_id: str) -> str:
        self.real.stop(instance_id)
        raise Crash


def test_a_span_left_open_by_a_crash_is_closed_by_the_next_pass(world: World) -> None:
    clock = MovingClock(T0)
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run(clock=clock)
    world.run(clock=clock)  # sees it running: the span opens
    clock.advance(hours=2)
    world.standin.close(OWNER, NAME, one)
    with pytest.raises(Crash):
        world.run(DiesAfterStopping(world.ec2.adapter), clock=clock)
    assert world.ec2.state_of(server) == "stopped"
    with world.sessions() as session:
        (span,) = session.scalars(select(RunningSpan)).all()
        assert span.ended_at is None  # nobody saw it stop

    clock.advance(minutes=1)  # the next pass, a minute later
    world.run(clock=clock)
    with world.sessions() as session:
        (span,) = session.scalars(select(RunningSpan)).all()
        assert (span.started_at, span.ended_at) == (T0, clock.now)
    assert pull_cost(world, one).hours == Decimal(2 * 3600 + 60) / 3600
    assert world.environments()[one] == ("released", None)
