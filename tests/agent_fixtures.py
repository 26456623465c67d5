"""The agent's boundaries made real for tests (a pytest plugin, listed in conftest).

``fake_controller``
    A stdlib HTTP stand-in of the controller's agent API (``GET /api/agent/assignment``,
    ``POST /api/agent/steps``, ``POST /api/agent/heartbeat``) on 127.0.0.1 that records every
    request. Set ``assignment`` (the inner object or None), ``status`` (e.g. 503) or
    ``steps_status`` (e.g. 409) to steer it. Like the real one it refuses (401) a step, or a
    heartbeat naming an environment, without the environment token the assignment gave. Set
    ``agent_offer`` (``{"version", "sha256"}``, sent as the answer's ``agent``) and
    ``bundle`` (the bytes of ``GET /api/agent/bundle``) to offer an agent update.
``git_origin``
    A real git repository standing for the GitHub base repository: ``commit(...)`` makes
    commits, ``open_pr(n, sha)`` points ``refs/pull/N/head`` at a commit, as GitHub does.
``assign_pr``
    ``assign_pr(n, files, **overrides)`` commits ``files`` on ``git_origin``, opens PR ``n`` at
    that commit and makes it ``fake_controller``'s assignment; returns the sha. Pass ``sha=``
    instead of ``files`` for a commit made otherwise (a fork's, an earlier one).
``agent``
    The agent on a fresh workdir against ``fake_controller``; ``agent.run()`` is one pass.
    Teardown stops any app the agent left running.
``make_agent``
    ``make_agent(settings, environ)``: an agent of other settings (another controller, a
    token of its own); teardown stops the apps of every agent it made.
``app_user``
    The real OS user ``pullre-app`` PR code runs as (session-wide): created here when the tests
    run as root and it is missing (``.ci/run`` creates it too); without root the tests fail
    saying what to do, since the agent can only switch users as root.
``box``
    A staging box laid out as in production under a fresh world-traversable directory in
    ``/tmp`` (pytest's own temp dirs are 0700, which would hide the agent's files from the app
    user whatever their modes): the agent's ini (0600), workdir and ``app_dir``. Teardown kills
    every process of the app user and removes the box.
``pr_database``
    The ``database`` member of an assignment for a PR-like MySQL user (a password full of URL
    and option-file metacharacters) granted on ``mysql_database_url``'s database only.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymysql
import pytest
from sqlalchemy import make_url
from sqlalchemy.orm import Session

from pullre.agent import cleanup, deploy, state, supervisor
from pullre.agent.settings import AgentSettings
from pullre.models import Environment, EnvironmentStatus, PullRequest, Repository, Server
from pullre.sandbox.loopback import free_port
from pullre.servers.registry import register_server

SAMPLE_APP = Path(__file__).parent / "sample_app" / "app.py"
TOKEN = "agent-token-for-tests"
ENVIRONMENT_TOKEN = "environment-token-for-tests-0123456789abcdef"
NASTY_PASSWORD = "p@ss:w/rd\"\\#' %20;$x`q` end"


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorization: str
    environment_token: str = ""


@dataclass
class FakeController:
    url: str = ""
    assignment: dict[str, Any] | None = None
    status: int = 200
    steps_status: int = 200
    agent_offer: dict[str, str] | None = None
    bundle: bytes | None = None
    requests: list[Request] = field(default_factory=list)

    def steps(self) -> list[tuple[str, str]]:
        return [(r.body["step"], r.body["status"]) for r in self.step_requests()]

    def step_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/agent/steps"]

    def step_log(self, step: str, status: str) -> str:
        logs = [
            r.body["log"]
            for r in self.step_requests()
            if (r.body["step"], r.body["status"]) == (step, status)
        ]
        assert logs, f"no {step}/{status} reported; got {self.steps()}"
        return str(logs[-1])

    def heartbeats(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/api/agent/heartbeat"]

    def clear(self) -> None:
        self.requests.clear()


def _handler(controller: FakeController) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization", "")
            environment_token = self.headers.get("X-Pullre-Environment-Token", "")
            controller.requests.append(Request(method, self.path, body, auth, environment_token))
            about = body.get("environment_id") if isinstance(body, dict) else None
            if auth != f"Bearer {TOKEN}":
                self._answer(401, {"error": "unknown agent token"})
            elif about is not None and environment_token != ENVIRONMENT_TOKEN:
                self._answer(401, {"error": "the environment token is required"})
            elif controller.status != 200:
                self._answer(controller.status, {"error": "the controller is having a bad day"})
            elif (method, self.path) == ("GET", "/api/agent/assignment"):
                answer = {"assignment": controller.assignment}
                if controller.agent_offer is not None:
                    answer["agent"] = controller.agent_offer
                self._answer(200, answer)
            elif (method, self.path) == ("GET", "/api/agent/bundle") and controller.bundle:
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(controller.bundle)))
                self.end_headers()
                self.wfile.write(controller.bundle)
            elif (method, self.path) == ("POST", "/api/agent/steps"):
                if controller.steps_status != 200:
                    self._answer(controller.steps_status, {"error": "not this server's"})
                else:
                    self._answer(200, {"ok": True})
            elif (method, self.path) == ("POST", "/api/agent/heartbeat"):
                self._answer(200, {"ok": True})
            else:
                self._answer(404, {"error": "no such endpoint"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def fake_controller() -> Iterator[FakeController]:
    controller = FakeController()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(controller))
    server.daemon_threads = True
    controller.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield controller
    server.shutdown()
    server.server_close()


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {args}: {result.stderr}"
    return result.stdout.strip()


def pullre_toml(port: int, **deploy_keys: Any) -> str:
    """A ``.pullre.toml`` starting the sample app with this interpreter on ``port``."""
    keys = {"start": [sys.executable, "app.py"], "port": port, "health_timeout": 15}
    keys.update(deploy_keys)
    lines = ["[deploy]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items() if value is not None]
    return "\n".join(lines) + "\n"


@dataclass
class OriginRepo:
    """The base repository as GitHub holds it, PR heads included."""

    path: Path
    port: int

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Commit on the current branch (``None`` deletes a file); returns the sha."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                git(self.path, "rm", "-q", "--", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            git(self.path, "add", "--", name)
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def fork_commit(self, files: dict[str, str | None], message: str = "fork") -> str:
        """A commit on no branch of this repository, as a fork's commit is to GitHub."""
        git(self.path, "checkout", "-q", "--detach")
        try:
            return self.commit(files, message)
        finally:
            git(self.path, "checkout", "-q", "--force", "main")

    def open_pr(self, number: int, sha: str) -> None:
        git(self.path, "update-ref", f"refs/pull/{number}/head", sha)

    def assignment(self, number: int, sha: str, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "environment_id": 7,
            "environment_token": ENVIRONMENT_TOKEN,
            "repository": "acme/shop",
            "clone_url": str(self.path),
            "pr_number": number,
            "head_sha": sha,
            "head_ref": "feature-x",
            "redeploy": False,
            "database": None,
            "defaults": {
                "port": 8000,
                "health_path": "/",
                "start": None,
                "migrate": None,
                "build": None,
            },
        }
        body.update(overrides)
        return body


