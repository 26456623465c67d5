"""The pool admin page and its domain, against moto's real EC2 server and the fault proxy."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre.agent import AGENT_VERSION
from pullre.config import Settings
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2
from pullre.models import (
    Environment,
    EnvironmentStatus,
    Event,
    PullRequest,
    Repository,
    Role,
    Server,
    utcnow,
)
from pullre.servers import registry as servers
from pullre.web import agent_bundle, create_app
from tests.ec2_fixtures import Ec2Sandbox, FaultyEc2
from tests.web_fixtures import MakeUser, csrf_token, log_in, make_settings

_TOKEN = re.compile(r'<code class="token">([^<]+)</code>')


def make_admin(app: Flask, make_user: MakeUser, username: str = "pool-admin") -> FlaskClient:
    app.config["TESTING"] = True
    client = app.test_client()
    log_in(client, make_user(username, Role.ADMIN))
    return client


@pytest.fixture
def pool_admin(
    settings: Settings,
    session_factory: sessionmaker[Session],
    ec2: Ec2Sandbox,
    make_user: MakeUser,
) -> FlaskClient:
    """An admin on an app whose EC2 port is the moto sandbox's adapter."""
    app = create_app(settings, session_factory=session_factory, ec2=lambda: ec2.adapter)
    return make_admin(app, make_user)


def post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf_token(client, "/servers/"), **data})
    return response.status_code, response.get_data(as_text=True)


def register(client: FlaskClient, instance_id: str, url: str, name: str = "") -> str:
    status, page = post(
        client, "/servers/register", instance_id=instance_id, staging_url=url, name=name
    )
    assert status == 200, page
    match = _TOKEN.search(page)
    assert match, page
    return match.group(1)


def add_server(session: Session, instance_id: str, name: str = "stage-1") -> Server:
    server, _ = servers.register_server(session, instance_id, "https://stage.example", name)
    session.commit()
    return server


def hold(session: Session, server: Server, number: int = 7) -> Environment:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    session.flush()
    pull = PullRequest(repository_id=repo.id, number=number, title="t")
    session.add(pull)
    session.flush()
    environment = Environment(
        pull_request_id=pull.id, server_id=server.id, status=EnvironmentStatus.READY
    )
    session.add(environment)
    session.commit()
    return environment


def event_kinds(session: Session) -> list[str]:
    return list(session.scalars(select(Event.kind).order_by(Event.id)))


# --- EC2 listing ------------------------------------------------------------------------------


def test_lists_instances_with_and_without_a_tag_filter(
    pool_admin: FlaskClient, ec2: Ec2Sandbox
) -> None:
    tagged = ec2.create_instances(2, tags={"pool": "staging"})
    [untagged] = ec2.create_instances(1, name_prefix=None)
    page = pool_admin.get("/servers/").get_data(as_text=True)
    assert all(instance_id in page for instance_id in [*tagged, untagged])
    assert "pullre-stage-001" in page  # the Name tag prefills the register form
    filtered = pool_admin.get("/servers/?tag=pool=staging").get_data(as_text=True)
    assert all(instance_id in filtered for instance_id in tagged)
    assert untagged not in filtered
    assert "Key=Value" in pool_admin.get("/servers/?tag=nonsense").get_data(as_text=True)


def test_second_page_follows_the_ec2_next_token(pool_admin: FlaskClient, ec2: Ec2Sandbox) -> None:
    ids = ec2.create_instances(7)
    first = pool_admin.get("/servers/?per_page=5").get_data(as_text=True)
    match = re.search(r'<a class="next" href="([^"]+)"', first)
    assert match
    second = pool_admin.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
    on_first = {i for i in ids if i in first}
    on_second = {i for i in ids if i in second}
    assert (len(on_first), len(on_second)) == (5, 2)
    assert on_first | on_second == set(ids)
    assert 'class="next"' not in second


def test_the_entry_points_factory_builds_the_port_from_aws_settings_on_first_use(
    db_url: str,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    ec2: Ec2Sandbox,
    make_user: MakeUser,
) -> None:
    [instance_id] = ec2.create_instances(1)
    settings = make_settings(db_url, tmp_path, PULLRE_AWS_ENDPOINT_URL=ec2.endpoint_url)
    built: list[Ec2] = []

    def factory() -> Ec2:
        built.append(make_ec2(settings.aws))
        return built[-1]

    app = create_app(settings, session_factory=session_factory, ec2=factory)
    client = make_admin(app, make_user)
    assert not built  # the app starts without AWS
    assert instance_id in client.get("/servers/").get_data(as_text=True)
    assert instance_id in client.get("/servers/").get_data(as_text=True)
    assert len(built) == 1


