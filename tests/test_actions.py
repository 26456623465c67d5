"""People's actions on a PR's environment, carried out by the following passes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pullre.clock import system_clock
from pullre.environments import actions
from pullre.models import PullRequest
from tests.reconcile_fixtures import NAME, OWNER, World


def act(world: World, number: int, action: str) -> None:
    with world.sessions() as session:
        target = session.scalars(select(PullRequest).where(PullRequest.number == number)).one()
        if action in {"redeploy", "reset_data"}:
            getattr(actions, action)(session, target, actor="ada", clock=system_clock)
        else:
            getattr(actions, action)(session, target, actor="ada")
        session.commit()


def test_a_released_pr_stays_out_of_the_queue_until_pushed(world: World) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    world.run()
    act(world, one, "release")
    world.run()
    world.run()
    assert world.active() == {two: ("provisioning", server)}
    with pytest.raises(actions.ActionRefused, match="already released"):
        act(world, one, "release")

    world.standin.push(OWNER, NAME, one)  # new work: it asks for a server again
    world.run()
    assert world.active()[one] == ("queued", None)


def test_unpark_queues_a_released_pr_again(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run()
    act(world, one, "release")
    world.run()
    world.run()
    assert world.active() == {}
    act(world, one, "unpark")
    world.run()
    assert set(world.active()) == {one}


def test_redeploy_and_reset_record_intent_for_the_agent_and_the_pass(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.standin.open_pull(OWNER, NAME)
    world.run()
    with pytest.raises(actions.ActionRefused, match="no server"):
        act(world, one + 1, "redeploy")  # still queued: nothing runs to redeploy
    before = datetime.now(UTC)
    act(world, one, "redeploy")
    with world.sessions() as session:
        environment = (
            session.scalars(select(PullRequest).where(PullRequest.number == one))
            .one()
            .environments[-1]
        )
    assert environment.deploy_requested_at is not None
    assert environment.deploy_requested_at >= before
    with pytest.raises(actions.ActionRefused, match="no schema"):
        act(world, one, "reset_data")  # no staging MySQL in this world: nothing to reset
