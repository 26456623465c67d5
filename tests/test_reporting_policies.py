"""What GitHub is told about sleeping, woken, pinned, expiring and reclaimed environments, and
what each PR costs: whole reconcile passes against moto and the GitHub stand-in (driven through
PyGithub), with an injected clock.

The pool policies' own decisions (when to sleep, expire, reclaim) are tested with the pass; here
the environment is mostly put in each state the way those decisions leave it (one test lets the
real expiry policy do it), and the test reads what the stand-in received.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from pullre.cost.pricing import Cost
from pullre.environments import actions
from pullre.environments.agent_reports import record_step
from pullre.models import (
    Environment,
    EnvironmentStatus,
    PullRequest,
    Role,
    Server,
    SleepReason,
    StepStatus,
    User,
)
from pullre.policies import sleep
from pullre.policies.savings import PoolPolicies
from pullre.reconcile.run import PassReport, run_pass
from pullre.reporting import facts as report_facts
from pullre.reporting import verdicts
from pullre.reporting.comment import CommentView, cost_text, render
from pullre.reporting.pass_report import report_changes
from tests.clock import MovingClock
from tests.reconcile_fixtures import NAME, OWNER, World

PUBLIC = "https://pullre.example"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run(world: World, clock: MovingClock, **options: Any) -> PassReport:
    return run_pass(
        world.engine, world.github, world.ec2.adapter, include_drafts=False,
        lease_ttl=timedelta(seconds=60), clock=clock, public_url=PUBLIC, **options,
    )  # fmt: skip


def report(world: World, clock: MovingClock, **options: Any) -> list[str]:
    return report_changes(world.sessions, world.github, public_url=PUBLIC, clock=clock, **options)


def pull_id(world: World, number: int) -> int:
    with world.sessions() as session:
        found = session.scalar(select(PullRequest.id).where(PullRequest.number == number))
        assert found is not None
        return found


def deploy_ok(world: World, number: int, clock: MovingClock) -> None:
    """The agent of the PR's server deploys its head and reports it healthy."""
    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        environment = pull.environments[-1]
        assert environment.server is not None
        for step, status in (("fetch", StepStatus.RUNNING), ("health", StepStatus.OK)):
            record_step(
                session, environment.server, environment_id=environment.id,
                head_sha=pull.head_sha, step=step, status=status, log="", clock=clock,
            )  # fmt: skip
        session.commit()


def newest(world: World, number: int) -> Environment:
    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        return pull.environments[-1]


def change(world: World, number: int, **values: Any) -> None:
    """Set columns of the PR's newest environment (or, with ``pull__``, of the PR)."""
    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        for key, value in values.items():
            if key.startswith("pull__"):
                setattr(pull, key.removeprefix("pull__"), value)
            else:
                setattr(pull.environments[-1], key, value)
        session.commit()


def deployment_statuses(world: World, number: int) -> list[tuple[str, str, str]]:
    """(state, description, environment_url) of each status of the PR's deployments, oldest
    first."""
    repo = world.standin.repo(OWNER, NAME)
    return [
        (s["state"], s["description"], s["environment_url"])
        for d in repo.deployments
        if d["environment"] == f"pr-{number}"
        for s in reversed(repo.deployment_statuses[d["id"]])
    ]


def commit_statuses(world: World, sha: str) -> list[tuple[str, str]]:
    stored = world.standin.repo(OWNER, NAME).commit_statuses
    return [
        (s["state"], s["description"])
        for s in reversed(stored)
        if s["sha"] == sha and s["context"] == "pullre/deploy"
    ]


def the_comment(world: World, number: int) -> str:
    (comment,) = world.standin.repo(OWNER, NAME).comments[number]
    body: str = comment["body"]
    return body


def comment_writes(world: World) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in world.standin.requests
        if "/comments" in r.path and r.method in {"POST", "PATCH"}
    ]


def ready_pr(world: World, clock: MovingClock, servers: int = 1) -> int:
    world.add_repository()
    world.add_servers(servers)
    number = world.standin.open_pull(OWNER, NAME)
    run(world, clock)
    deploy_ok(world, number, clock)
    run(world, clock)
    assert newest(world, number).status is EnvironmentStatus.READY
    return number


