"""The reconcile pass end to end: fake GitHub over HTTP, moto EC2 over HTTP, a real SQLite DB."""

from __future__ import annotations

from sqlalchemy import select

from pullre.models import Event, PullRequest, Trust
from tests.reconcile_fixtures import NAME, OWNER, World


def test_open_prs_get_servers_in_fifo_order_and_the_rest_queue(world: World) -> None:
    world.add_repository()
    first, second = world.add_servers(2)
    numbers = [world.standin.open_pull(OWNER, NAME, title=f"PR {i}") for i in range(3)]

    report = world.run()

    assert report.errors == []
    assert world.environments() == {
        numbers[0]: ("provisioning", first),
        numbers[1]: ("provisioning", second),
        numbers[2]: ("queued", None),
    }
    assert sorted(report.started) == sorted([first, second])
    assert world.states() == {first: "running", second: "running"}


def test_closing_a_pr_stops_its_server_and_gives_it_to_the_next_in_queue(world: World) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    world.run()
    assert world.active() == {one: ("provisioning", server), two: ("queued", None)}

    world.standin.close(OWNER, NAME, one)
    report = world.run()
    assert report.stopped == [server]
    # The server is freed only once a pass has seen it stopped, never while it is stopping.
    assert world.active() == {one: ("releasing", server), two: ("queued", None)}

    report = world.run()
    assert report.released == [one]
    assert report.started == [server]
    assert world.active() == {two: ("provisioning", server)}
    assert world.states() == {server: "running"}


def test_merged_is_told_from_closed(world: World) -> None:
    world.add_repository()
    world.add_servers(2)
    one = world.standin.open_pull(OWNER, NAME)
    two = world.standin.open_pull(OWNER, NAME)
    world.run()
    world.standin.merge(OWNER, NAME, one)
    world.standin.close(OWNER, NAME, two)
    world.run()
    world.run()
    with world.sessions() as session:
        states = dict(session.execute(select(PullRequest.number, PullRequest.state)).all())
    assert {n: s.value for n, s in states.items()} == {one: "merged", two: "closed"}
    assert world.active() == {}
    assert set(world.states().values()) == {"stopped"}


def test_reopened_pr_queues_again(world: World) -> None:
    world.add_repository()
    (server,) = world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run()
    world.standin.close(OWNER, NAME, one)
    world.run()
    world.run()
    assert world.active() == {}
    world.standin.reopen(OWNER, NAME, one)
    world.run()
    assert world.active() == {one: ("provisioning", server)}


def test_label_filter_and_drafts(world: World) -> None:
    world.add_repository(required_label="staging")
    world.add_servers(3)
    labelled = world.standin.open_pull(OWNER, NAME, labels=["staging"])
    unlabelled = world.standin.open_pull(OWNER, NAME)
    draft = world.standin.open_pull(OWNER, NAME, labels=["staging"], draft=True)
    world.run()
    assert set(world.active()) == {labelled}

    world.standin.remove_label(OWNER, NAME, labelled, "staging")
    world.standin.add_label(OWNER, NAME, unlabelled, "staging")
    world.standin.set_draft(OWNER, NAME, draft, False)
    world.run()
    world.run()
    assert set(world.active()) == {unlabelled, draft}
    assert world.environments()[labelled][0] == "released"


def test_a_push_is_recorded_and_asks_for_a_redeploy(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.run()
    new_sha = world.standin.push(OWNER, NAME, one)
    world.run()
    with world.sessions() as session:
        pull = session.scalars(select(PullRequest)).one()
        assert pull.head_sha == new_sha
        assert pull.environments[-1].deploy_requested_at is not None
        assert "pushed" in session.scalars(select(Event.kind)).all()


def test_fork_prs_are_handled_like_any_other_where_the_repository_trusts_everyone(
    world: World,
) -> None:
    world.add_repository(trust=Trust.EVERYONE)
    (server,) = world.add_servers(1)
    fork = world.standin.open_pull(OWNER, NAME, fork_owner="mallory")
    world.run()
    assert world.active() == {fork: ("provisioning", server)}
    with world.sessions() as session:
        assert session.scalars(select(PullRequest.head_repository)).one() == "mallory/shop"


def test_an_idle_pass_costs_one_free_request_per_repository(world: World) -> None:
    world.add_repository()
    world.add_repository(OWNER, "blog")
    world.add_servers(1)
    for _ in range(3):
        world.standin.open_pull(OWNER, NAME)
    world.run()
    world.run()  # sees the started instance running: the PR comment says since when (cost)
    world.standin.clear_requests()

    report = world.run()

    assert [(r.method, r.path, r.status) for r in world.standin.requests] == [
        ("GET", f"/repos/{OWNER}/{NAME}/pulls", 304),
        ("GET", f"/repos/{OWNER}/blog/pulls", 304),
    ]
    assert report.unchanged == 2


def test_a_github_failure_on_one_repository_does_not_stop_the_others(world: World) -> None:
    world.add_repository(OWNER, "broken")
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.standin.fail_next(3, 502)  # the first repository's request and both its retries

    report = world.run()

    assert len(report.errors) == 1
    assert f"{OWNER}/broken" in report.errors[0]
    assert set(world.active()) == {one}
    with world.sessions() as session:
        assert session.scalars(select(Event.kind).where(Event.kind == "error")).all() == ["error"]


def test_a_rate_limit_is_recorded_and_the_pass_does_not_sleep(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    world.standin.open_pull(OWNER, NAME)
    world.standin.rate_limit_next(1)
    report = world.run()
    assert any("rate limit" in error.lower() for error in report.errors)
    assert world.active() == {}
    assert world.run().errors == []  # next pass picks up where this one stopped
    assert len(world.active()) == 1


def test_a_second_pass_while_the_lease_is_held_does_nothing(world: World) -> None:
    from datetime import timedelta

    from pullre.clock import system_clock
    from pullre.reconcile import lease
    from pullre.reconcile.run import LEASE_NAME

    world.add_repository()
    world.add_servers(1)
    world.standin.open_pull(OWNER, NAME)
    held = lease.try_acquire(
        world.engine, LEASE_NAME, "someone-else", timedelta(minutes=1), system_clock
    )
    assert held is not None
    report = world.run()
    assert (report.skipped, report.lease_holder) == (True, "someone-else")
    assert world.environments() == {}
    held.release()
    assert world.run().skipped is False
