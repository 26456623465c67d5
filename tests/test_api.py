"""``/api/v1``: bearer tokens only, the owner's role per endpoint, JSON answers and errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from pullre import events
from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.models import (
    ApiToken,
    DeployStep,
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    PullRequestState,
    Repository,
    Role,
    Server,
    StepStatus,
    User,
)
from tests.statement_count import counted_statements
from tests.web_fixtures import MakeUser

SHA = "a" * 40
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Token = Callable[..., str]


@pytest.fixture
def token(session: Session, make_user: MakeUser) -> Token:
    """A token of a new user with the given role: ``token(Role.ADMIN, username="ada")``."""

    def make(role: Role = Role.MEMBER, username: str | None = None) -> str:
        name = make_user(
            username or f"{role.value}-{len(session.scalars(select(User)).all())}", role
        )
        owner = accounts.find_user(session, name)
        assert owner is not None
        _, secret = api_tokens.create_token(session, owner, "test")
        session.commit()
        return secret

    return make


def get(client: FlaskClient, path: str, secret: str) -> TestResponse:
    return client.get(path, headers={"Authorization": f"Bearer {secret}"})


def post(client: FlaskClient, path: str, secret: str) -> TestResponse:
    return client.post(path, headers={"Authorization": f"Bearer {secret}"})


class World:
    """Repositories, servers and PRs in the states the dashboard shows."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.repos: dict[str, Repository] = {}
        self.servers = 0

    def repo(self, full_name: str = "acme/shop") -> Repository:
        if full_name not in self.repos:
            owner, name = full_name.split("/")
            repo = Repository(owner=owner, name=name, base_schema="shop_base")
            self.session.add(repo)
            self.session.flush()
            self.repos[full_name] = repo
        return self.repos[full_name]

    def pull(
        self,
        number: int,
        status: EnvironmentStatus | None = None,
        *,
        repo: str = "acme/shop",
        queued_at: datetime = T0,
    ) -> PullRequest:
        pull = PullRequest(
            repository_id=self.repo(repo).id,
            number=number,
            title=f"PR {number}",
            author_login="alice",
            head_ref=f"feature-{number}",
            head_sha=SHA,
        )
        self.session.add(pull)
        self.session.flush()
        if status is not None:
            server = None
            if status is not EnvironmentStatus.QUEUED:
                self.servers += 1
                server = Server(
                    instance_id=f"i-{self.servers:08x}",
                    name=f"stage-{self.servers}",
                    staging_url=f"https://stage-{self.servers}.example",
                )
                self.session.add(server)
                self.session.flush()
            ready = status is EnvironmentStatus.READY
            self.session.add(
                Environment(
                    pull_request_id=pull.id,
                    server_id=server.id if server else None,
                    status=status,
                    schema_name=None if server is None else f"pr_1_{number}",
                    queued_at=queued_at,
                    deployed_sha=SHA if ready else None,
                    deployed_at=T0 if ready else None,
                    last_error="migrate failed: boom"
                    if status is EnvironmentStatus.FAILED
                    else None,
                )
            )
        self.session.commit()
        return pull


@pytest.fixture
def world(session: Session) -> World:
    return World(session)


