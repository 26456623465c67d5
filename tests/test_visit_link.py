"""The one staging link people get: it opens the app when it serves, else says what is going on.

Flask test client on the real migrated SQLite DB; the app's clock is set so elapsed times are
exact.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre.environments.agent_reports import record_step
from pullre.environments.error_text import error_summary, plain_error
from pullre.models import DeployStep, EnvironmentStatus, PullRequest, StepStatus
from pullre.reporting.comment import CommentView, render
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository, add_server

NOT_FOUND_PAGE = (
    "health failed: GET / answered 404\n<!DOCTYPE html>\n<html><head><title>Not Found</title>"
    "<style>body{color:red}</style></head>\n<body>\n<h1>Not   Found</h1>\n"
    "<p>The requested resource was not found on this server.</p>\n</body></html>\n"
    "GET / answered 404"
)


def step(
    session: Session, pull: PullRequest, name: str, status: StepStatus, at: MovingClock
) -> None:
    session.add(
        DeployStep(
            environment_id=pull.environments[-1].id,
            head_sha=pull.head_sha,
            step=name,
            status=status,
            log_tail=f"{name} log",
            reported_at=at(),
        )
    )
    session.flush()


def visit(client: FlaskClient, pull: PullRequest) -> tuple[int, str, dict[str, str]]:
    response = client.get(f"/pulls/{pull.id}/visit")
    return response.status_code, response.get_data(as_text=True), dict(response.headers)


def test_a_deploying_pr_says_which_step_and_for_how_long_and_keeps_checking(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 5, status=EnvironmentStatus.DEPLOYING,
        server=add_server(session, 2),
    )  # fmt: skip
    for name in ("fetch", "checkout"):
        step(session, pull, name, StepStatus.RUNNING, clock)
        step(session, pull, name, StepStatus.OK, clock)
    step(session, pull, "build", StepStatus.RUNNING, clock)
    session.commit()
    clock.advance(seconds=42)
    status, page, headers = visit(member_client, pull)
    assert status == 200
    assert "#5 is deploying: step 3 of 7 (build) for 42 s." in page
    assert headers["Refresh"] == "5"
    assert '<code class="staging-url">https://stage-2.example.com</code>' in page


def test_a_queued_pr_gives_its_place(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    repo = add_repository(session)
    add_pull(session, repo, 1, status=EnvironmentStatus.QUEUED, queued_minutes_ago=9)
    pull = add_pull(session, repo, 2, status=EnvironmentStatus.QUEUED, queued_minutes_ago=1)
    session.commit()
    status, page, headers = visit(member_client, pull)
    assert (status, headers["Refresh"]) == (200, "5")
    assert "#2 waits #2 in the queue for a server." in page


def test_a_failed_pr_says_why_in_plain_words_and_does_not_refresh(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 6, status=EnvironmentStatus.FAILED,
        server=add_server(session, 3),
    )  # fmt: skip
    pull.environments[-1].last_error = NOT_FOUND_PAGE
    session.commit()
    status, page, headers = visit(member_client, pull)
    assert status == 200
    assert "The last deploy of #6 failed: health failed: GET / answered 404" in page
    assert "badge-failed" in page
    assert "Refresh" not in headers
    assert "&lt;h1&gt;" not in page


def test_an_app_with_failing_smoke_checks_still_opens_and_is_called_smoke_failing(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    server = add_server(session, 4)
    pull = add_pull(
        session, add_repository(session), 7, status=EnvironmentStatus.DEPLOYING, server=server
    )
    # The agent's reports, as the agent API stores them.
    for name, status in (
        ("fetch", StepStatus.RUNNING), ("health", StepStatus.OK), ("smoke", StepStatus.FAILED),
    ):  # fmt: skip
        record_step(
            session, server, environment_id=pull.environments[-1].id, head_sha=pull.head_sha,
            step=name, status=status, log=f"{name}: 1 failed", clock=clock,
        )  # fmt: skip
    session.commit()
    assert pull.environments[-1].status is EnvironmentStatus.FAILED  # for the reconciler
    response = member_client.get(f"/pulls/{pull.id}/visit")
    assert response.status_code == 303
    assert response.location == "https://stage-4.example.com"
    page = member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert f'<a class="button primary" href="/pulls/{pull.id}/visit">Open staging</a>' in page
    assert "The app runs; some smoke checks fail." in page
    assert '<span class="badge badge-smoke-failing">smoke failing</span>' in page
    assert '<span class="badge badge-failed">failed</span>' not in page
    dashboard = member_client.get("/").get_data(as_text=True)
    assert '<span class="badge badge-smoke-failing">smoke failing</span>' in dashboard
    # A deploy that did not come up is "failed", and its link does not open a dead app.
    record_step(
        session, server, environment_id=pull.environments[-1].id, head_sha=pull.head_sha,
        step="fetch", status=StepStatus.RUNNING, log="", clock=clock,
    )  # fmt: skip
    record_step(
        session, server, environment_id=pull.environments[-1].id, head_sha=pull.head_sha,
        step="build", status=StepStatus.FAILED, log="npm ERR!", clock=clock,
    )  # fmt: skip
    session.commit()
    assert member_client.get(f"/pulls/{pull.id}/visit").status_code == 200
    page = member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert '<span class="badge badge-failed">failed</span>' in page
    assert "Open staging" not in page


def test_only_a_serving_pr_gets_the_green_open_staging_button(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    repo = add_repository(session)
    ready = add_pull(
        session, repo, 8, status=EnvironmentStatus.READY, server=add_server(session, 5)
    )
    failed = add_pull(
        session, repo, 9, status=EnvironmentStatus.FAILED, server=add_server(session, 6)
    )
    deploying = add_pull(
        session, repo, 10, status=EnvironmentStatus.DEPLOYING, server=add_server(session, 7)
    )
    session.commit()

    def page(pull: PullRequest) -> str:
        return member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)

    assert (
        f'<a class="button primary" href="/pulls/{ready.id}/visit">Open staging</a> '
        '<code class="staging-url">https://stage-5.example.com</code>'
    ) in page(ready)
    assert "Open staging" not in page(failed)
    assert 'class="button primary" href="https://' not in page(failed)
    assert f'<a class="button" href="/pulls/{deploying.id}/visit">Open staging when ready</a>' in (
        page(deploying)
    )
    # The visit page of the released PR answers in words, never a dead link.
    clock.advance(minutes=1)
    environment = ready.environments[-1]
    environment.status, environment.release_reason = EnvironmentStatus.RELEASED, "expired"
    session.commit()
    status, text, _ = visit(member_client, ready)
    assert (status, "#8 has no staging environment now (expired)." in text) == (200, True)


def test_the_comment_links_the_visit_page_with_the_address_as_text() -> None:
    body = render(
        CommentView(
            status="deploying",
            staging_url="https://stage-1.example/x`y",
            visit_url="https://pullre.example/pulls/3/visit",
        )
    )
    assert (
        "- **Staging:** [open staging](https://pullre.example/pulls/3/visit)"
        " · `https://stage-1.example/x%60y`"
    ) in body


def test_an_error_is_plain_text_said_once() -> None:
    text = plain_error(NOT_FOUND_PAGE)
    assert text.splitlines() == [
        "health failed: GET / answered 404",
        "Not Found",  # the title and the heading: a repeated line is said once
        "The requested resource was not found on this server.",
        "GET / answered 404",
    ]
    assert error_summary("x" * 500, 20) == "x" * 19 + "…"
    assert plain_error("a < b and c > d\n\n\na < b and c > d") == "a < b and c > d"
    assert plain_error(None) == ""


def test_a_log_keeps_its_repeated_frames_but_not_a_loop_of_one_line() -> None:
    log = "retrying\nretrying\nretrying\n  at handler\n  at main\n  at handler\n"
    assert plain_error(log) == "retrying\nat handler\nat main\nat handler"