@pytest.fixture
def git_origin(tmp_path: Path) -> OriginRepo:
    path = tmp_path / "git_origin"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = OriginRepo(path=path, port=free_port())
    repo.commit(
        {"app.py": SAMPLE_APP.read_text(), ".pullre.toml": pullre_toml(repo.port)}, "initial"
    )
    return repo


@dataclass
class AssignPr:
    controller: FakeController
    origin: OriginRepo

    def __call__(
        self,
        number: int,
        files: dict[str, str | None] | None = None,
        *,
        sha: str | None = None,
        **overrides: Any,
    ) -> str:
        if sha is None:
            assert files is not None, "give the files to commit or the sha"
            sha = self.origin.commit(files)
        self.origin.open_pr(number, sha)
        self.controller.assignment = self.origin.assignment(number, sha, **overrides)
        return sha


@pytest.fixture
def assign_pr(fake_controller: FakeController, git_origin: OriginRepo) -> AssignPr:
    return AssignPr(fake_controller, git_origin)


#: The user these tests run as: the agent's own user, which they let run PR code.
ME = pwd.getpwuid(os.geteuid()).pw_name


def same_user_settings(controller_url: str, token: str, workdir: Path) -> AgentSettings:
    """An agent that runs PR code as its own user (``allow_same_user``), as on a laptop."""
    return AgentSettings(
        controller_url=controller_url,
        token=token,
        workdir=workdir,
        app_user=ME,
        allow_same_user=True,
    )


@dataclass
class Agent:
    settings: AgentSettings
    environ: dict[str, str]

    def run(self, **changes: Any) -> int:
        settings = replace(self.settings, **changes) if changes else self.settings
        return deploy.run_pass(settings, environ=self.environ)

    def state(self) -> state.State:
        return state.load(self.settings.workdir)

    def app_pid(self) -> int:
        app = self.state().app
        assert app is not None, "no app recorded"
        return app.pid

    def get(self, port: int, path: str = "/") -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.read().decode())

    def answers(self, port: int) -> bool:
        try:
            self.get(port)
        except (urllib.error.URLError, OSError):
            return False
        return True


MakeAgent = Callable[[AgentSettings, dict[str, str]], Agent]


@pytest.fixture
def make_agent() -> Iterator[MakeAgent]:
    """``make_agent(settings, environ)``: an agent whose app, if it started one, is stopped at
    teardown (the app outlives the agent's pass by design, so nothing else would stop it)."""
    made: list[Agent] = []

    def make(settings: AgentSettings, environ: dict[str, str]) -> Agent:
        made.append(Agent(settings=settings, environ=environ))
        return made[-1]

    yield make
    for helper in made:
        app = helper.state().app if helper.settings.workdir.exists() else None
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)


