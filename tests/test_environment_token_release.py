"""A stay's agent token dies with the stay: released by real reconcile passes (moto's EC2, the
GitHub stand-in), the next PR on the same server gets a token of its own."""

from __future__ import annotations

from sqlalchemy import select

from pullre.environments import actions, deploys, tokens
from pullre.models import Environment, EnvironmentStatus, PullRequest, Server
from tests.reconcile_fixtures import NAME, OWNER, World


def _handed_out(world: World, instance_id: str) -> tuple[int, str]:
    """(environment id, token) of what the agent API gives the server's agent now."""
    with world.sessions() as session:
        server = session.scalars(select(Server).where(Server.instance_id == instance_id)).one()
        found = deploys.assignment(
            session,
            server,
            staging_mysql_url="",
            secret_key="",
            github_api_url=world.standin.url,
        )
        assert found is not None
        session.commit()
        return found["environment_id"], found["environment_token"]


def test_release_voids_the_stays_token_and_the_next_stay_gets_another(world: World) -> None:
    world.add_repository()
    (instance_id,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    world.run()
    first_env, first_token = _handed_out(world, instance_id)

    with world.sessions() as session:
        pull = session.scalars(select(PullRequest).where(PullRequest.number == one)).one()
        actions.release(session, pull, actor="ada")
        session.commit()
    world.run()
    world.run()
    assert world.active() == {two: ("provisioning", instance_id)}

    second_env, second_token = _handed_out(world, instance_id)
    with world.sessions() as session:
        released = session.get_one(Environment, first_env)
        assert released.status is EnvironmentStatus.RELEASED
        assert released.agent_token_hash is None
        assert not tokens.holds(released, first_token)
        serving = session.get_one(Environment, second_env)
        assert second_env != first_env
        assert second_token != first_token
        assert not tokens.holds(serving, first_token)
        assert tokens.holds(serving, second_token)
