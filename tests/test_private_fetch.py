"""Private code: the agent fetches a repository that wants a token with the GitHub App token the
real controller minted for it, and nothing else gets in.

The controller is the Flask app in cheroot with ``[github]`` set to an App on the GitHub
stand-in; the repository is served over smart HTTP by ``git http-backend`` behind a check that
the presented token is one the stand-in granted for that repository, unexpired. Its clone URL is
set with ``repo set --clone-url`` as the README says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cheroot import wsgi
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pullre import migrate
from pullre.agent.fetch_auth import basic_credentials
from pullre.cli.main import main as cli
from pullre.config import Settings, load_settings
from pullre.db import make_engine, make_session_factory
from pullre.github.adapter import make_github
from pullre.github.standin.server import GitHubStandIn
from pullre.models import DeployStep, Environment, EnvironmentStatus
from pullre.web import create_app
from tests import private_git
from tests.agent_fixtures import (
    Agent,
    AssignPr,
    FakeController,
    MakeAgent,
    OriginRepo,
    assign_on_controller,
    same_user_settings,
)
from tests.test_github import make_app_key


@dataclass
class AppController:
    url: str
    ini: Path
    settings: Settings
    sessions: sessionmaker[Session]
    standin: GitHubStandIn
    client: FlaskClient


@pytest.fixture
def app_controller(github_standin: GitHubStandIn, tmp_path: Path) -> Iterator[AppController]:
    """The controller in cheroot, ``[github]`` a GitHub App installed on acme/shop."""
    key_file, public_pem = make_app_key(tmp_path)
    github_standin.register_app(42, public_pem, installation_id=7)
    github_standin.create_repo("acme", "shop")
    database_url = f"sqlite:///{tmp_path / 'controller.db'}"
    migrate.upgrade(database_url)
    ini = tmp_path / "app.ini"
    ini.write_text(
        f"[controller]\ndatabase_url = {database_url}\n"
        "secret_key = test-secret-key-0123456789\n"
        f"secret_key_file = {tmp_path / 'secret.key'}\n"
        f"[github]\napi_url = {github_standin.url}\napp_id = 42\n"
        f"app_private_key_file = {key_file}\ninstallation_id = 7\n"
    )
    settings = load_settings(ini, environ={})
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    app = create_app(
        settings, session_factory=sessions, github=lambda: make_github(settings.github)
    )
    server = wsgi.Server(("127.0.0.1", 0), app)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr
    yield AppController(
        f"http://{host}:{port}", ini, settings, sessions, github_standin, app.test_client()
    )
    server.stop()
    thread.join(timeout=5)
    engine.dispose()


@pytest.fixture
def private_server(
    tmp_path: Path, github_standin: GitHubStandIn
) -> Iterator[private_git.PrivateGitServer]:
    """Reads only with a token the stand-in granted for the repository, unexpired."""

    def may_read(token: str, full_name: str) -> bool:
        grants = [g for g in github_standin.token_grants if g.token == token]
        return any(g.can_read(full_name) for g in grants)

    (tmp_path / "served").mkdir()
    yield from private_git.serve(tmp_path / "served", may_read)


def set_clone_url(controller: AppController, url: str) -> None:
    assert (
        cli(["repo", "set", "acme/shop", "--clone-url", url, "--config", str(controller.ini)]) == 0
    )


def everything_under(directory: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )


def test_the_agent_fetches_private_code_with_the_token_the_controller_minted(
    app_controller: AppController,
    private_server: private_git.PrivateGitServer,
    git_origin: OriginRepo,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    make_agent: MakeAgent,
) -> None:
    caplog.set_level(logging.DEBUG)
    sha = git_origin.commit({"README": "private\n"})
    git_origin.open_pr(5, sha)
    assigned = assign_on_controller(
        app_controller.sessions, git_origin, 5, sha, instance_id="i-0000005a"
    )
    set_clone_url(app_controller, private_server.publish("acme", "shop", git_origin.path / ".git"))
    workdir = tmp_path / "agent"
    agent = make_agent(same_user_settings(app_controller.url, assigned.token, workdir), {})

    assert agent.run() == 0
    assert agent.get(git_origin.port) == f"ok {sha}"

    (grant,) = app_controller.standin.token_grants
    assert grant.requested == {"repositories": ["shop"], "permissions": {"contents": "read"}}
    assert grant.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    token = grant.token
    assert token in private_server.tokens_presented()
    assert all(seen.accepted for seen in private_server.seen if seen.token == token)
    # While git fetched, no process on the machine had the token in its command line...
    assert any(seen.fetching_argv for seen in private_server.seen), "the scan saw git fetching"
    assert all(seen.argv_with_token == () for seen in private_server.seen)
    # ...and it is in no file of the agent's, no step report and no log line.
    for secret in (token, basic_credentials(token)):
        assert secret.encode() not in everything_under(workdir)
        assert secret not in caplog.text
    with app_controller.sessions() as session:
        logs = session.scalars(
            select(DeployStep.log_tail).where(DeployStep.environment_id == assigned.environment_id)
        ).all()
        assert logs
        assert not any(token in log for log in logs)
        assert (
            session.get_one(Environment, assigned.environment_id).status is EnvironmentStatus.READY
        )

    # The next passes ask again (nothing to deploy): the held token is reused, none is minted.
    assert agent.run() == 0
    assert len(app_controller.standin.token_grants) == 1


def test_an_expired_token_fails_the_fetch_step_clearly(
    app_controller: AppController,
    private_server: private_git.PrivateGitServer,
    git_origin: OriginRepo,
    tmp_path: Path,
    make_agent: MakeAgent,
) -> None:
    app_controller.standin.set_token_lifetime(7, timedelta(seconds=-30))  # expired when minted
    sha = git_origin.commit({"README": "private\n"})
    git_origin.open_pr(6, sha)
    assigned = assign_on_controller(
        app_controller.sessions, git_origin, 6, sha, instance_id="i-0000006a"
    )
    set_clone_url(app_controller, private_server.publish("acme", "shop", git_origin.path / ".git"))
    agent = make_agent(
        same_user_settings(app_controller.url, assigned.token, tmp_path / "agent"), {}
    )

    agent.run()

    assert not agent.answers(git_origin.port)
    token = app_controller.standin.token_grants[-1].token
    assert token in private_server.tokens_presented()
    with app_controller.sessions() as session:
        environment = session.get_one(Environment, assigned.environment_id)
        assert environment.status is EnvironmentStatus.FAILED
        assert environment.last_error is not None
        assert environment.last_error.startswith("fetch failed")
        assert "refused the fetch token" in environment.last_error
        assert token not in environment.last_error


def test_no_token_or_a_wrong_one_fails_the_fetch_step_and_says_what_to_configure(
    fake_controller: FakeController,
    assign_pr: AssignPr,
    agent: Agent,
    private_server: private_git.PrivateGitServer,
    git_origin: OriginRepo,
) -> None:
    url = private_server.publish("acme", "shop", git_origin.path / ".git")
    assign_pr(3, {"README": "x\n"}, clone_url=url)

    agent.run()

    assert ("fetch", "failed") in fake_controller.steps()
    log = fake_controller.step_log("fetch", "failed")
    assert "gave no fetch token" in log
    assert "--clone-url" in log
    assert private_server.tokens_presented() == {None}

    wrong = "ghs_" + "W" * 36
    fake_controller.clear()
    fake_controller.assignment = dict(
        fake_controller.assignment or {},
        fetch_token={"token": wrong, "expires_at": "2030-01-01T00:00:00+00:00"},
        head_sha=git_origin.commit({"README": "y\n"}),
    )
    git_origin.open_pr(3, fake_controller.assignment["head_sha"])
    agent.run()

    log = fake_controller.step_log("fetch", "failed")
    assert "refused the fetch token" in log
    assert wrong in private_server.tokens_presented()
    assert wrong not in str(fake_controller.requests)
    assert all(seen.argv_with_token == () for seen in private_server.seen)


def test_repo_set_clone_url_takes_effect_on_the_next_assignment(
    app_controller: AppController, git_origin: OriginRepo
) -> None:
    sha = git_origin.commit({"README": "z\n"})
    assigned = assign_on_controller(
        app_controller.sessions, git_origin, 8, sha, instance_id="i-0000008a"
    )
    headers = {"Authorization": f"Bearer {assigned.token}"}

    def ask() -> tuple[dict[str, object], str]:
        answer = app_controller.client.get("/api/agent/assignment", headers=headers).json
        assert answer is not None
        return answer["assignment"], answer["digest"]

    found, digest = ask()
    assert found["clone_url"] == str(git_origin.path)
    assert found["fetch_token"] is None, "a local path never gets a GitHub token"

    github_url = app_controller.settings.github.api_url + "/acme/shop.git"
    set_clone_url(app_controller, github_url)
    found, changed = ask()
    assert found["clone_url"] == github_url
    assert changed != digest
    token = found["fetch_token"]
    assert isinstance(token, dict)
    assert set(token) == {"token", "expires_at"}
    again, same = ask()
    assert (again["fetch_token"], same) == (token, changed), "reused, and no news to an agent"
    assert len(app_controller.standin.token_grants) == 1

    set_clone_url(app_controller, "git@github.com:acme/shop.git")
    found, _ = ask()
    assert (found["clone_url"], found["fetch_token"]) == ("git@github.com:acme/shop.git", None)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/x",
        "--upload-pack=touch /tmp/x",
        "https://u:pw@github.com/a/b.git",
        "git@-oProxyCommand=x:a/b",
        "ftp://example.com/a.git",
        "https://host/a b",
    ],
)
def test_repo_set_refuses_what_git_should_never_be_given(
    app_controller: AppController, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["repo", "set", "acme/shop", "--clone-url", url, "--config", str(app_controller.ini)])
    assert exited.value.code == 2
    assert "--clone-url" in capsys.readouterr().err
