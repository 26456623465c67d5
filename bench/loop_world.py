"""The world bench/loop_latency.py measures: every real part of the loop, in one temp dir.

moto's EC2 server and the GitHub stand-in in this process (real HTTP through boto3 and
PyGithub), a SQLite controller DB, the real Flask app in cheroot (as many threads as app.py runs
CherryPy) with a Nudger built from the real adapter factories, GitHub writes paced at one a
second, a webhook secret set, and one real agent per pool instance (``client.py`` subprocesses
serving the sandbox's sample app on a port of their own). A safety-net pass runs every
``cron_interval`` seconds, as cron would run ``update_pull.py``.

Two variants of the controller and agents, so one run prints a baseline beside pullre:

* ``pullre``: the Nudger as shipped (reporting in its own worker) and agents in ``--loop``;
* ``before``: a Nudger whose pass reports to GitHub itself before taking the next nudge (as
  before issue 15), and agents run as cron would, one ``client.py`` pass every 10 s (a
  minute, the usual crontab, is too slow to bench).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cheroot import wsgi
from sqlalchemy import select

from pullre import migrate
from pullre.agent import state, supervisor
from pullre.config import WEB_THREADS, Settings, load_settings
from pullre.db import make_engine, make_session_factory
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2, InstanceInfo, InstancePage
from pullre.github.adapter import make_github
from pullre.github.port import GitHub
from pullre.github.standin.server import GitHubStandIn
from pullre.github.standin.state import iso
from pullre.models import Environment, EnvironmentStatus, PullRequest, Repository, Server, Trust
from pullre.reconcile.nudge import Nudger
from pullre.reconcile.run import run_configured_pass
from pullre.sandbox import cloud, processes
from pullre.sandbox.loopback import free_port
from pullre.sandbox.sample_repo import NAME, OWNER, SampleRepo
from pullre.servers.registry import register_server
from pullre.web import create_app

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT = REPO_ROOT / "client.py"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "github-webhooks"
WEBHOOK_SECRET = "bench-webhook-secret"
#: The baseline agents' cron interval by default (a real crontab runs a pass a minute).
CRON_AGENT_INTERVAL_S = 10.0

log = logging.getLogger("bench.loop_world")


class TimedEc2:
    """The real boto3 adapter, noting when each StartInstances returned (wall clock)."""

    def __init__(self, inner: Ec2, starts: StartLog) -> None:
        self._inner, self._starts = inner, starts

    def describe(self, instance_ids: Collection[str]) -> dict[str, InstanceInfo]:
        return self._inner.describe(instance_ids)

    def list_instances(
        self,
        tag_filter: tuple[str, str] | None = None,
        page_token: str | None = None,
        page_size: int = 100,
    ) -> InstancePage:
        return self._inner.list_instances(tag_filter, page_token, page_size)

    def start(self, instance_id: str) -> str:
        answer = self._inner.start(instance_id)
        self._starts.add(instance_id, time.time())
        return answer

    def stop(self, instance_id: str) -> str:
        return self._inner.stop(instance_id)

    @property
    def calls(self) -> Mapping[str, int]:
        return self._inner.calls


@dataclass
class StartLog:
    """When each instance was started, as the bench's own EC2 factory saw it."""

    times: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, instance_id: str, at: float) -> None:
        with self.lock:
            self.times.setdefault(instance_id, []).append(at)

    def first_after(self, instance_id: str, since: float) -> float | None:
        with self.lock:
            return next((t for t in self.times.get(instance_id, []) if t >= since), None)


class InlineReportingNudger(Nudger):
    """The baseline: the nudged pass reports to GitHub itself, so the next nudge waits for it."""

    def _run_once(self) -> None:
        adapters = self._build_adapters()
        if adapters is None:
            return
        github, ec2, staging = adapters
        for attempt in range(self._skipped_retries + 1):
            try:
                report = run_configured_pass(
                    self._settings, self._engine, github, ec2, staging=staging, report=True
                )
            except Exception:
                log.exception("nudged pass failed")
                return
            self.last_report = report
            if not report.skipped:
                return
            if attempt < self._skipped_retries and not self._sleep(self._skipped_retry_delay):
                return


