"""Scenario rules: attachment, runs tied to a head sha, self sign-off, and what GitHub is told."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from pullre.clock import system_clock
from pullre.github.adapter import PyGithubAdapter
from pullre.github.standin.server import GitHubStandIn
from pullre.models import (
    EnvironmentStatus,
    PullRequest,
    Role,
    Scenario,
    ScenarioFetch,
    ScenarioRun,
    User,
)
from pullre.reporting.pass_report import report_changes
from pullre.scenarios import acceptance as scenarios
from pullre.scenarios import gate
from pullre.scenarios import sources as scenario_sources
from tests.page_seeds import add_pull, add_repository, add_server

STEPS = [
    {"action": "Open the cart", "expected": "It is empty"},
    {"action": "Pay", "expected": "Paid"},
]


def user(session: Session, name: str) -> User:
    row = User(username=name, password_hash="x", role=Role.MEMBER)
    session.add(row)
    session.flush()
    return row


def scenario(
    session: Session, title: str = "Checkout", labels: list[str] | None = None
) -> Scenario:
    row = Scenario(title=title, steps=STEPS, labels=labels or [])
    session.add(row)
    session.flush()
    return row


def pull(session: Session, number: int = 42) -> PullRequest:
    repo = add_repository(session, "acme", f"shop{number}")
    server = add_server(session, number)
    return add_pull(session, repo, number, status=EnvironmentStatus.READY, server=server)


def run(
    session: Session, pr: PullRequest, sc: Scenario, who: User, statuses: list[str], *,
    allow: bool = False,
) -> ScenarioRun:  # fmt: skip
    started = scenarios.start_run(
        session, pr, sc, runner_id=who.id, runner_name=who.username,
        allow_self_signoff=allow, clock=system_clock,
    )  # fmt: skip
    for index, status in enumerate(statuses):
        scenarios.record_step(
            session, started, pr, index, status=status, note=f"note {index}",
            runner_id=who.id, clock=system_clock,
        )  # fmt: skip
    return started


def results(session: Session, pr: PullRequest) -> dict[str, str]:
    return {s.scenario.title: s.result for s in scenarios.standings(session, pr)}


def test_labels_attach_while_the_pr_carries_them_and_hand_attachment_stays(
    session: Session,
) -> None:
    pr = pull(session)
    labelled = scenario(session, "Invoices", labels=["billing"])
    by_hand = scenario(session, "Search")
    scenario(session, "Unrelated", labels=["other"])
    assert scenarios.attached(session, pr) == []
    pr.labels = ["billing"]
    assert scenarios.attach(session, pr, by_hand, "ann") is True
    assert scenarios.attach(session, pr, by_hand, "ann") is False
    session.flush()
    assert [(s.title, how) for s, how in scenarios.attached(session, pr)] == [
        ("Invoices", "label billing"),
        ("Search", "by hand"),
    ]
    pr.labels = []
    gate.detach(session, pr, by_hand, "ann")
    session.flush()
    assert scenarios.attached(session, pr) == []
    assert labelled.id is not None


def test_a_run_records_steps_runner_server_and_sha_and_a_push_makes_it_stale(
    session: Session,
) -> None:
    pr, sc, ann = pull(session), scenario(session), user(session, "ann")
    scenarios.attach(session, pr, sc, "ann")
    assert results(session, pr) == {"Checkout": "not run"}
    done = run(session, pr, sc, ann, ["pass", "pass"])
    assert (done.head_sha, done.server_name, done.runner_name) == (pr.head_sha, "stage-42", "ann")
    assert done.results == [
        {"status": "pass", "note": "note 0"},
        {"status": "pass", "note": "note 1"},
    ]
    assert done.finished_at is not None
    assert results(session, pr) == {"Checkout": "passed"}
    assert scenarios.acceptance(list(results(session, pr).values())) == "success"

    pr.head_sha = "b" * 40  # a push, as sync.apply_pull records it
    assert results(session, pr) == {"Checkout": "stale"}
    assert scenarios.acceptance(["stale"]) == "pending"
    with pytest.raises(scenarios.ScenarioRefused, match="newer commit"):
        scenarios.record_step(
            session, done, pr, 0, status="fail", note="", runner_id=ann.id, clock=system_clock
        )


def test_acceptance_is_pending_until_all_pass_and_failure_when_a_step_failed(
    session: Session,
) -> None:
    pr, ann = pull(session), user(session, "ann")
    first, second = scenario(session, "One"), scenario(session, "Two")
    for sc in (first, second):
        scenarios.attach(session, pr, sc, "ann")
    run(session, pr, first, ann, ["pass", "pass"])
    assert results(session, pr) == {"One": "passed", "Two": "not run"}
    assert scenarios.acceptance(list(results(session, pr).values())) == "pending"
    run(session, pr, second, ann, ["fail"])  # one failed step is enough, unfinished or not
    assert results(session, pr) == {"One": "passed", "Two": "failed"}
    assert scenarios.acceptance(list(results(session, pr).values())) == "failure"
    run(session, pr, second, ann, ["pass", "blocked"])
    assert results(session, pr)["Two"] == "blocked"
    assert scenarios.acceptance(["passed", "blocked"]) == "pending"
    assert scenarios.acceptance([]) is None


def test_the_author_may_not_sign_off_unless_the_setting_allows(session: Session) -> None:
    pr, sc = pull(session), scenario(session)
    author = user(session, "ALICE")  # page_seeds' PRs are opened by GitHub login "alice"
    with pytest.raises(scenarios.ScenarioRefused, match="may not sign off its own"):
        run(session, pr, sc, author, [])
    allowed = run(session, pr, sc, author, ["pass", "pass"], allow=True)
    assert scenarios.outcome(allowed) == "passed"


def test_only_the_runner_records_and_only_known_statuses(session: Session) -> None:
    pr, sc = pull(session), scenario(session)
    ann, bob = user(session, "ann"), user(session, "bob")
    started = run(session, pr, sc, ann, [])
    for kwargs, message in [
        ({"status": "pass", "runner_id": bob.id}, "only the person"),
        ({"status": "maybe", "runner_id": ann.id}, "pass, fail or blocked"),
    ]:
        with pytest.raises(scenarios.ScenarioRefused, match=message):
            scenarios.record_step(session, started, pr, 0, note="", clock=system_clock, **kwargs)  # type: ignore[arg-type]


def report(session_factory: sessionmaker[Session], github: PyGithubAdapter) -> list[str]:
    return report_changes(
        session_factory, github, public_url="https://pullre.example", clock=system_clock
    )


def acceptance_statuses(standin: GitHubStandIn, owner: str, name: str) -> list[tuple[str, str]]:
    return [
        (s["state"], s["sha"])
        for s in reversed(standin.repo(owner, name).commit_statuses)
        if s["context"] == "pullre/acceptance"
    ]


def test_acceptance_is_reported_on_change_only_with_a_table_in_the_comment(
    session_factory: sessionmaker[Session],
    github_standin: GitHubStandIn,
    github: PyGithubAdapter,
) -> None:
    with session_factory() as session:
        pr = pull(session, 1)
        github_standin.open_pull("acme", "shop1", author="alice", head_sha=pr.head_sha)
        sc = scenario(session, "Pay | <b>@team</b>")
        ann = user(session, "ann")
        scenarios.attach(session, pr, sc, "ann")
        session.commit()
        head = pr.head_sha
        assert report(session_factory, github) == []
        assert acceptance_statuses(github_standin, "acme", "shop1") == [("pending", head)]
        assert report(session_factory, github) == []  # nothing changed: nothing sent
        assert acceptance_statuses(github_standin, "acme", "shop1") == [("pending", head)]
        run(session, pr, sc, ann, ["pass", "pass"])
        session.commit()
        report(session_factory, github)
        assert acceptance_statuses(github_standin, "acme", "shop1")[-1] == ("success", head)
        body = github_standin.repo("acme", "shop1").comments[1][0]["body"]
        assert "| Pay \\| \\<b\\>@\u200bteam\\</b\\> | passed |" in body
        pr.head_sha = "c" * 40
        session.commit()
        report(session_factory, github)
        assert acceptance_statuses(github_standin, "acme", "shop1")[-1] == ("pending", "c" * 40)
        body = github_standin.repo("acme", "shop1").comments[1][0]["body"]
        assert "| stale (a newer commit needs a re-run) |" in body


def test_repository_scenarios_are_read_at_the_head_and_errors_kept(
    session: Session, github_standin: GitHubStandIn, github: PyGithubAdapter
) -> None:
    pr = pull(session)
    github_standin.create_repo("acme", "shop42")
    github_standin.commit_files("acme", "shop42", pr.head_sha, {
        ".pullre/scenarios/invoice.md": "# Invoice\n1. Buy\nExpected: Billed\n",
        ".pullre/scenarios/broken.md": "# Broken\n1. Buy\n",
        ".pullre/scenarios/notes.txt": "not a scenario",
        "README.md": "# Not here\n",
    })  # fmt: skip
    assert scenario_sources.needs_fetch(session, pr)
    fetched = scenario_sources.fetch(github, "acme", "shop42", pr.head_sha)
    scenario_sources.store(session, pr, fetched, system_clock)
    assert [(s.title, s.steps, how) for s, how in scenarios.attached(session, pr)] == [
        ("Invoice", [{"action": "Buy", "expected": "Billed"}], "repository")
    ]
    record = session.get(ScenarioFetch, pr.id)
    assert record is not None
    assert record.error == ".pullre/scenarios/broken.md: step 1 has no 'Expected:' line"
    assert not scenario_sources.needs_fetch(session, pr)

    pr.head_sha = "d" * 40  # pushed: the file is gone from the new commit
    github_standin.commit_files("acme", "shop42", pr.head_sha, {"README.md": "# x\n"})
    assert scenario_sources.needs_fetch(session, pr)
    fetched = scenario_sources.fetch(github, "acme", "shop42", pr.head_sha)
    scenario_sources.store(session, pr, fetched, system_clock)
    assert scenarios.attached(session, pr) == []
    assert session.get(ScenarioFetch, pr.id).error is None  # type: ignore[union-attr]

    failed = scenario_sources.fetch(github, "acme", "nowhere", pr.head_sha)
    assert failed.errors == []
    assert failed.scenarios == {}
    github_standin.fail_next(3, status=502)
    failed = scenario_sources.fetch(github, "acme", "shop42", pr.head_sha)
    assert not failed.complete
    assert failed.errors[0].startswith(".pullre/scenarios: ")
