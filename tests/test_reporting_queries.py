"""What reporting costs the controller DB: a fixed number of queries whatever the number of PRs,
and a lease renewed after GitHub work rather than after every unchanged PR.

Reporting is the last step of every pass and looks at every PR open or released in the last
week, so a query (or a lease renewal) per PR made it most of an idle pass's cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import Clock
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import (
    EnvironmentStatus,
    Event,
    GithubReport,
    PullRequest,
    PullRequestState,
    Repository,
    RunningSpan,
    Scenario,
    ScenarioAttachment,
    ScenarioRun,
    SleepReason,
    StepStatus,
)
from pullre.reporting import facts as report_facts
from pullre.reporting import pass_report as reporting
from pullre.scenarios import acceptance as scenarios
from tests.page_seeds import NOW, add_pull, add_repository, add_server
from tests.statement_count import counted_statements

STEPS = [{"action": "Open the cart", "expected": "It is empty"}]
KINDS = 6


def expected_scenarios(number: int) -> tuple[tuple[str, str], ...]:
    """What each kind of PR shows as scenarios, in the order the comment lists them."""
    return {
        0: (("Checkout", "passed"), ("Search", "not run")),  # by label and by hand
        2: (("Search", "stale"),),
        4: ((f"Invoice {number}", "not run"),),  # the PR's own, read from its branch
    }.get(number % KINDS, ())


def clock() -> datetime:
    return NOW


@dataclass
class Shared:
    repositories: list[Repository]
    checkout: Scenario  # the UI's, attached by the label "billing"
    search: Scenario  # the UI's, attached by hand


def shared(session: Session) -> Shared:
    checkout = Scenario(title="Checkout", steps=STEPS, labels=["billing"])
    search = Scenario(title="Search", steps=STEPS, labels=[])
    unrelated = Scenario(title="Unrelated", steps=STEPS, labels=["other"])
    session.add_all([checkout, search, unrelated])
    repositories = [
        add_repository(session, "acme", "shop"),
        add_repository(session, "acme", "blog"),
    ]
    session.flush()
    return Shared(repositories, checkout, search)


def seed(session: Session, world: Shared, numbers: range) -> None:
    """PRs of every kind a report reads something different for, cycling by ``number % 6``:
    ready (smoke, cost, a stored report, scenarios by label and by hand), queued, asleep by
    hand, closed and released yesterday, failed and pinned (a report in error, a scenario of its
    own), and ready with an expiry warning."""
    for number in numbers:
        kind = number % KINDS
        repository = world.repositories[number % 2]
        status = (
            EnvironmentStatus.READY,
            EnvironmentStatus.QUEUED,
            EnvironmentStatus.SLEEPING,
            EnvironmentStatus.RELEASED,
            EnvironmentStatus.FAILED,
            EnvironmentStatus.READY,
        )[kind]
        server = add_server(session, number) if kind in {0, 2, 4, 5} else None
        smoke = StepStatus.OK if kind in {0, 5} else None
        pull = add_pull(
            session, repository, number, status=status, server=server, smoke=smoke,
            queued_minutes_ago=number,
        )  # fmt: skip
        environment = pull.environments[-1]
        if kind == 0:
            pull.labels = ["billing"]
            session.add(
                ScenarioAttachment(
                    pull_request_id=pull.id, scenario_id=world.search.id, attached_by="ann"
                )
            )
            session.add(_run(pull.id, world.checkout.id, pull.head_sha, "pass"))
            assert server is not None
            session.add(
                RunningSpan(
                    server_id=server.id, environment_id=environment.id,
                    started_at=NOW - timedelta(hours=3), ended_at=NOW - timedelta(hours=1),
                    hourly_price=Decimal("0.5"),
                )
            )  # fmt: skip
            session.add(
                GithubReport(
                    pull_request_id=pull.id, key="comment", remote_id=number, digest="x",
                    reported_at=NOW - timedelta(minutes=number),
                )
            )  # fmt: skip
        elif kind == 2:
            environment.slept_at, environment.sleep_reason = NOW, SleepReason.BY_HAND
            session.add(
                ScenarioAttachment(
                    pull_request_id=pull.id, scenario_id=world.search.id, attached_by="ann"
                )
            )
            session.add(_run(pull.id, world.search.id, "0" * 40, "pass"))
            session.add(
                Event(
                    kind="sleeping", message="asleep", pull_request_id=pull.id,
                    details={"actor": f"ann{number}"},
                )
            )  # fmt: skip
        elif kind == 3:
            pull.state = PullRequestState.CLOSED
            environment.released_at, environment.release_reason = NOW - timedelta(days=1), "x"
        elif kind == 4:
            pull.pinned_by, pull.pinned_reason, pull.pinned_at = "ada", "demo", NOW
            session.add(
                Scenario(
                    title=f"Invoice {number}", steps=STEPS, pull_request_id=pull.id,
                    source_path=".pullre/scenarios/invoice.md",
                )
            )  # fmt: skip
            session.add(
                GithubReport(
                    pull_request_id=pull.id, key="status:pullre/deploy", digest="",
                    last_error="502",
                )
            )  # fmt: skip
        elif kind == 5:
            environment.expiry_warned_at = NOW
    session.commit()


def _run(pull_id: int, scenario_id: int, sha: str, status: str) -> ScenarioRun:
    return ScenarioRun(
        pull_request_id=pull_id, scenario_id=scenario_id, head_sha=sha, runner_name="ann",
        steps=STEPS, results=[{"status": status, "note": ""}], started_at=NOW,
        finished_at=NOW,
    )  # fmt: skip


def loaded(
    session_factory: sessionmaker[Session], engine: Engine
) -> tuple[list[report_facts.PullFacts], list[str]]:
    """``load`` in a session of its own, so nothing is served from an earlier identity map."""
    with session_factory() as session, counted_statements(engine) as statements:
        facts = report_facts.load(session, clock, ttl=timedelta(hours=48))
    return facts, statements


def check(facts: list[report_facts.PullFacts], count: int) -> None:
    """What was loaded is what was seeded, so equal counts are not equal because empty."""
    assert sorted(f.number for f in facts) == list(range(1, count + 1))
    for pull in facts:
        kind, env = pull.number % KINDS, pull.environments[-1]
        assert pull.scenarios == expected_scenarios(pull.number), pull.number
        assert (env.queue_position is not None) == (kind == 1)
        assert env.slept_by == (f"ann{pull.number}" if kind == 2 else None)
        assert pull.cost.hours == (Decimal(2) if kind == 0 else Decimal(0))
        assert env.smoke == ("passed" if kind in {0, 5} else None)
        assert (env.expires_at is not None) == (kind == 5)
        assert (pull.pinned_by, env.release_reason) == (
            "ada" if kind == 4 else None,
            "x" if kind == 3 else None,
        )
        assert set(pull.reports) == {0: {"comment"}, 4: {"status:pullre/deploy"}}.get(kind, set())
        assert env.staging_url == (
            "" if kind in {1, 3} else f"https://stage-{pull.number}.example.com"
        )


def test_load_reads_every_pr_in_the_same_number_of_queries(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    counts = []
    with session_factory() as session:
        world = shared(session)
        for size, numbers in ((KINDS, range(1, KINDS + 1)), (10 * KINDS, range(KINDS + 1, 61))):
            seed(session, world, numbers)
            facts, statements = loaded(session_factory, engine)
            check(facts, size)
            counts.append(len(statements))
    print(f"queries of report_facts.load at {KINDS} and {10 * KINDS} PRs:", counts)
    print("\n".join(s.split("\n")[0][:90] for s in statements))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 11, counts  # 10 statements and the savepoint


def test_one_pr_reads_its_standings_as_the_batch_does(session: Session) -> None:
    """The PR page's ``standings`` and reporting's ``standings_for`` agree, order included."""
    world = shared(session)
    seed(session, world, range(1, 2 * KINDS + 1))
    pulls = list(session.scalars(select(PullRequest).order_by(PullRequest.number.desc())))
    batch = scenarios.standings_for(session, pulls)
    for pull in pulls:
        alone = scenarios.standings(session, pull)
        assert [(s.scenario.id, s.how, s.result, s.run) for s in alone] == [
            (s.scenario.id, s.how, s.result, s.run) for s in batch[pull.id]
        ]
        assert [(s.title, how) for s, how in scenarios.attached(session, pull)] == [
            (s.scenario.title, s.how) for s in alone
        ]
    assert scenarios.standings_for(session, []) == {}


class Renewals:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_the_lease_is_renewed_after_github_work_not_after_every_unchanged_pr(
    session_factory: sessionmaker[Session],
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with session_factory() as session:
        repository = add_repository(session, "acme", "shop")
        for number in range(1, 6):
            pull = add_pull(
                session, repository, number, status=EnvironmentStatus.READY,
                server=add_server(session, number),
            )  # fmt: skip
            assert github_standin.open_pull("acme", "shop", head_sha=pull.head_sha) == number
        session.commit()

    def report(renew: Renewals, now: Clock = clock) -> list[str]:
        return reporting.report_changes(
            session_factory, github, public_url="https://pullre.example", clock=now,
            renew=renew, budget=None,
        )  # fmt: skip

    monkeypatch.setattr(reporting, "RENEW_EVERY", timedelta(hours=1))
    first, again = Renewals(), Renewals()
    assert report(first) == []
    assert first.count == 5  # every PR was new to GitHub: each was real work
    written = len(github_standin.requests)
    assert report(again) == []
    assert len(github_standin.requests) == written  # nothing changed, nothing asked
    assert again.count == 0

    # A long run of unchanged PRs still renews, at least every RENEW_EVERY.
    monkeypatch.setattr(reporting, "RENEW_EVERY", timedelta(0))
    quiet = Renewals()
    assert report(quiet) == []
    assert quiet.count == 5
