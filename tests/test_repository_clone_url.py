"""The repository form's clone URL: saved as typed (blank: GitHub's address), checked like the
CLI's ``--clone-url``, and what the next assignment hands to the agent."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.models import Event, Repository
from tests.test_admin_pages import post


def test_the_form_saves_a_clone_url_and_blank_goes_back_to_github(
    admin_client: FlaskClient, session: Session
) -> None:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    session.commit()
    path = f"/repositories/{repo.id}/edit"

    status, _ = post(
        admin_client, path, full_name="acme/shop", clone_url=" git@github.com:acme/shop.git "
    )
    assert status == 302
    session.refresh(repo)
    assert repo.clone_url == "git@github.com:acme/shop.git"
    saved = session.scalars(select(Event).where(Event.kind == "repository.saved")).all()
    assert saved[-1].details["clone_url"] == "git@github.com:acme/shop.git"

    assert post(admin_client, path, full_name="acme/shop", clone_url="")[0] == 302
    session.refresh(repo)
    assert repo.clone_url is None


def test_the_form_refuses_what_git_should_never_be_given(
    admin_client: FlaskClient, session: Session
) -> None:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    session.commit()
    for bad in ("ext::sh -c touch% /tmp/x", "-uhttps://x", "https://me:pw@github.com/a/b.git"):
        status, page = post(
            admin_client, f"/repositories/{repo.id}/edit", full_name="acme/shop", clone_url=bad
        )
        assert status == 200, bad
        assert "https://host/OWNER/NAME.git" in page or "must not hold a password" in page
        session.refresh(repo)
        assert repo.clone_url is None