# --- authentication --------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_401(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    pull = world.pull(1, EnvironmentStatus.READY)
    revoked, inactive = token(username="revoked"), token(username="inactive")
    found = session.scalars(select(ApiToken).join(User).where(User.username == "revoked"))
    api_tokens.revoke_token(session, found.one(), actor="test")
    session.execute(User.__table__.update().where(User.username == "inactive").values(active=False))
    session.commit()
    attempts: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer pullre_unknown"},
        {"Authorization": f"Basic {revoked}"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"Bearer {inactive}"},
    ]
    for headers in attempts:
        for method, path in (
            ("GET", "/api/v1/pulls"),
            ("POST", f"/api/v1/pulls/{pull.id}/redeploy"),
        ):
            response = client.open(path, method=method, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert "API token" in response.json["error"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert session.scalars(select(Environment.deploy_requested_at)).one() is None


def test_a_logged_in_browser_session_does_not_count(
    admin_client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    pull = world.pull(1, EnvironmentStatus.READY)
    for method, path in (
        ("GET", "/api/v1/pulls"),
        ("GET", "/api/v1/servers"),
        ("POST", f"/api/v1/pulls/{pull.id}/release"),
    ):
        response = admin_client.open(path, method=method)
        assert response.status_code == 401, path
        assert "error" in response.json
        assert "Set-Cookie" not in response.headers
    session.refresh(pull)
    assert not pull.parked
    # With a member's token, the admin's cookie adds nothing: the token's role decides.
    assert get(admin_client, "/api/v1/servers", token(Role.MEMBER)).status_code == 403
    assert admin_client.get("/").status_code == 200  # the browser session itself still works


def test_the_token_acts_with_its_owners_current_role(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    pull = world.pull(1, EnvironmentStatus.READY)
    member, admin = token(Role.MEMBER), token(Role.ADMIN, username="ada")
    response = get(client, "/api/v1/servers", member)
    assert (response.status_code, response.json) == (403, {"error": "this needs an admin's token"})
    assert get(client, "/api/v1/servers", admin).status_code == 200
    for action in ("release", "unpark"):
        assert post(client, f"/api/v1/pulls/{pull.id}/{action}", member).status_code == 403
    session.refresh(pull)
    assert not pull.parked
    for path in (
        "/api/v1/pulls",
        f"/api/v1/pulls/{pull.id}",
        "/api/v1/repositories",
        "/api/v1/events",
    ):
        assert get(client, path, member).status_code == 200, path
    assert post(client, f"/api/v1/pulls/{pull.id}/redeploy", member).status_code == 202

    session.execute(User.__table__.update().where(User.username == "ada").values(role="member"))
    session.commit()
    assert get(client, "/api/v1/servers", admin).status_code == 403


# --- pulls -----------------------------------------------------------------------------------


def test_pulls_list_shows_each_open_pr_with_its_environment(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    ready = world.pull(1, EnvironmentStatus.READY)
    world.pull(2, EnvironmentStatus.QUEUED, queued_at=T0 + timedelta(minutes=2))
    world.pull(3, EnvironmentStatus.QUEUED, queued_at=T0 + timedelta(minutes=1))
    world.pull(4, EnvironmentStatus.FAILED)
    world.pull(5)
    closed = world.pull(6, EnvironmentStatus.READY)
    closed.state = PullRequestState.MERGED
    world.pull(1, EnvironmentStatus.READY, repo="acme/blog")
    session.commit()

    body = get(client, "/api/v1/pulls", token()).json
    assert (body["page"], body["per_page"], body["total"]) == (1, 50, 6)
    items = body["items"]
    assert [(i["repository"], i["number"]) for i in items] == [
        ("acme/shop", 1), ("acme/shop", 2), ("acme/shop", 3), ("acme/shop", 4), ("acme/shop", 5),
        ("acme/blog", 1),
    ]  # fmt: skip
    assert items[0] == {
        "id": ready.id,
        "repository": "acme/shop",
        "number": 1,
        "title": "PR 1",
        "author": "alice",
        "head_ref": "feature-1",
        "head_sha": SHA,
        "state": "open",
        "parked": False,
        "environment": {
            "status": "ready",
            "server": "stage-1",
            "url": "https://stage-1.example",
            "queue_position": None,
            "schema": "pr_1_1",
            "deployed_sha": SHA,
            "deployed_at": "2024-05-01T12:00:00+00:00",
            "last_error": None,
        },
        "smoke": None,
        "approval": {
            "from_fork": False,
            "author_association": None,
            "required": False,
            "awaiting": False,
            "approved_sha": None,
            "approved_by": None,
            "approved_at": None,
        },
        "sleep": None,
        "pin": None,
        "expires_at": None,
        "cost": {
            "hours": 0.0,
            "amount": "0.0000",
            "unpriced_hours": 0.0,
            "currency": "USD",
            "running_since": None,
        },
    }
    by_number = {i["number"]: i["environment"] for i in items if i["repository"] == "acme/shop"}
    assert (by_number[2]["queue_position"], by_number[3]["queue_position"]) == (2, 1)
    assert by_number[2]["server"] is None
    assert by_number[4]["last_error"] == "migrate failed: boom"
    assert by_number[5] is None


def test_pulls_filters_and_pages(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    for number in range(1, 8):
        world.pull(number, EnvironmentStatus.READY if number % 2 else EnvironmentStatus.QUEUED)
    world.pull(3, EnvironmentStatus.READY, repo="acme/blog")
    world.pull(9, repo="acme/blog")
    secret = token()

    def numbers(query: str) -> tuple[list[tuple[str, int]], int]:
        body = get(client, f"/api/v1/pulls?{query}", secret).json
        return [(i["repository"].split("/")[1], i["number"]) for i in body["items"]], body["total"]

    assert numbers("status=ready") == (
        [("shop", 1), ("shop", 3), ("shop", 5), ("shop", 7), ("blog", 3)],
        5,
    )
    assert numbers("repository=acme/blog") == ([("blog", 3), ("blog", 9)], 2)
    assert numbers("repository=acme/blog&status=ready") == ([("blog", 3)], 1)
    assert numbers("status=none") == ([("blog", 9)], 1)
    assert numbers("repository=acme/other") == ([], 0)
    assert numbers("status=queued&per_page=2") == ([("shop", 2), ("shop", 4)], 3)
    assert numbers("status=queued&per_page=2&page=2") == ([("shop", 6)], 3)
    assert numbers("status=queued&per_page=2&page=3") == ([], 3)
    body = get(client, "/api/v1/pulls?per_page=5000", secret).json
    assert (body["per_page"], body["total"], len(body["items"])) == (200, 9, 9)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=bogus", "'status' must be one of queued, provisioning, deploying, ready"),
        ("status=released", "'status' must be one of"),
        ("repository=no-slash", "'repository'"),
        ("page=0", "'page' must be a whole number from 1"),
        ("page=two", "'page'"),
        ("per_page=-3", "'per_page'"),
        ("page=%C2%B2", "'page'"),
    ],
)
def test_bad_list_parameters_are_400(
    client: FlaskClient, token: Token, query: str, message: str
) -> None:
    response = get(client, f"/api/v1/pulls?{query}", token())
    assert response.status_code == 400
    assert message in response.json["error"]


def test_the_list_costs_the_same_queries_whatever_the_count(
    client: FlaskClient, engine: Engine, token: Token, world: World
) -> None:
    secret = token()
    kinds = (EnvironmentStatus.READY, EnvironmentStatus.QUEUED, None)
    counts = []
    for first, count in ((1, 3), (100, 40)):
        for number in range(first, first + count):
            world.pull(number, kinds[number % 3], repo=f"acme/r{number % 4}")
        get(client, "/api/v1/pulls?per_page=200", secret)  # the token's last use is written here
        with counted_statements(engine) as statements:
            body = get(client, "/api/v1/pulls?per_page=200", secret).json
        assert len(body["items"]) == body["total"]
        # SAVEPOINTs are the test's rolled-back transaction, not the endpoint's work.
        counts.append(sum(1 for sql in statements if sql.lstrip().upper().startswith("SELECT")))
    assert counts[0] == counts[1], counts
    # the token, the count, the page, its environments, their smoke results, the queue, costs
    assert counts[0] <= 7


def test_one_pull_with_its_latest_deploy_and_events(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    pull = world.pull(7, EnvironmentStatus.FAILED)
    env = session.scalars(select(Environment)).one()
    moments = iter(T0 + timedelta(seconds=s) for s in range(100))
    for step, status, log in (
        ("fetch", StepStatus.OK, "old deploy"),
        ("migrate", StepStatus.OK, "old"),
        ("fetch", StepStatus.RUNNING, ""),
        ("fetch", StepStatus.OK, "fetched"),
        ("migrate", StepStatus.FAILED, "ERROR 1064"),
    ):
        session.add(
            DeployStep(
                environment_id=env.id,
                head_sha=SHA,
                step=step,
                status=status,
                log_tail=log,
                reported_at=next(moments),
            )
        )
    for n in range(60):
        events.record(session, "note", f"event {n}", pull_request=pull)
    other = world.pull(8, EnvironmentStatus.READY)
    events.record(session, "note", "someone else's", pull_request=other)
    session.commit()

    body = get(client, f"/api/v1/pulls/{pull.id}", token()).json
    assert (body["number"], body["environment"]["status"]) == (7, "failed")
    assert [(s["step"], s["status"], s["log_tail"]) for s in body["deploy_steps"]] == [
        ("fetch", "running", ""),
        ("fetch", "ok", "fetched"),
        ("migrate", "failed", "ERROR 1064"),
    ]
    assert body["deploy_steps"][0]["reported_at"] == "2024-05-01T12:00:02+00:00"
    assert len(body["events"]) == 50
    assert body["events"][0]["message"] == "event 59"
    assert body["events"][-1]["message"] == "event 10"
    assert {e["pull_id"] for e in body["events"]} == {pull.id}

    # Released, the PR shows no environment but still its last deploy.
    env.status = EnvironmentStatus.RELEASED
    pull.state = PullRequestState.CLOSED
    session.commit()
    body = get(client, f"/api/v1/pulls/{pull.id}", token()).json
    assert (body["state"], body["environment"]) == ("closed", None)
    assert [s["step"] for s in body["deploy_steps"]] == ["fetch", "fetch", "migrate"]


def test_unknown_ids_paths_and_methods_answer_json(
    client: FlaskClient, token: Token, world: World
) -> None:
    secret = token(Role.ADMIN)
    pull = world.pull(1, EnvironmentStatus.READY)
    for method, path in (
        ("GET", "/api/v1/pulls/999999"),
        ("POST", "/api/v1/pulls/999999/redeploy"),
        ("POST", "/api/v1/pulls/999999/release"),
        ("GET", "/api/v1/nothing-here"),
    ):
        response = client.open(path, method=method, headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 404, path
        assert set(response.json) == {"error"}
    assert get(client, f"/api/v1/pulls/{pull.id}/redeploy", secret).status_code == 405
    for headers in ({"Authorization": f"Bearer {secret}"}, {}):
        response = client.delete("/api/v1/pulls", headers=headers)
        assert response.status_code == 405
        assert response.json == {"error": "The method is not allowed for the requested URL."}


# --- actions ---------------------------------------------------------------------------------


def test_actions_record_intent_as_the_tokens_owner(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    ready = world.pull(1, EnvironmentStatus.READY)
    queued = world.pull(2, EnvironmentStatus.QUEUED)
    member, admin = token(Role.MEMBER, username="mia"), token(Role.ADMIN, username="ada")

    response = post(client, f"/api/v1/pulls/{ready.id}/redeploy", member)
    assert (response.status_code, response.json) == (202, {"ok": True})
    env = session.scalars(select(Environment).where(Environment.pull_request_id == ready.id)).one()
    session.refresh(env)
    assert env.deploy_requested_at is not None
    logged = session.scalars(select(Event).where(Event.kind == "redeploy")).one()
    assert logged.details["actor"] == "mia"

    response = post(client, f"/api/v1/pulls/{ready.id}/reset-data", member)
    assert response.status_code == 202
    session.refresh(env)
    assert env.schema_ready_at is None

    refused = post(client, f"/api/v1/pulls/{queued.id}/redeploy", member)
    assert (refused.status_code, refused.json) == (
        409,
        {"error": "#2 has no server to redeploy on"},
    )
    refused = post(client, f"/api/v1/pulls/{queued.id}/reset-data", member)
    assert (refused.status_code, refused.json) == (409, {"error": "#2 has no schema to reset"})

    assert post(client, f"/api/v1/pulls/{ready.id}/release", admin).status_code == 202
    session.refresh(ready)
    session.refresh(env)
    assert (ready.parked, env.status) == (True, EnvironmentStatus.RELEASING)
    again = post(client, f"/api/v1/pulls/{ready.id}/release", admin)
    assert (again.status_code, again.json) == (409, {"error": "#1 is already released"})
    assert post(client, f"/api/v1/pulls/{ready.id}/unpark", admin).status_code == 202
    session.refresh(ready)
    assert not ready.parked
    assert post(client, f"/api/v1/pulls/{ready.id}/unpark", admin).status_code == 409
    actors = session.scalars(
        select(Event.details).where(Event.kind.in_(["release", "unpark"])).order_by(Event.id)
    )
    assert [d["actor"] for d in actors] == ["ada", "ada"]


# --- servers, repositories, events -----------------------------------------------------------


def test_servers_show_state_holder_and_heartbeat(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    pull = world.pull(4, EnvironmentStatus.READY)
    held = session.scalars(select(Server)).one()
    held.observed_state, held.last_heartbeat, held.deployed_sha = "running", T0, SHA
    session.add(Server(instance_id="i-0000ffff", name="spare", observed_state="stopped"))
    session.add(Server(instance_id="i-0000eeee", name="gone", in_pool=False))
    session.commit()
    items = get(client, "/api/v1/servers", token(Role.ADMIN)).json["items"]
    assert [(s["name"], s["state"], s["held_by"]) for s in items] == [
        ("spare", "stopped", None),
        ("stage-1", "running", f"acme/shop#{pull.number}"),
    ]
    assert items[1]["last_heartbeat"] == "2024-05-01T12:00:00+00:00"
    assert (items[1]["deployed_sha"], items[1]["environment_status"]) == (SHA, "ready")


def test_repositories_list(client: FlaskClient, session: Session, token: Token) -> None:
    session.add(
        Repository(owner="acme", name="shop", base_schema="shop_base", required_label="stage")
    )
    session.add(Repository(owner="acme", name="blog", enabled=False))
    session.commit()
    items = get(client, "/api/v1/repositories", token()).json["items"]
    assert [
        (r["repository"], r["enabled"], r["base_schema"], r["required_label"]) for r in items
    ] == [
        ("acme/blog", False, None, None),
        ("acme/shop", True, "shop_base", "stage"),
    ]


def test_events_filter_and_page_newest_first(
    client: FlaskClient, session: Session, token: Token, world: World
) -> None:
    one, two = world.pull(1), world.pull(2)
    server = Server(instance_id="i-0000abcd", name="s")
    session.add(server)
    session.flush()
    for n in range(5):
        events.record(session, "deploying", f"one {n}", pull_request=one)
    events.record(session, "ready", "two ready", pull_request=two, server=server)
    session.commit()
    secret = token()

    def messages(query: str) -> tuple[list[str], int]:
        body = get(client, f"/api/v1/events?{query}", secret).json
        return [e["message"] for e in body["items"]], body["total"]

    assert messages(f"pull={one.id}&per_page=2") == (["one 4", "one 3"], 5)
    assert messages(f"pull={one.id}&per_page=2&page=3") == (["one 0"], 5)
    assert messages("kind=ready") == (["two ready"], 1)
    assert messages(f"server={server.id}") == (["two ready"], 1)
    assert messages(f"kind=deploying&pull={two.id}") == ([], 0)
    for bad in ("pull=abc", "server=-1", "page=0"):
        response = get(client, f"/api/v1/events?{bad}", secret)
        assert response.status_code == 400, bad
        assert "error" in response.json