def test_without_an_ec2_factory_the_servers_page_says_so(
    settings: Settings, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    client = make_admin(create_app(settings, session_factory=session_factory), make_user)
    page = client.get("/servers/")
    assert page.status_code == 200
    assert "started without EC2" in page.get_data(as_text=True)


def test_an_ec2_failure_is_a_message_not_a_500(
    settings: Settings,
    session_factory: sessionmaker[Session],
    faulty_ec2: FaultyEc2,
    make_user: MakeUser,
) -> None:
    adapter = faulty_ec2.adapter_with(max_attempts=1)
    client = make_admin(
        create_app(settings, session_factory=session_factory, ec2=lambda: adapter), make_user
    )
    faulty_ec2.proxy.throttle_next(1, action="DescribeInstances")
    response = client.get("/servers/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Could not list EC2 instances" in page
    assert "RequestLimitExceeded" in page


def test_a_script_in_a_name_tag_is_escaped(pool_admin: FlaskClient, ec2: Ec2Sandbox) -> None:
    ec2.create_instances(1, name_prefix="<script>alert(1)</script>")
    page = pool_admin.get("/servers/").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_members_get_403(member_client: FlaskClient, ec2: Ec2Sandbox, session: Session) -> None:
    [instance_id] = ec2.create_instances(1, stopped=False)
    server = add_server(session, instance_id)
    assert member_client.get("/servers/").status_code == 403
    assert member_client.get("/servers/register").status_code == 403
    token = csrf_token(member_client, "/")  # the logout form's: a valid token for this member
    for action in ("stop", "remove", "token"):
        response = member_client.post(f"/servers/{server.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
    assert ec2.state_of(instance_id) == "running"
    session.expire_all()
    assert (server.in_pool, event_kinds(session)) == (True, ["server.registered"])


# --- registration and tokens -------------------------------------------------------------------


def test_register_shows_the_token_once_and_stores_only_its_hash(
    pool_admin: FlaskClient, ec2: Ec2Sandbox, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    [instance_id] = ec2.create_instances(1)
    token = register(pool_admin, instance_id, "https://stage-1.example", "stage-1")
    server = session.scalars(select(Server)).one()
    assert (server.instance_id, server.name, server.staging_url) == (
        instance_id,
        "stage-1",
        "https://stage-1.example",
    )
    assert server.agent_token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [e.message + str(e.details) for e in session.scalars(select(Event))]
    assert stored
    assert not any(token in text for text in stored)
    listing = pool_admin.get("/servers/").get_data(as_text=True)
    assert token not in listing
    assert "server.registered" in caplog.text
    assert token not in caplog.text
    assert '<a href="https://stage-1.example"' in listing
    assert "registered as stage-1" in listing
    assert servers.find_server_by_token(session, token) == server
    assert servers.find_server_by_token(session, token[:-1] + "x") is None
    assert servers.find_server_by_token(session, "") is None
    assert event_kinds(session) == ["server.registered"]


def test_rotating_invalidates_the_old_token(pool_admin: FlaskClient, session: Session) -> None:
    server = add_server(session, "i-0123456789abcdef0")
    old = servers.rotate_token(session, server)
    session.commit()
    response = pool_admin.post(
        f"/servers/{server.id}/token", data={"csrf_token": csrf_token(pool_admin, "/servers/")}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    match = _TOKEN.search(page)
    assert match
    assert "will not be shown again" in page
    session.expire_all()
    assert servers.find_server_by_token(session, old) is None
    assert servers.find_server_by_token(session, match.group(1)) == server


def test_duplicate_and_invalid_registrations_are_form_errors(
    pool_admin: FlaskClient, session: Session
) -> None:
    add_server(session, "i-0123456789abcdef0")
    status, page = post(
        pool_admin,
        "/servers/register",
        instance_id="i-0123456789abcdef0",
        staging_url="https://x.example",
    )
    assert (status, "i-0123456789abcdef0 is already registered" in page) == (200, True)
    status, page = post(
        pool_admin, "/servers/register", instance_id="i-0aaaaaaaa", staging_url="javascript:x"
    )
    assert (status, "is not an http:// or https:// URL" in page) == (200, True)
    status, page = post(pool_admin, "/servers/register", instance_id="web-1", staging_url="")
    assert "is not an EC2 instance id" in page
    assert "This field is required." in page
    assert session.query(Server).count() == 1


def test_removed_server_is_out_of_the_pool_and_its_token_is_void(
    pool_admin: FlaskClient, session: Session
) -> None:
    server = add_server(session, "i-0123456789abcdef0")
    token = servers.rotate_token(session, server)
    session.commit()
    assert post(pool_admin, f"/servers/{server.id}/remove")[0] == 302
    session.expire_all()
    assert (server.in_pool, servers.find_server_by_token(session, token)) == (False, None)
    # Registering it again brings back the same row with a new token.
    again, new_token = servers.register_server(
        session, "i-0123456789abcdef0", "https://back.example"
    )
    assert (again.id, again.in_pool) == (server.id, True)
    assert servers.find_server_by_token(session, new_token) == again


def test_a_held_server_cannot_be_removed_or_stopped(
    pool_admin: FlaskClient, ec2: Ec2Sandbox, session: Session
) -> None:
    [instance_id] = ec2.create_instances(1, stopped=False)
    server = add_server(session, instance_id)
    hold(session, server)
    listing = pool_admin.get("/servers/").get_data(as_text=True)
    assert "acme/shop#7" in listing
    post(pool_admin, f"/servers/{server.id}/stop")
    assert "held by an active environment" in pool_admin.get("/servers/").get_data(as_text=True)
    assert ec2.state_of(instance_id) == "running"
    post(pool_admin, f"/servers/{server.id}/remove")
    assert "release it first" in pool_admin.get("/servers/").get_data(as_text=True)
    session.expire_all()
    assert server.in_pool


# --- start and stop ---------------------------------------------------------------------------


def test_start_and_stop_change_the_instance_state(
    pool_admin: FlaskClient, ec2: Ec2Sandbox, session: Session
) -> None:
    [instance_id] = ec2.create_instances(1)
    server = add_server(session, instance_id)
    assert post(pool_admin, f"/servers/{server.id}/start")[0] == 302
    assert ec2.state_of(instance_id) == "running"
    assert f"{instance_id} is pending. No PR holds it" in pool_admin.get("/servers/").get_data(
        as_text=True
    )
    post(pool_admin, f"/servers/{server.id}/start")
    assert "already running" in pool_admin.get("/servers/").get_data(as_text=True)
    post(pool_admin, f"/servers/{server.id}/stop")
    assert ec2.state_of(instance_id) == "stopped"
    session.expire_all()
    assert server.observed_state == "stopping"
    assert event_kinds(session) == ["server.registered", "server.start", "server.stop"]


def test_ec2_refusing_a_stop_is_shown_and_recorded(
    settings: Settings,
    session_factory: sessionmaker[Session],
    faulty_ec2: FaultyEc2,
    make_user: MakeUser,
    session: Session,
) -> None:
    adapter = faulty_ec2.adapter_with(max_attempts=1)
    client = make_admin(
        create_app(settings, session_factory=session_factory, ec2=lambda: adapter), make_user
    )
    [instance_id] = faulty_ec2.sandbox.create_instances(1, stopped=False)
    server = add_server(session, instance_id)
    faulty_ec2.proxy.fail_next(1, "IncorrectInstanceState", action="StopInstances")
    assert post(client, f"/servers/{server.id}/stop")[0] == 302
    assert "IncorrectInstanceState" in client.get("/servers/").get_data(as_text=True)
    session.expire_all()
    assert "IncorrectInstanceState" in (server.last_error or "")
    assert event_kinds(session)[-1] == "error"
    assert faulty_ec2.sandbox.state_of(instance_id) == "running"


@pytest.mark.parametrize("state", ["pending", "stopping"])
def test_no_start_or_stop_while_ec2_moves_the_instance(
    session: Session, faulty_ec2: FaultyEc2, state: str
) -> None:
    [instance_id] = faulty_ec2.sandbox.create_instances(1)
    server = add_server(session, instance_id)
    # Moto settles at once; the proxy shows the instance mid-transition to both looks.
    faulty_ec2.proxy.report_state(instance_id, state, times=2)
    for action in (servers.start_server, servers.stop_server):
        with pytest.raises(servers.ServerError, match=f"is {state}; try again"):
            action(session, faulty_ec2.adapter, server)
    assert faulty_ec2.proxy.count("StartInstances") == faulty_ec2.proxy.count("StopInstances") == 0


def test_server_rows_and_heartbeat_age(session: Session) -> None:
    free = add_server(session, "i-0123456789abcdef0", "a-free")
    held = add_server(session, "i-0123456789abcdef1", "b-held")
    held.last_heartbeat = utcnow() - timedelta(minutes=3)
    hold(session, held, number=12)
    rows = servers.server_rows(session)
    assert [(r.server.name, r.held_by, r.environment_status) for r in rows] == [
        ("a-free", None, None),
        ("b-held", "acme/shop#12", "ready"),
    ]
    now = utcnow()
    assert servers.age(free.last_heartbeat, now) == "never"
    assert servers.age(held.last_heartbeat, now) == "3 min ago"
    assert servers.age(now - timedelta(seconds=5), now) == "5 s ago"
    assert servers.age(now - timedelta(days=2, hours=1), now) == "2 d ago"


def test_the_page_shows_each_agents_heartbeat_version_and_deployed_sha(
    pool_admin: FlaskClient, session: Session
) -> None:
    server = add_server(session, "i-0123456789abcdef0", "stage-1")
    server.last_heartbeat = utcnow() - timedelta(minutes=3)
    server.agent_version = "0.1.0"
    server.deployed_sha = "abcdef0123456789abcdef0123456789abcdef01"
    session.commit()
    row = pool_admin.get("/servers/").get_data(as_text=True).split("i-0123456789abcdef0")[1]
    row = row.split("</tr>")[0]
    assert "3 min ago" in row
    assert "0.1.0" in row
    assert "abcdef0" in row


def test_the_page_flags_agents_that_differ_from_the_controllers_bundle(
    pool_admin: FlaskClient, session: Session
) -> None:
    served = agent_bundle.current()
    reported = {
        "i-0aaaaaaaaaaaaaaa1": served.identity,  # runs the bundle this controller serves
        "i-0aaaaaaaaaaaaaaa2": AGENT_VERSION,  # a source tree of the same version
        "i-0aaaaaaaaaaaaaaa3": "0.0.9",  # an older source tree
        "i-0aaaaaaaaaaaaaaa4": f"{AGENT_VERSION}+{'0' * 12}",  # another bundle, same version
    }
    for number, (instance_id, version) in enumerate(reported.items()):
        add_server(session, instance_id, f"box-{number}").agent_version = version
    session.commit()

    flagged = {
        instance_id for instance_id in reported if "outdated" in server_row(pool_admin, instance_id)
    }

    assert flagged == {"i-0aaaaaaaaaaaaaaa3", "i-0aaaaaaaaaaaaaaa4"}
    assert served.identity in server_row(pool_admin, "i-0aaaaaaaaaaaaaaa1")


def test_the_page_says_who_runs_pr_code_and_an_admin_marks_a_dirty_server_clean(
    pool_admin: FlaskClient, session: Session
) -> None:
    server = add_server(session, "i-0123456789abcdef1", "stage-2")
    server.runs_as = "same_user"
    server.dirty_reason = "cannot remove /tmp/x: Device or resource busy"
    session.commit()

    row = server_row(pool_admin, "i-0123456789abcdef1")
    assert "runs PR code as its own user" in row
    assert "dirty" in row
    assert "cannot remove /tmp/x: Device or resource busy" in row
    assert "Mark clean" in row

    status, _ = post(pool_admin, f"/servers/{server.id}/clean")
    assert status == 302
    session.refresh(server)
    assert server.dirty_reason is None
    assert event_kinds(session)[-1] == "server.clean"
    assert "Mark clean" not in server_row(pool_admin, "i-0123456789abcdef1")


def server_row(client: FlaskClient, instance_id: str) -> str:
    rows = client.get("/servers/").get_data(as_text=True).split("<tr>")
    (row,) = [row for row in rows if f"<code>{instance_id}</code>" in row]
    return row


def test_members_cannot_mark_a_server_clean(member_client: FlaskClient, session: Session) -> None:
    server = add_server(session, "i-0123456789abcdef2")
    server.dirty_reason = "left over"
    session.commit()
    token = csrf_token(member_client, "/")
    response = member_client.post(f"/servers/{server.id}/clean", data={"csrf_token": token})
    assert response.status_code == 403
    session.refresh(server)
    assert server.dirty_reason == "left over"


def test_the_page_offers_start_and_stop_only_where_they_can_work(
    pool_admin: FlaskClient, ec2: Ec2Sandbox, session: Session
) -> None:
    running_id, stopped_id, held_id = ec2.create_instances(3, stopped=False)
    ec2.adapter.stop(stopped_id)
    running, stopped = add_server(session, running_id, "a"), add_server(session, stopped_id, "b")
    held = add_server(session, held_id, "c")
    hold(session, held)
    running.observed_state, held.observed_state, stopped.observed_state = (
        "running", "running", "stopped",
    )  # fmt: skip
    session.commit()

    def offered(server: Server) -> set[str]:
        page = pool_admin.get("/servers/").get_data(as_text=True)
        return set(re.findall(rf'action="/servers/{server.id}/(start|stop)"', page))

    assert offered(running) == {"stop"}
    assert offered(stopped) == {"start"}
    assert offered(held) == set()  # running, and its PR's environment keeps it up
    # The server applies the same rule to what EC2 says now: a Start on the running one (a
    # stale page, a script) is refused with the page's words.
    post(pool_admin, f"/servers/{running.id}/start")
    assert f"a ({running_id}) is already running" in pool_admin.get("/servers/").get_data(
        as_text=True
    )
