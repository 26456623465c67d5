"""Approving a waiting PR: the PR page's form, ``/api/v1``, the repository page and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.cli.main import main as cli
from pullre.db import make_engine, make_session_factory
from pullre.models import Approvers, Event, PullRequest, Repository, Role, Trust
from tests.page_seeds import add_pull, add_repository
from tests.web_fixtures import MakeUser, csrf_token

SHA_A = "a" * 40
SHA_B = "b" * 40


def fork_pull(
    session: Session, number: int = 7, *, approvers: Approvers = Approvers.ADMINS
) -> PullRequest:
    repo = add_repository(session)
    repo.approvers = approvers
    pull = add_pull(session, repo, number)
    pull.head_sha, pull.from_fork, pull.author_association = SHA_A, True, "CONTRIBUTOR"
    session.commit()
    return pull


def bearer(session: Session, make_user: MakeUser, role: Role) -> dict[str, str]:
    owner = accounts.find_user(session, make_user(f"{role.value}-api", role))
    assert owner is not None
    _, secret = api_tokens.create_token(session, owner, "test")
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def approved(session: Session, pull: PullRequest) -> tuple[str | None, str | None]:
    session.expire_all()
    found = session.get(PullRequest, pull.id)
    assert found is not None
    return found.approved_sha, found.approved_by


# --- the PR page ------------------------------------------------------------------------------


def test_the_page_shows_the_wait_and_an_admin_approves_the_head_it_showed(
    admin_client: FlaskClient, session: Session
) -> None:
    pull = fork_pull(session)
    page = admin_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert 'class="badge badge-awaiting-approval">awaiting approval<' in page
    assert "until an admin of pullre approves its head commit" in page
    assert f'name="sha" value="{SHA_A}"' in page

    token = csrf_token(admin_client, f"/pulls/{pull.id}")
    response = admin_client.post(
        f"/pulls/{pull.id}/approve", data={"csrf_token": token, "sha": SHA_A}
    )
    assert response.status_code == 302
    assert approved(session, pull) == (SHA_A, "root-admin")
    event = session.scalars(select(Event).where(Event.kind == "approved")).one()
    assert event.details == {"actor": "root-admin", "head_sha": SHA_A}
    assert event.pull_request_id == pull.id
    page = admin_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert "awaiting approval" not in page
    assert "approved by <strong>root-admin</strong>" in page


def test_the_visit_link_of_a_waiting_pr_says_who_may_let_it_run(
    admin_client: FlaskClient, session: Session
) -> None:
    pull = fork_pull(session)
    page = admin_client.get(f"/pulls/{pull.id}/visit").get_data(as_text=True)
    assert "waits for a maintainer&#39;s approval of aaaaaaa" in page
    assert "an admin of pullre approves that commit" in page


def test_a_stale_form_is_refused_and_the_approval_needs_csrf(
    admin_client: FlaskClient, session: Session
) -> None:
    pull = fork_pull(session)
    token = csrf_token(admin_client, f"/pulls/{pull.id}")
    assert admin_client.post(f"/pulls/{pull.id}/approve", data={"sha": SHA_A}).status_code == 400
    pull.head_sha = SHA_B  # pushed after the page was read
    session.commit()
    response = admin_client.post(
        f"/pulls/{pull.id}/approve",
        data={"csrf_token": token, "sha": SHA_A},
        follow_redirects=True,
    )
    assert "is not the head of #7" in response.get_data(as_text=True)
    assert approved(session, pull) == (None, None)


def test_a_member_sees_no_button_and_gets_403_unless_members_may_approve(
    member_client: FlaskClient, session: Session
) -> None:
    pull = fork_pull(session)
    page = member_client.get(f"/pulls/{pull.id}").get_data(as_text=True)
    assert "until an admin of pullre approves" in page
    assert 'name="sha"' not in page
    token = csrf_token(member_client, f"/pulls/{pull.id}")
    data = {"csrf_token": token, "sha": SHA_A}
    assert member_client.post(f"/pulls/{pull.id}/approve", data=data).status_code == 403
    assert approved(session, pull) == (None, None)

    pull.repository.approvers = Approvers.MEMBERS
    session.commit()
    assert member_client.post(f"/pulls/{pull.id}/approve", data=data).status_code == 302
    assert approved(session, pull) == (SHA_A, "member")


def test_admins_set_trust_and_approvers_on_the_repository_page(
    admin_client: FlaskClient, session: Session
) -> None:
    repo = add_repository(session)
    session.commit()
    form = admin_client.get(f"/repositories/{repo.id}/edit").get_data(as_text=True)
    assert '<option selected value="collaborators">' in form
    token = csrf_token(admin_client, f"/repositories/{repo.id}/edit")
    response = admin_client.post(
        f"/repositories/{repo.id}/edit",
        data={
            "csrf_token": token,
            "full_name": "acme/shop",
            "base_schema": "shop_base",
            "enabled": "y",
            "trust": "everyone",
            "approvers": "members",
            "schedule_id": "",
        },
    )
    assert response.status_code == 302
    session.expire_all()
    assert (repo.trust, repo.approvers) == (Trust.EVERYONE, Approvers.MEMBERS)
    listing = admin_client.get("/repositories/").get_data(as_text=True)
    assert "everyone; admins and members approve" in listing


# --- the API ----------------------------------------------------------------------------------


def test_the_api_approves_the_current_head_only(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    pull = fork_pull(session)
    admin = bearer(session, make_user, Role.ADMIN)
    shown = client.get(f"/api/v1/pulls/{pull.id}", headers=admin).get_json()
    assert shown["approval"] == {
        "from_fork": True,
        "author_association": "CONTRIBUTOR",
        "required": True,
        "awaiting": True,
        "approved_sha": None,
        "approved_by": None,
        "approved_at": None,
    }
    path = f"/api/v1/pulls/{pull.id}/approve"
    assert client.post(path, headers=admin).status_code == 400
    response = client.post(path, headers=admin, json={"sha": SHA_B})
    assert response.status_code == 409
    assert "is not the head of #7" in response.get_json()["error"]
    response = client.post(path, headers=admin, json={"sha": SHA_A})
    assert response.status_code == 202
    assert response.get_json() == {"ok": True, "approved_sha": SHA_A}
    shown = client.get(f"/api/v1/pulls/{pull.id}", headers=admin).get_json()
    assert shown["approval"]["awaiting"] is False
    assert shown["approval"]["approved_by"] == "admin-api"


def test_a_members_token_gets_403_where_only_admins_approve(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    pull = fork_pull(session)
    member = bearer(session, make_user, Role.MEMBER)
    response = client.post(f"/api/v1/pulls/{pull.id}/approve", headers=member, json={"sha": SHA_A})
    assert response.status_code == 403
    assert response.get_json() == {"error": "only an admin of pullre may approve PRs of acme/shop"}
    assert approved(session, pull) == (None, None)


# --- the CLI ----------------------------------------------------------------------------------


def test_the_cli_sets_trust_and_approves_as_a_named_user(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    sessions = make_session_factory(engine)
    with sessions() as session:
        fork_pull(session)
    base = ["--config", str(config)]
    assert cli([*base, "repo", "set", "acme/shop", "--approvers", "members"]) == 0
    assert "an admin or member of pullre may approve" in capsys.readouterr().out
    assert cli([*base, "pull", "approve", "acme/shop", "7", SHA_B, "--by", "admin"]) == 1
    assert "is not the head of #7" in capsys.readouterr().err
    assert cli([*base, "pull", "approve", "acme/shop", "7", SHA_A, "--by", "nobody"]) == 1
    assert "there is no pullre user 'nobody'" in capsys.readouterr().err
    assert cli([*base, "pull", "approve", "acme/shop", "7", SHA_A, "--by", "admin"]) == 0
    assert capsys.readouterr().out == f"approved {SHA_A[:12]} of acme/shop#7 as admin\n"
    assert cli([*base, "repo", "set", "acme/shop", "--trust", "everyone"]) == 0
    with sessions() as session:
        repo = session.scalars(select(Repository)).one()
        assert (repo.trust, repo.approvers) == (Trust.EVERYONE, Approvers.MEMBERS)
        pull = session.scalars(select(PullRequest)).one()
        assert (pull.approved_sha, pull.approved_by) == (SHA_A, "admin")
    engine.dispose()
