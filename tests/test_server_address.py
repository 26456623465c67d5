"""A pool server's staging URL and app port change after registration, also while a PR holds it
(``server set --url --port`` and the server's admin page), and reach the agent with the server's
next assignment, read through the agent API as a box reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.cli.main import main as cli
from pullre.db import make_engine, make_session_factory
from pullre.environments.deploys import assignment
from pullre.models import Environment, EnvironmentStatus, Event, Server
from pullre.servers.registry import register_server
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import csrf_token

INSTANCE = "i-0123456789abcdef0"
SHA = "c" * 40


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(["--config", str(config), "server", *args])
    out, err = capsys.readouterr()
    return code, out, err


def next_assignment_port(session: Session, server: Server) -> object:
    found = assignment(
        session, server, staging_mysql_url="", secret_key="k", github_api_url="https://api.x"
    )
    assert found is not None
    return found["defaults"]["port"]


def test_server_set_changes_url_and_port_of_a_held_server(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")[0] == 0
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    sessions = make_session_factory(engine)
    with sessions() as session:
        server = session.scalars(select(Server)).one()
        stage_environment(
            session, server, 7, SHA, clone_url="https://x/a.git", status=EnvironmentStatus.READY
        )
        session.commit()
        assert next_assignment_port(session, server) is None  # the box's own default

    code, out, err = run(
        config, capsys, "set", INSTANCE, "--url", "https://pr.stage-1.example", "--port", "3000"
    )
    assert (code, err) == (0, "")
    assert "staging URL https://s1.example → https://pr.stage-1.example" in out
    assert "app port the box's default → 3000" in out
    with sessions() as session:
        server = session.scalars(select(Server)).one()
        assert (server.staging_url, server.app_port) == ("https://pr.stage-1.example", 3000)
        assert next_assignment_port(session, server) == 3000
        held = session.scalars(select(Environment.status)).one()
        assert held is EnvironmentStatus.READY  # still the PR's
        [event] = session.scalars(select(Event).where(Event.kind == "server.address")).all()
        assert event.details["app_port"] == 3000

    assert "address unchanged" in run(config, capsys, "set", INSTANCE, "--port", "3000")[1]
    assert run(config, capsys, "set", INSTANCE, "--default-port")[0] == 0
    with sessions() as session:
        server = session.scalars(select(Server)).one()
        assert next_assignment_port(session, server) is None
        assert server.staging_url == "https://pr.stage-1.example"
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--port", "0"], "is not a port number"),
        (["--port", "70000"], "is not a port number"),
        (["--port", "80x"], "is not a port number"),
        (["--port", "80", "--default-port"], "not allowed with argument"),
    ],
)
def test_server_set_refuses_bad_ports(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    with pytest.raises(SystemExit) as exited:
        run(config, capsys, "set", INSTANCE, *args)
    assert exited.value.code == 2
    assert error in capsys.readouterr().err


def test_server_set_refuses_a_bad_url_and_an_outside_server(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    code, _, err = run(config, capsys, "set", INSTANCE, "--url", "javascript:alert(1)")
    assert (code, err) == (1, "pullre: 'javascript:alert(1)' is not an http:// or https:// URL\n")
    lab = "i-0aaaaaaaaaaaaaaa1"
    assert run(config, capsys, "outside", lab, "--name", "lab")[0] == 0
    code, _, err = run(config, capsys, "set", lab, "--port", "3000")
    assert code == 1
    assert "outside the pool" in err


# -- the server's admin page ------------------------------------------------------------------


def post(client: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    response = client.post(path, data={"csrf_token": csrf_token(client, path), **data})
    return response.status_code, response.get_data(as_text=True)


def test_the_page_edits_url_and_port_of_a_held_server(
    admin_client: FlaskClient, session: Session
) -> None:
    server, token = register_server(session, INSTANCE, "https://s1.example", "stage-1")
    stage_environment(
        session, server, 7, SHA, clone_url="https://x/a.git", status=EnvironmentStatus.READY
    )
    session.commit()
    path = f"/servers/{server.id}/edit"
    page = admin_client.get(path).get_data(as_text=True)
    assert re.search(r'name="staging_url"[^>]*value="https://s1.example"', page)
    assert re.search(r'name="app_port"[^>]*value=""', page)

    status, _ = post(
        admin_client,
        path,
        name="stage-1",
        hourly_price="",
        staging_url="https://pr.stage-1.example",
        app_port="3000",
    )
    assert status == 302
    session.refresh(server)
    assert (server.staging_url, server.app_port) == ("https://pr.stage-1.example", 3000)
    flashed = admin_client.get("/servers/").get_data(as_text=True)
    assert "applies at its next assignment" in flashed
    assert "https://pr.stage-1.example" in flashed
    # The box reads its next assignment through the agent API with its token.
    answer = admin_client.get("/api/agent/assignment", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json is not None
    assert answer.json["assignment"]["defaults"]["port"] == 3000

    status, _ = post(
        admin_client, path, name="stage-1", hourly_price="", staging_url=server.staging_url,
        app_port="",
    )  # fmt: skip
    assert status == 302
    session.refresh(server)
    assert server.app_port is None


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("staging_url", "", "is not an http:// or https:// URL"),
        ("staging_url", "javascript:alert(1)", "is not an http:// or https:// URL"),
        ("app_port", "65536", "is not a port number"),
        ("app_port", "-1", "is not a port number"),
    ],
)
def test_bad_url_or_port_is_a_form_error(
    admin_client: FlaskClient, session: Session, field: str, value: str, error: str
) -> None:
    server, _ = register_server(session, INSTANCE, "https://s1.example", "stage-1")
    session.commit()
    data = {"name": "stage-1", "hourly_price": "", "staging_url": "https://s2.example"}
    status, page = post(admin_client, f"/servers/{server.id}/edit", **{**data, field: value})
    assert status == 200
    assert error in page
    session.refresh(server)
    assert (server.staging_url, server.app_port) == ("https://s1.example", None)


def test_posting_without_a_csrf_token_changes_nothing(
    admin_client: FlaskClient, session: Session
) -> None:
    server, _ = register_server(session, INSTANCE, "https://s1.example", "stage-1")
    session.commit()
    response = admin_client.post(
        f"/servers/{server.id}/edit",
        data={"name": "x", "hourly_price": "", "staging_url": "https://evil.example"},
    )
    assert response.status_code in (400, 403)
    session.refresh(server)
    assert server.staging_url == "https://s1.example"
