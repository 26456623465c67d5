"""The PR page: what its environment is doing, its history, and the actions people may take."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre import events
from pullre.environments.status import TIMELINE_LENGTH
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    StepStatus,
)
from tests.page_seeds import NOW, add_pull, add_repository, add_server
from tests.web_fixtures import csrf_token


def page_of(client: FlaskClient, pull: PullRequest) -> str:
    response = client.get(f"/pulls/{pull.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def report(session: Session, env: Environment, step: str, status: StepStatus, log: str) -> None:
    session.add(
        DeployStep(environment_id=env.id, head_sha="c" * 40, step=step, status=status, log_tail=log)
    )
    session.flush()


def test_the_page_shows_the_pr_its_environment_and_latest_deploy(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    pull = add_pull(
        session,
        repo,
        12,
        status=EnvironmentStatus.FAILED,
        server=add_server(session, 3),
        title="Fix <script>alert(1)</script> & more",
    )
    env = pull.environments[-1]
    env.last_error = "migrate failed: <b>table</b> exists"
    # An earlier deploy, then the latest one, which failed at migrate.
    report(session, env, "fetch", StepStatus.RUNNING, "")
    report(session, env, "build", StepStatus.FAILED, "OLD BUILD LOG")
    report(session, env, "fetch", StepStatus.RUNNING, "")
    report(session, env, "fetch", StepStatus.OK, "fetched refs/pull/12/head")
    report(session, env, "migrate", StepStatus.FAILED, "ERROR <table> exists")
    report(session, env, "build", StepStatus.OK, "built")
    session.commit()

    page = page_of(member_client, pull)
    assert "<h1>Fix &lt;script&gt;alert(1)&lt;/script&gt; &amp; more</h1>" in page
    assert "<script>alert" not in page
    assert 'href="https://github.com/acme/shop/pull/12"' in page
    assert "acme/shop" in page
    assert "<strong>alice</strong>" in page
    assert "<code>feature-12</code>" in page
    assert f'title="{pull.head_sha}"' in page
    # A failed deploy serves nothing: no green "Open staging", and the address, still shown as
    # text, links the visit page, which says why.
    assert 'href="https://stage-3.example.com"' not in page
    assert "Open staging" not in page
    assert (
        f'<a class="visit-link" href="/pulls/{pull.id}/visit">https://stage-3.example.com</a>'
        in page
    )
    assert 'class="badge badge-failed">failed<' in page
    assert "<code>pr_" in page
    assert (
        '<pre class="log error-log">migrate failed: &lt;b&gt;table&lt;/b&gt; exists</pre>' in page
    )
    steps = re.findall(r'<span class="step-name">(\w+)</span>', page)
    assert steps == ["fetch", "build", "migrate"]  # run order, latest deploy only
    assert "OLD BUILD LOG" not in page
    assert '<pre class="log">ERROR &lt;table&gt; exists</pre>' in page
    # The error is said once, in the block above; the failed step's full log stays one click away.
    assert re.search(
        r'<details class="step step-failed" data-step="migrate">\s*'
        r'<summary><span class="step-name">migrate',
        page,
    )
    assert "fetched refs/pull/12/head" in page


def test_queue_position_and_timeline_newest_first_with_a_link_to_more(
    member_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    add_pull(session, repo, 1, status=EnvironmentStatus.QUEUED, queued_minutes_ago=30)
    pull = add_pull(session, repo, 2, status=EnvironmentStatus.QUEUED, queued_minutes_ago=10)
    other = add_pull(session, repo, 3)
    for n in range(TIMELINE_LENGTH + 5):
        event = events.record(session, "note", f"note {n} <i>x</i>", pull_request=pull)
        event.created_at = NOW + timedelta(seconds=n)
    events.record(session, "note", "about another PR", pull_request=other)
    session.commit()

    page = page_of(member_client, pull)
    assert "#2 in the queue" in page
    notes = re.findall(r"note (\d+) &lt;i&gt;x&lt;/i&gt;", page)
    assert notes == [str(n) for n in range(TIMELINE_LENGTH + 4, 4, -1)]
    assert "about another PR" not in page
    assert f'href="/events/?pull={pull.id}"' in page

    quiet = page_of(member_client, other)
    assert "about another PR" in quiet
    assert "/events/?pull=" not in quiet
    assert "No environment yet" in quiet


def test_unknown_pr_is_404(member_client: FlaskClient) -> None:
    assert member_client.get("/pulls/999").status_code == 404


def post(client: FlaskClient, pull: PullRequest, action: str) -> tuple[int, str]:
    token = csrf_token(client, f"/pulls/{pull.id}")
    response = client.post(f"/pulls/{pull.id}/{action}", data={"csrf_token": token})
    if response.status_code != 302:
        return response.status_code, response.get_data(as_text=True)
    assert response.location == f"/pulls/{pull.id}"
    return 302, page_of(client, pull)


def test_members_redeploy_and_reset_data(member_client: FlaskClient, session: Session) -> None:
    repo = add_repository(session)
    pull = add_pull(session, repo, 4, status=EnvironmentStatus.READY, server=add_server(session, 1))
    env = pull.environments[-1]
    env.schema_ready_at = NOW
    session.commit()

    status, page = post(member_client, pull, "redeploy")
    assert status == 302
    assert "Redeploy of #4 asked" in page
    session.refresh(env)
    assert env.deploy_requested_at is not None
    assert "waiting for the agent" in page

    status, page = post(member_client, pull, "reset-data")
    assert "Data reset of #4 asked" in page
    session.refresh(env)
    assert env.schema_ready_at is None
    kinds = session.scalars(
        select(Event.kind).where(Event.pull_request_id == pull.id).order_by(Event.id)
    ).all()
    assert kinds == ["redeploy", "reset_data"]
    assert "redeploy asked by member" in page  # the timeline shows who asked


def test_a_refused_action_is_a_flashed_error_not_a_500(
    admin_client: FlaskClient, session: Session
) -> None:
    pull = add_pull(session, add_repository(session), 5, status=EnvironmentStatus.QUEUED)
    session.commit()
    status, page = post(admin_client, pull, "redeploy")
    assert status == 302
    assert '<p class="flash flash-error" role="status">#5 has no server to redeploy on.</p>' in page
    status, page = post(admin_client, pull, "unpark")
    assert "#5 is not released." in page
    assert session.scalars(select(Event).where(Event.pull_request_id == pull.id)).all() == []


@pytest.mark.parametrize("action", ["release", "unpark"])
def test_members_may_not_release_or_unpark(
    member_client: FlaskClient, session: Session, action: str
) -> None:
    pull = add_pull(
        session,
        add_repository(session),
        6,
        status=EnvironmentStatus.READY,
        server=add_server(session, 1),
        parked=action == "unpark",
    )
    session.commit()
    page = page_of(member_client, pull)
    assert "/release" not in page
    assert "/unpark" not in page
    status, _ = post(member_client, pull, action)
    assert status == 403
    session.refresh(pull)
    assert pull.parked is (action == "unpark")
    assert pull.environments[-1].status is EnvironmentStatus.READY


def test_admins_release_and_queue_again(admin_client: FlaskClient, session: Session) -> None:
    pull = add_pull(
        session,
        add_repository(session),
        7,
        status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )
    session.commit()
    assert f'action="/pulls/{pull.id}/release"' in page_of(admin_client, pull)

    status, page = post(admin_client, pull, "release")
    assert status == 302
    assert "#7 released" in page
    session.refresh(pull)
    assert pull.parked
    assert pull.environments[-1].status is EnvironmentStatus.RELEASING
    assert f'action="/pulls/{pull.id}/unpark"' in page

    status, page = post(admin_client, pull, "unpark")
    assert status == 302
    assert "#7 queued again." in page
    session.refresh(pull)
    assert not pull.parked


def test_actions_need_the_csrf_token(member_client: FlaskClient, session: Session) -> None:
    pull = add_pull(
        session,
        add_repository(session),
        8,
        status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )
    session.commit()
    assert member_client.post(f"/pulls/{pull.id}/redeploy").status_code == 400
    session.refresh(pull)
    assert pull.environments[-1].deploy_requested_at is None
