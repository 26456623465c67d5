"""Repository secrets on the controller: the page (admin only, CSRF, write-only), encryption at
rest, what the assignment carries, and where a value never appears (API, events, pages)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.clock import system_clock
from pullre.models import Environment, EnvironmentStatus, Event, Repository, RepositorySecret
from pullre.secrets import cipher, store
from pullre.servers.registry import register_server
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import MakeUser, csrf_token

SHA = "a" * 40
VALUE = "sk_test_51Hx-the-real-value"
clock = system_clock
SECRET_KEY = "test-secret-key-0123456789"  # what tests.web_fixtures.make_settings sets


def _ready(session: Session) -> tuple[Environment, str]:
    """acme/shop's PR #12, ready on a server; the server's agent token."""
    server, token = register_server(session, "i-00000001", "https://one.example", "one")
    environment = stage_environment(
        session, server, 12, SHA, clone_url="/srv/git/shop.git", status=EnvironmentStatus.READY
    )
    session.commit()
    return environment, token


def _set(client: FlaskClient, repository_id: int, name: str, value: str) -> tuple[int, str]:
    path = f"/repositories/{repository_id}/secrets"
    response = client.post(
        path, data={"csrf_token": csrf_token(client, path), "name": name, "value": value}
    )
    return response.status_code, response.get_data(as_text=True)


def test_an_admin_sets_a_secret_on_the_page_and_never_sees_its_value_again(
    admin_client: FlaskClient, session: Session
) -> None:
    environment, _ = _ready(session)
    repository_id = environment.pull_request.repository_id

    status, _ = _set(admin_client, repository_id, "STRIPE_KEY", VALUE + "\r\n")

    assert status == 302
    page = admin_client.get(f"/repositories/{repository_id}/secrets").get_data(as_text=True)
    assert "STRIPE_KEY" in page
    assert "root-admin" in page  # who set it
    assert VALUE not in page
    row = session.scalars(select(RepositorySecret)).one()
    assert (row.name, row.set_by) == ("STRIPE_KEY", "root-admin")
    # At rest: the raw column holds no trace of the value.
    raw = session.execute(text("SELECT ciphertext FROM repository_secrets")).scalar_one()
    assert VALUE.encode() not in raw
    assert cipher.decrypt(SECRET_KEY, repository_id, "STRIPE_KEY", raw) == VALUE  # CRLF dropped
    # The change asks the ready environment to redeploy and is recorded by name only.
    session.expire_all()
    assert session.get_one(Environment, environment.id).deploy_requested_at is not None
    event = session.scalars(select(Event).where(Event.kind == "secret.set")).one()
    assert "STRIPE_KEY" in event.message
    assert event.details == {"actor": "root-admin", "name": "STRIPE_KEY"}
    everything = " ".join(f"{e.message} {e.details}" for e in session.scalars(select(Event)))
    assert VALUE not in everything
    assert VALUE not in admin_client.get("/events").get_data(as_text=True)


def test_a_refused_name_or_value_is_shown_on_its_field_without_the_value(
    admin_client: FlaskClient, session: Session
) -> None:
    repository = Repository(owner="acme", name="shop")
    session.add(repository)
    session.commit()

    status, page = _set(admin_client, repository.id, "DATABASE_URL", VALUE)
    assert status == 200
    assert "DATABASE_URL is set by pullre itself" in page
    assert VALUE not in page  # the textarea is not filled back in
    status, page = _set(admin_client, repository.id, "1BAD", VALUE)
    assert "is not an environment variable name" in page
    assert VALUE not in page
    status, page = _set(admin_client, repository.id, "GOOD", "with\0nul")
    assert "NUL" in page
    assert session.scalars(select(RepositorySecret)).all() == []


def test_an_admin_removes_a_secret_and_the_environments_redeploy(
    admin_client: FlaskClient, session: Session
) -> None:
    environment, _ = _ready(session)
    repository = environment.pull_request.repository
    store.set_secret(
        session,
        repository,
        "S3_SECRET",
        VALUE,
        actor="x",
        secret_key=SECRET_KEY,
        clock=system_clock,
    )
    environment.deploy_requested_at = None
    session.commit()
    path = f"/repositories/{repository.id}/secrets"

    response = admin_client.post(
        f"{path}/S3_SECRET/remove", data={"csrf_token": csrf_token(admin_client, path)}
    )

    assert response.status_code == 302
    assert session.scalars(select(RepositorySecret)).all() == []
    session.expire_all()
    assert session.get_one(Environment, environment.id).deploy_requested_at is not None
    assert session.scalars(select(Event.kind).where(Event.kind == "secret.removed")).one()


def test_forms_without_csrf_and_members_are_refused(
    admin_client: FlaskClient, member_client: FlaskClient, session: Session
) -> None:
    repository = Repository(owner="acme", name="shop")
    session.add(repository)
    session.commit()
    path = f"/repositories/{repository.id}/secrets"

    assert admin_client.post(path, data={"name": "KEY", "value": VALUE}).status_code == 400
    assert member_client.get(path).status_code == 403
    token = csrf_token(member_client, "/tokens/")  # a member's valid token, from their own page
    data = {"csrf_token": token, "name": "KEY", "value": VALUE}
    assert member_client.post(path, data=data).status_code == 403
    assert member_client.post(f"{path}/KEY/remove", data=data).status_code == 403
    assert session.scalars(select(RepositorySecret)).all() == []


def test_the_assignment_carries_values_but_the_json_api_does_not(
    client: FlaskClient, session: Session, make_user: MakeUser
) -> None:
    environment, agent_token = _ready(session)
    repository = environment.pull_request.repository
    store.set_secret(
        session, repository, "API_KEY", VALUE, actor="x", secret_key=SECRET_KEY, clock=system_clock
    )
    owner = accounts.find_user(session, make_user("ada"))
    assert owner is not None
    _, api_token = api_tokens.create_token(session, owner, "test")
    session.commit()

    answer = client.get("/api/agent/assignment", headers={"Authorization": f"Bearer {agent_token}"})
    assert answer.json is not None
    assert answer.json["assignment"]["secrets"] == {"API_KEY": VALUE}
    assert answer.json["assignment"]["unreadable_secrets"] == []
    for path in ("/api/v1/repositories", "/api/v1/pulls", "/api/v1/events"):
        response = client.get(path, headers={"Authorization": f"Bearer {api_token}"})
        assert response.status_code == 200, path
        assert VALUE not in response.get_data(as_text=True), path


def test_an_approved_fork_pr_runs_without_the_repositorys_secrets(
    client: FlaskClient, session: Session
) -> None:
    environment, agent_token = _ready(session)
    pull = environment.pull_request
    store.set_secret(
        session, pull.repository, "API_KEY", VALUE, actor="x", secret_key=SECRET_KEY,
        clock=system_clock,
    )  # fmt: skip
    pull.from_fork, pull.approved_sha = True, pull.head_sha  # an outsider's code, approved
    session.commit()

    answer = client.get("/api/agent/assignment", headers={"Authorization": f"Bearer {agent_token}"})

    assert answer.json is not None
    assert answer.json["assignment"]["head_sha"] == pull.head_sha  # it runs...
    assert answer.json["assignment"]["secrets"] == {}  # ...without the team's keys
    assert VALUE not in answer.get_data(as_text=True)


def test_a_secret_set_under_another_secret_key_is_named_not_fatal(
    client: FlaskClient, session: Session
) -> None:
    environment, agent_token = _ready(session)
    repository = environment.pull_request.repository
    for name, key in (("OLD_ONE", "the key before rotation"), ("NEW_ONE", SECRET_KEY)):
        store.set_secret(
            session, repository, name, VALUE, actor="x", secret_key=key, clock=system_clock
        )
    session.commit()

    answer = client.get("/api/agent/assignment", headers={"Authorization": f"Bearer {agent_token}"})

    assert answer.status_code == 200
    assert answer.json is not None
    assert answer.json["assignment"]["secrets"] == {"NEW_ONE": VALUE}
    assert answer.json["assignment"]["unreadable_secrets"] == ["OLD_ONE"]


def test_a_ciphertext_is_bound_to_its_repository_and_name() -> None:
    sealed = cipher.encrypt(SECRET_KEY, 1, "API_KEY", VALUE)
    assert cipher.decrypt(SECRET_KEY, 1, "API_KEY", sealed) == VALUE
    for repository_id, name in ((2, "API_KEY"), (1, "OTHER")):
        try:
            cipher.decrypt(SECRET_KEY, repository_id, name, sealed)
        except cipher.Unreadable:
            continue
        raise AssertionError(f"decrypted as {repository_id}/{name}")
    assert cipher.encrypt(SECRET_KEY, 1, "API_KEY", VALUE) != sealed  # a fresh nonce each time


def test_a_secret_of_a_sleeping_or_other_repository_asks_nothing_of_it(session: Session) -> None:
    environment, _ = _ready(session)
    environment.status = EnvironmentStatus.SLEEPING
    other = Repository(owner="acme", name="other")
    session.add(other)
    session.flush()
    asked = store.set_secret(
        session, other, "KEY_1", VALUE, actor="x", secret_key=SECRET_KEY, clock=system_clock
    )
    asked += store.set_secret(
        session,
        environment.pull_request.repository,
        "KEY_2",
        VALUE,
        actor="x",
        secret_key=SECRET_KEY,
        clock=lambda: datetime.now(UTC),
    )
    assert asked == 0
    assert environment.deploy_requested_at is None