@pytest.fixture
def agent(fake_controller: FakeController, tmp_path: Path, make_agent: MakeAgent) -> Agent:
    settings = same_user_settings(fake_controller.url, TOKEN, tmp_path / "agent")
    environ = {key: value for key, value in os.environ.items() if not key.startswith("PULLRE_")}
    environ["PULLRE_AGENT_TOKEN"] = TOKEN  # as on a box configured through the environment
    return make_agent(settings, environ)


APP_USER = "pullre-app"


@pytest.fixture(scope="session")
def app_user() -> str:
    try:
        pwd.getpwnam(APP_USER)
    except KeyError:
        if os.geteuid() != 0:
            pytest.fail(
                f"the OS user {APP_USER!r} is missing: create it as root with "
                f"`useradd --system --create-home {APP_USER}` (.ci/run does), then run these "
                "tests as root"
            )
        subprocess.run(
            ["useradd", "--system", "--create-home", APP_USER], check=True, capture_output=True
        )
    if os.geteuid() != 0:
        pytest.fail(f"the agent switches to {APP_USER!r} only as root: run these tests as root")
    return APP_USER


@dataclass
class Box:
    """A staging box: ``ini`` (0600, the token in it), ``workdir`` and ``app_dir``."""

    root: Path
    ini: Path
    workdir: Path
    app_dir: Path
    app_user: str

    def write_ini(self, controller_url: str, token: str) -> None:
        self.ini.write_text(
            f"[agent]\ncontroller_url = {controller_url}\ntoken = {token}\n"
            f"workdir = {self.workdir}\napp_user = {self.app_user}\napp_dir = {self.app_dir}\n"
        )
        self.ini.chmod(0o600)

    def settings(self, controller_url: str, token: str) -> AgentSettings:
        self.write_ini(controller_url, token)
        return AgentSettings(
            controller_url=controller_url,
            token=token,
            workdir=self.workdir,
            app_user=self.app_user,
            app_dir=self.app_dir,
            source=self.ini,
        )


@pytest.fixture
def box(app_user: str) -> Iterator[Box]:
    root = Path(tempfile.mkdtemp(prefix="pullre-box-", dir="/tmp"))
    root.chmod(0o755)
    helper = Box(root, root / "agent.ini", root / "agent", root / "app", app_user)
    yield helper
    entry = pwd.getpwnam(app_user)
    cleanup.kill_all(entry.pw_uid, app_user)
    app = state.load(helper.workdir).app if helper.workdir.exists() else None
    if app is not None:
        supervisor.stop(app.pid, app.start_time, timeout=5)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pr_database(mysql_database_url: str) -> Iterator[dict[str, Any]]:
    url = make_url(mysql_database_url)
    user = f"pr_{secrets.token_hex(4)}"
    admin = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    hosts = ("%", "localhost", "127.0.0.1")
    with admin.cursor() as cursor:
        for host in hosts:
            cursor.execute("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, NASTY_PASSWORD))
            cursor.execute(f"GRANT ALL PRIVILEGES ON `{url.database}`.* TO %s@%s", (user, host))
    try:
        yield {
            "host": url.host,
            "port": url.port or 3306,
            "user": user,
            "password": NASTY_PASSWORD,
            "name": url.database,
        }
    finally:
        with admin.cursor() as cursor:
            for host in hosts:
                cursor.execute("DROP USER IF EXISTS %s@%s", (user, host))
        admin.close()


@dataclass(frozen=True)
class Assigned:
    """Ids of what ``assign_on_controller`` created, and the server's agent token."""

    pull_id: int
    environment_id: int
    server_id: int
    token: str


def assign_on_controller(
    sessions: Callable[[], Session],
    origin: OriginRepo,
    number: int,
    sha: str,
    *,
    instance_id: str,
    title: str = "t",
) -> Assigned:
    """The controller state a reconcile pass leaves: PR ``number`` of acme/shop (cloned from
    ``origin``) provisioning on a freshly registered server."""
    with sessions() as session:
        server, token = register_server(session, instance_id, f"https://{instance_id}.example")
        environment = stage_environment(
            session, server, number, sha, clone_url=str(origin.path), title=title
        )
        session.commit()
        return Assigned(environment.pull_request_id, environment.id, server.id, token)


def stage_environment(
    session: Session,
    server: Server,
    number: int,
    sha: str,
    *,
    clone_url: str,
    head_ref: str = "feature-x",
    title: str = "t",
    base_schema: str | None = None,
    status: EnvironmentStatus = EnvironmentStatus.PROVISIONING,
    **environment: Any,
) -> Environment:
    """PR ``number`` of acme/shop (alice's, head ``sha``) with an environment on ``server`` in
    ``status`` (further ``Environment`` columns from ``environment``); flushed, not committed."""
    repository = Repository(owner="acme", name="shop", base_schema=base_schema, clone_url=clone_url)
    session.add(repository)
    session.flush()
    pull = PullRequest(
        repository_id=repository.id,
        number=number,
        title=title,
        author_login="alice",
        head_ref=head_ref,
        head_sha=sha,
    )
    session.add(pull)
    session.flush()
    staged = Environment(pull_request_id=pull.id, server_id=server.id, status=status, **environment)
    session.add(staged)
    session.flush()
    return staged