@dataclass
class Agent:
    """One box: its ini, workdir and app port, and the ``client.py`` process(es) running it."""

    instance_id: str
    port: int
    home: Path
    #: None: ``client.py --loop``; else one ``client.py`` pass every so many seconds.
    cron_every: float | None
    stopping: threading.Event
    #: ``client.py --loop --interval``: its longest wait on the controller is min(this, 25 s).
    loop_interval: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None

    @property
    def workdir(self) -> Path:
        return self.home / "work"

    def configure(self, controller_url: str, token: str) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        ini = self.home / "agent.ini"
        ini.write_text(
            f"[agent]\ncontroller_url = {controller_url}\ntoken = {token}\n"
            f"workdir = {self.workdir}\nport = {self.port}\n"
            f"app_user = {getpass.getuser()}\nallow_same_user = true\n"
        )
        ini.chmod(0o600)

    def start(self) -> None:
        if self.cron_every is None:
            self.process = self._spawn("--loop", "--interval", f"{self.loop_interval:g}")
        else:
            self.thread = threading.Thread(target=self._cron, daemon=True)
            self.thread.start()

    def _spawn(self, *extra: str) -> subprocess.Popen[bytes]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("PULLRE_", "AWS_"))}
        with (self.home / "agent.log").open("ab") as output:
            return subprocess.Popen(
                [sys.executable, str(CLIENT), "--config", str(self.home / "agent.ini"), *extra],
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _cron(self) -> None:
        every = self.cron_every or CRON_AGENT_INTERVAL_S
        # Staggered like boxes whose clocks differ, then one pass every ``every`` seconds.
        self.stopping.wait(secrets.randbelow(1000) / 1000 * every)
        while not self.stopping.is_set():
            started = time.monotonic()
            self.process = self._spawn()
            self.process.wait()
            self.stopping.wait(max(0.0, every - (time.monotonic() - started)))

    def stop(self) -> None:
        running = self.process
        if running is not None and running.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(running.pid, signal.SIGKILL)
            running.wait()
        if self.thread is not None:
            self.thread.join((self.cron_every or 0) + 5)
        app = state.load(self.workdir).app if self.workdir.exists() else None
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=5)

    def page(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as answer:
                return str(answer.read().decode())
        except (urllib.error.URLError, OSError):
            return ""


@dataclass
class World:
    variant: str
    home: Path
    settings: Settings
    standin: GitHubStandIn
    repo: SampleRepo
    starts: StartLog
    agents: dict[str, Agent]
    controller_url: str
    sessions: Any

    def webhook(self, action: str, number: int) -> float:
        """POST GitHub's example ``action`` delivery for PR ``number``; when it was sent."""
        payload = json.loads((FIXTURES / f"pull_request.{action}.json").read_text())
        for repo in (payload["repository"], payload["pull_request"]["base"]["repo"]):
            repo["name"], repo["full_name"] = NAME, f"{OWNER}/{NAME}"
            repo["owner"]["login"] = OWNER
        pull = self.standin.pull(OWNER, NAME, number)
        data = payload["pull_request"]
        data["head"]["repo"] = json.loads(json.dumps(payload["repository"]))
        data["head"]["sha"], data["head"]["ref"] = pull.head_sha, pull.head_ref
        payload["number"] = data["number"] = number
        data["title"], data["user"]["login"] = pull.title, pull.author
        data["created_at"], data["updated_at"] = iso(pull.created_at), iso(pull.updated_at)
        body = json.dumps(payload).encode()
        signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"{self.controller_url}/webhook/github",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={signature}",
            },
        )
        sent = time.time()
        with urllib.request.urlopen(request, timeout=30) as answer:
            if answer.status != 202:
                raise RuntimeError(f"webhook {action} #{number}: HTTP {answer.status}")
        return sent

    def queued(self, number: int) -> bool:
        """Whether PR ``number`` waits in the queue for a server."""
        with self.sessions() as session:
            status = session.scalar(
                select(Environment.status)
                .join(PullRequest, Environment.pull_request_id == PullRequest.id)
                .where(PullRequest.number == number)
                .order_by(Environment.id.desc())
                .limit(1)
            )
        return status is EnvironmentStatus.QUEUED

    def instance_of(self, number: int) -> str | None:
        """The instance PR ``number``'s current environment holds, if any."""
        with self.sessions() as session:
            return session.scalar(
                select(Server.instance_id)
                .join(Environment, Environment.server_id == Server.id)
                .join(PullRequest, Environment.pull_request_id == PullRequest.id)
                .where(PullRequest.number == number)
                .order_by(Environment.id.desc())
                .limit(1)
            )