def test_sleep_then_wake_then_ready_on_github(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    visit = f"{PUBLIC}/pulls/{pull_id(world, number)}/visit"

    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        clock.at(timedelta(hours=1, minutes=30))
        actions.put_to_sleep(session, pull, actor="alice", clock=clock)
        session.commit()
    run(world, clock.at(timedelta(hours=1, minutes=31)))

    body = the_comment(world, number)
    assert (
        "**Staging environment:** sleeping since 2026-11-23 10:30 UTC (put to sleep by alice) "
        f"— data kept; [wake it]({visit})"
    ) in body
    assert "**URL:**" not in body, "a sleeping box serves nothing"
    assert world.states() == {world.servers[0]: "stopped"}
    assert deployment_statuses(world, number)[-1] == (
        "inactive", "Asleep to save cost, data kept; wake it from pullre", "",
    )  # fmt: skip
    assert commit_statuses(world, sha)[-1] == ("success", f"Deployed {sha[:7]}; asleep, data kept")

    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        actions.wake(session, pull, actor="bob", clock=clock.at(timedelta(hours=3)))
        session.commit()
    run(world, clock)
    assert "**Staging environment:** starting a staging server" in the_comment(world, number)
    assert world.states() == {world.servers[0]: "running"}
    deploy_ok(world, number, clock.at(timedelta(hours=3, minutes=5)))
    run(world, clock)

    assert [(state, text) for state, text, _ in deployment_statuses(world, number)] == [
        ("in_progress", "Starting a staging server"),
        ("success", f"Deployed {sha[:7]}"),
        ("inactive", "Asleep to save cost, data kept; wake it from pullre"),
        ("in_progress", "Starting a staging server"),
        ("success", f"Deployed {sha[:7]}"),
    ], "one deployment: marked inactive while asleep, success again once ready"
    assert deployment_statuses(world, number)[-1][2] == "https://stage-1.example"
    assert commit_statuses(world, sha) == [
        ("pending", "Starting a staging server"),
        ("success", f"Deployed {sha[:7]}"),
        ("success", f"Deployed {sha[:7]}; asleep, data kept"),
        ("pending", "Starting a staging server"),
        ("success", f"Deployed {sha[:7]}"),
    ]
    body = the_comment(world, number)
    assert body.startswith("<!-- pullre:status -->\n**Staging environment:** ready\n")
    assert "sleeping" not in body
    assert "wake it" not in body


def test_a_failed_environment_asleep_keeps_its_failure(world: World) -> None:
    clock = MovingClock(T0)
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    run(world, clock)
    with world.sessions() as session:
        environment = session.scalars(select(Environment)).one()
        assert environment.server is not None
        record_step(
            session, environment.server, environment_id=environment.id, head_sha=sha,
            step="build", status=StepStatus.FAILED, log="boom", clock=clock,
        )  # fmt: skip
        sleep.put_to_sleep(session, environment, reason=SleepReason.IDLE, clock=clock)
        session.commit()
    run(world, clock)

    assert commit_statuses(world, sha)[-1] == (
        "failure", f"Deploy of {sha[:7]} failed; asleep, data kept",
    )  # fmt: skip
    body = the_comment(world, number)
    assert "sleeping since 2026-11-23 09:00 UTC (idle) — data kept" in body
    assert "boom" in body, "the error that was there when it went to sleep is still shown"


def _asleep(reason: SleepReason, by: str | None = None) -> str:
    env = report_facts.EnvironmentFacts(
        id=1, status=EnvironmentStatus.SLEEPING, staging_url="https://stage.example",
        deployed_sha="a" * 40, redeploy_requested=False, last_error=None, queue_position=None,
        smoke=None, slept_at=T0, sleep_reason=reason, slept_by=by, ready_before_sleep=True,
    )  # fmt: skip
    pull = report_facts.PullFacts(
        id=7, owner=OWNER, name=NAME, number=3, head_sha="a" * 40, environments=[env]
    )
    return render(verdicts.comment_view(pull, env, f"{PUBLIC}/pulls/7"))


@pytest.mark.parametrize(
    ("reason", "by", "wording"),
    [
        (SleepReason.IDLE, None, "(idle)"),
        (SleepReason.OFFICE_HOURS, None, "(outside office hours)"),
        (SleepReason.BY_HAND, None, "(put to sleep by hand)"),
        (SleepReason.BY_HAND, "@dave_x", "(put to sleep by @\u200bdave\\_x)"),
    ],
)
def test_each_reason_to_sleep_is_worded(reason: SleepReason, by: str | None, wording: str) -> None:
    assert _asleep(reason, by).startswith(
        "<!-- pullre:status -->\n**Staging environment:** sleeping since 2026-11-23 09:00 UTC "
        f"{wording} — data kept; [wake it]({PUBLIC}/pulls/7/visit)\n"
    )


def test_the_expiry_warning_says_when_and_goes_when_pinned(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    visit = f"{PUBLIC}/pulls/{pull_id(world, number)}/visit"
    touched = T0 + timedelta(hours=5, minutes=17)
    change(world, number, last_activity_at=touched, expiry_warned_at=T0 + timedelta(hours=53))

    assert report(world, clock.at(timedelta(hours=53)), ttl=timedelta(hours=72)) == []

    assert (
        "- **Expiry:** this environment expires at 2026-11-26 14:17 UTC unless someone opens "
        f"it, pushes or pins it — [open it]({visit})"
    ) in the_comment(world, number)
    world.standin.clear_requests()
    assert report(world, clock.at(timedelta(hours=54)), ttl=timedelta(hours=72)) == []
    assert comment_writes(world) == [], "the warning names a moment: nothing to rewrite"

    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        admin = User(username="carol", password_hash="x", role=Role.ADMIN)
        session.add(admin)
        actions.pin(session, pull, user=admin, reason="demo on Friday", clock=clock)
        session.commit()
    assert report(world, clock, ttl=timedelta(hours=72)) == []

    body = the_comment(world, number)
    assert "Expiry" not in body
    assert "unless someone opens it" not in body
    assert "- **Pinned:** pinned by carol: demo on Friday (it neither sleeps nor expires)" in body


def test_the_pass_warns_then_expires_and_the_comment_follows(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    policies = PoolPolicies(ttl=timedelta(hours=72), expiry_warning=timedelta(hours=24))

    run(world, clock.at(timedelta(hours=49)), policies=policies)
    assert "this environment expires at 2026-11-26 09:00 UTC unless someone opens it" in (
        the_comment(world, number)
    )
    run(world, clock.at(timedelta(hours=73)), policies=policies)
    run(world, clock.at(timedelta(hours=74)), policies=policies)

    body = the_comment(world, number)
    assert body.startswith(
        "<!-- pullre:status -->\n**Staging environment:** released by pullre: expired\\: "
    )
    assert " — push or queue it again from pullre to get a new one\n" in body
    assert "expires at" not in body


def test_an_expiry_warning_without_a_known_ttl_still_warns() -> None:
    body = render(CommentView(status="ready", expiry_warned=True, visit_url=f"{PUBLIC}/v"))
    assert "- **Expiry:** this environment expires soon unless someone opens it" in body


def test_reclaimed_then_queued_again_says_why(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    waiting = world.standin.open_pull(OWNER, NAME)
    run(world, clock.at(timedelta(minutes=10)))
    with world.sessions() as session:
        environment = session.scalars(
            select(Environment).where(Environment.status == EnvironmentStatus.READY)
        ).one()
        sleep.put_to_sleep(session, environment, reason=SleepReason.IDLE, clock=clock)
        session.commit()
    run(world, clock.at(timedelta(hours=2)))
    reason = f"reclaimed for {OWNER}/{NAME}#{waiting}, which waited 45 min"
    # As the pass leaves a reclaimed stay: releasing, with its reason.
    change(world, number, status=EnvironmentStatus.RELEASING, release_reason=reason)
    run(world, clock.at(timedelta(hours=2, minutes=1)))  # released; #2 gets the server

    escaped = r"reclaimed for acme/shop\#2, which waited 45 min"
    assert the_comment(world, number).startswith(
        "<!-- pullre:status -->\n**Staging environment:** released by pullre: "
        f"{escaped} — the PR is queued again for a new one\n"
    )
    assert deployment_statuses(world, number)[-1] == (
        "inactive", f"Released by pullre: {reason}", "",
    )  # fmt: skip

    run(world, clock.at(timedelta(hours=2, minutes=2)))  # the PR is queued again
    assert newest(world, number).status is EnvironmentStatus.QUEUED
    body = the_comment(world, number)
    assert "**Staging environment:** waiting for a staging server" in body
    assert "- **Queue:** #1 in queue" in body
    assert f"- **Earlier environment:** released by pullre: {escaped} (its data was dropped)" in (
        body
    )


def test_expired_says_why_and_how_to_get_a_new_one(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    change(
        world, number, status=EnvironmentStatus.RELEASING,
        release_reason="expired: untouched for 72 h", pull__parked=True,
    )  # fmt: skip
    run(world, clock.at(timedelta(hours=80)))
    run(world, clock.at(timedelta(hours=81)))

    assert newest(world, number).status is EnvironmentStatus.RELEASED, "parked: not queued again"
    body = the_comment(world, number)
    assert body.startswith(
        "<!-- pullre:status -->\n**Staging environment:** released by pullre: "
        r"expired\: untouched for 72 h — push or queue it again from pullre to get a new one"
    )
    assert deployment_statuses(world, number)[-1] == (
        "inactive", "Released by pullre: expired: untouched for 72 h", "",
    )  # fmt: skip


_NASTY = (
    "</details> <!-- pullre:status --> # Owned\n```\n[click](javascript:alert(1)) "
    "<img src=x onerror=alert(1)> @everyone | --- | *bold* _it_ `code` \\"
)
_SPECIAL = set("\\`*_{}[]()<>#+-.!|~:&")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def pin(world: World, number: int, username: str, reason: str, clock: MovingClock) -> None:
    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash="x", role=Role.ADMIN)
            session.add(user)
        actions.pin(session, pull, user=user, reason=reason, clock=clock)
        session.commit()


def test_a_pin_reason_and_name_cannot_change_the_comment(world: World) -> None:
    clock = MovingClock(T0)
    number = ready_pr(world, clock)
    pin(world, number, "m*a*l<b>", "a plain reason", clock)
    assert report(world, clock) == []
    plain = the_comment(world, number)
    pin(world, number, "m*a*l<b>", _NASTY, clock)
    assert report(world, clock) == []

    body = the_comment(world, number)
    assert body.count("\n") == plain.count("\n"), "the reason stays on its own line"
    (line,) = [text for text in body.splitlines() if text.startswith("- **Pinned:**")]
    shown = line.removeprefix("- **Pinned:** pinned by ").removesuffix(
        " (it neither sleeps nor expires)"
    )
    who, _, reason = shown.partition(": ")
    # Every character Markdown or HTML could act on is escaped, and nothing else is lost.
    for part in (who, reason):
        assert not re.search(r"(?<!\\)(?:\\\\)*[`*_{}\[\]()<>#+\-.!|~:&]", part), part
    assert _unescape(who) == "m*a*l<b>"
    assert _unescape(reason).replace("@\u200b", "@") == " ".join(_NASTY.split())
    assert "@everyone" not in body, "no mention"
    assert body.count("<!--") == 1
    assert body.count("```") == 0


def test_cost_line_changes_when_a_run_ends_not_every_pass(world: World) -> None:
    clock = MovingClock(T0)
    world.add_repository()
    world.add_servers(1)
    with world.sessions() as session:
        session.scalars(select(Server)).one().hourly_price = Decimal("0.50")
        session.commit()
    number = world.standin.open_pull(OWNER, NAME)
    run(world, clock, prices={})  # assigned; the instance starts
    deploy_ok(world, number, clock.at(timedelta(minutes=5)))
    run(world, clock.at(timedelta(minutes=10)), prices={})  # seen running: a span opens

    running = "- **Cost so far:** running since 2026-11-23 09:10 UTC"
    assert running in the_comment(world, number)
    world.standin.clear_requests()
    run(world, clock.at(timedelta(hours=1)), prices={})
    assert comment_writes(world) == [], "an hour later the comment is the same"

    with world.sessions() as session:
        environment = session.scalars(select(Environment)).one()
        sleep.put_to_sleep(session, environment, reason=SleepReason.IDLE, clock=clock)
        session.commit()
    run(world, clock.at(timedelta(hours=1, minutes=10)), prices={})  # stops the instance
    assert running in the_comment(world, number), "its stop is not seen yet"
    run(world, clock.at(timedelta(hours=3, minutes=10)), prices={})  # seen stopped

    line = "- **Cost so far:** 1.50 {}(3.0 h)"
    body = the_comment(world, number)
    assert line.format("") in body or line.format("USD ") in body  # the pass's [cost] currency
    assert "running since" not in body
    assert report(world, clock, currency="EUR") == []
    assert line.format("EUR ") in the_comment(world, number)


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (Cost(), None),
        (Cost(hours=Decimal(4), amount=Decimal("2.005")), "2.01 USD (4.0 h)"),
        (
            Cost(hours=Decimal(6), amount=Decimal(1), unpriced_hours=Decimal("2.04")),
            "1.00 USD (4.0 h) + 2.0 h at no known price",
        ),
        (Cost(hours=Decimal(2), unpriced_hours=Decimal(2)), "2.0 h at no known price"),
        (
            Cost(running_since=datetime(2026, 1, 2, 3, 4, 59, tzinfo=UTC)),
            "running since 2026-01-02 03:04 UTC",
        ),
        (
            Cost(hours=Decimal(1), amount=Decimal("0.1"), running_since=T0),
            "0.10 USD (1.0 h), and running since 2026-11-23 09:00 UTC",
        ),
    ],
)
def test_cost_text(cost: Cost, expected: str | None) -> None:
    assert cost_text(cost, "USD") == expected