def build(
    stack: ExitStack,
    home: Path,
    *,
    variant: str,
    servers: int,
    cron_interval: float,
    later: ExitStack,
    agent_cron_interval: float = CRON_AGENT_INTERVAL_S,
    agent_loop_interval: float = 60.0,
    write_interval: float = 1.0,
) -> World:
    """Start everything for ``variant`` (``pullre`` or ``before``); ``stack`` takes it down.

    ``later`` waits for the web server to stop: its agents' long polls (up to 25 s) outlive the
    agents, so the next variant need not wait for them. ``agent_cron_interval``: the
    ``before`` agents' seconds between passes; ``agent_loop_interval``: ``pullre``'s agents'
    ``--interval`` (client.py's default, 60 s, unless a test wants a quick shutdown);
    ``write_interval``: ``[github] write_interval``, the pacing of GitHub writes.
    """
    stack.callback(processes.stop_all, home)
    ec2_cloud, instance_ids = cloud.start(servers)
    stack.callback(ec2_cloud.stop)
    github_token = secrets.token_urlsafe(16)
    standin = GitHubStandIn(tokens={github_token: "pullre-bot"}).start()
    stack.callback(standin.stop)
    repo = SampleRepo.create(home / "origin", standin)
    # Agents' long polls hold threads for up to 25 s after the agents are gone: don't wait.
    web = wsgi.Server(("127.0.0.1", 0), None, numthreads=WEB_THREADS, shutdown_timeout=0.5)
    web.prepare()  # binds a free port now, so the settings can name it
    host, port = web.bind_addr
    controller_url = f"http://{host}:{port}"
    settings = _settings(
        home, controller_url, standin.url, github_token, ec2_cloud.endpoint_url, write_interval
    )
    migrate.upgrade(settings.controller.database_url)
    engine = make_engine(settings.controller.database_url)
    stack.callback(engine.dispose)
    sessions = make_session_factory(engine)
    starts = StartLog()
    stopping = threading.Event()
    cron_every = None if variant == "pullre" else agent_cron_interval
    agents = {
        iid: Agent(iid, free_port(), home / f"agent-{n}", cron_every, stopping, agent_loop_interval)
        for n, iid in enumerate(instance_ids, start=1)
    }
    with sessions() as session:
        session.add(
            Repository(
                id=100_001, owner=OWNER, name=NAME, clone_url=str(repo.path), enabled=True,
                trust=Trust.EVERYONE,
            )
        )  # fmt: skip
        for n, agent in enumerate(agents.values(), start=1):
            _, token = register_server(session, agent.instance_id, f"http://x/{n}", f"box-{n}")
            agent.configure(controller_url, token)
        session.commit()

    def github() -> GitHub:
        return make_github(settings.github)

    def ec2() -> Ec2:
        return TimedEc2(make_ec2(settings.aws), starts)

    nudger_class = Nudger if variant == "pullre" else InlineReportingNudger
    nudger = nudger_class(settings, engine, github=github, ec2=ec2)
    stack.callback(nudger.close, 10)
    # The baseline's worker may still be reporting a backlog of paced writes (failing fast once
    # the stand-in is gone): it must be done before the temp dir and its SQLite files go.
    later.callback(nudger.close, 120)
    web.wsgi_app = create_app(
        settings, session_factory=sessions, nudger=nudger, ec2=ec2, github=github
    )
    threading.Thread(target=web.serve, name="controller", daemon=True).start()
    stopper = threading.Thread(target=web.stop, name="controller-stop", daemon=True)
    stack.callback(stopper.start)
    later.callback(stopper.join, 60)
    cron = threading.Thread(
        target=_cron_passes, args=(settings, engine, github(), ec2(), stopping, cron_interval),
        name="cron", daemon=True,
    )  # fmt: skip
    cron.start()
    stack.callback(cron.join, 60)
    for agent in agents.values():
        agent.start()
    for agent in agents.values():
        stack.callback(agent.stop)
    stack.callback(stopping.set)  # runs first: no new agent or cron pass starts
    return World(variant, home, settings, standin, repo, starts, agents, controller_url, sessions)


def _cron_passes(
    settings: Settings,
    engine: Any,
    github: GitHub,
    ec2: Ec2,
    stopping: threading.Event,
    interval: float,
) -> None:
    while not stopping.wait(interval):
        try:
            run_configured_pass(settings, engine, github, ec2)
        except Exception:
            log.exception("cron pass failed")


def _settings(
    home: Path,
    controller_url: str,
    github_url: str,
    github_token: str,
    ec2_url: str,
    write_interval: float,
) -> Settings:
    ini = home / "app.ini"
    ini.write_text(
        "[controller]\n"
        f"database_url = sqlite:///{home / 'controller.db'}\n"
        f"secret_key = {secrets.token_hex(32)}\npublic_url = {controller_url}\n"
        f"[github]\napi_url = {github_url}\ntoken = {github_token}\n"
        f"webhook_secret = {WEBHOOK_SECRET}\nwrite_interval = {write_interval:g}\n"
        f"[aws]\nregion = {cloud.REGION}\nendpoint_url = {ec2_url}\n"
        "[pool]\nlease_seconds = 30\n"
    )
    ini.chmod(0o600)
    return load_settings(ini, environ={})
