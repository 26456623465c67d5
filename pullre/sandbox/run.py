"""Start every part of the sandbox, drive it with a reconcile loop, and take it all down again.

Order matters both ways: the throwaway MySQL starts before any thread (its safety net uses
``preexec_fn``), and shutdown stops the loop and the agents before dropping schemas, so no pass
recreates what was just removed. Everything lives in one ``pullre-sandbox-*`` temp dir, which
goes last.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from cheroot import wsgi
from sqlalchemy import Engine

from pullre import migrate
from pullre.accounts import api_tokens
from pullre.accounts import user_accounts as accounts
from pullre.config import Settings, load_settings
from pullre.db import make_engine, make_session_factory
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2
from pullre.github.adapter import make_github
from pullre.github.standin.server import GitHubStandIn
from pullre.models import Repository, Role, Trust
from pullre.reconcile.run import run_configured_pass
from pullre.sandbox import cloud, processes, staging, statefile
from pullre.sandbox.agents import LocalAgent
from pullre.sandbox.control import ControlServer
from pullre.sandbox.loopback import free_port
from pullre.sandbox.sample_repo import NAME, OWNER, SampleRepo
from pullre.servers.registry import register_server
from pullre.staging_db.database import PyMysqlStagingDatabase
from pullre.web import create_app

POOL_SIZE = 3
PASS_INTERVAL_S = 2.0

log = logging.getLogger("pullre.sandbox")


def run(*, host: str, port: int) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    home = Path(tempfile.mkdtemp(prefix=statefile.PREFIX))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        stack.callback(processes.stop_all, home)
        try:
            _serve(stack, home, host, port, stopping)
        except (cloud.MotoMissing, OSError) as exc:
            print(f"sandbox: {exc}", file=sys.stderr)
            return 1
        print("\nsandbox: stopping; removing what it created...", flush=True)
    print("sandbox: stopped, everything it started is gone", flush=True)
    return 0


def _serve(stack: ExitStack, home: Path, host: str, port: int, stopping: threading.Event) -> None:
    found = staging.find(os.environ)
    if found is not None:
        stack.callback(found.stop)
    database = found.database() if found is not None else None
    base_schema = staging.create_base_schema(found) if found is not None else None
    # A random repository id makes the PR schemas pr_<id>_<n> this run's own, even on a
    # staging server shared with other sandboxes or test runs.
    repo_id = 100_000 + secrets.randbelow(900_000)
    if found is not None:
        stack.callback(staging.drop_schemas, found, base_schema, f"pr_{repo_id}_")

    ec2_cloud, instance_ids = cloud.start(POOL_SIZE)
    stack.callback(ec2_cloud.stop)
    github_token = secrets.token_urlsafe(16)
    standin = GitHubStandIn(tokens={github_token: "pullre-bot"}).start()
    stack.callback(standin.stop)
    repo = SampleRepo.create(home / "origin", standin)

    controller_url = f"http://{host}:{port}"
    settings = _settings(
        home,
        host=host,
        port=port,
        github_url=standin.url,
        github_token=github_token,
        ec2_url=ec2_cloud.endpoint_url,
        found=found,
    )
    migrate.upgrade(settings.controller.database_url)
    engine = make_engine(settings.controller.database_url)
    stack.callback(engine.dispose)
    sessions = make_session_factory(engine)
    ec2 = make_ec2(settings.aws)
    agents = [
        LocalAgent(iid, free_port(), home / f"agent-{n}", ec2, stopping)
        for n, iid in enumerate(instance_ids, start=1)
    ]
    password = secrets.token_urlsafe(12)
    with sessions() as session:
        admin = accounts.create_user(session, "admin", password, Role.ADMIN)
        session.flush()
        _, api_token = api_tokens.create_token(session, admin, "sandbox")
        session.add(
            Repository(
                id=repo_id,
                owner=OWNER,
                name=NAME,
                base_schema=base_schema,
                clone_url=str(repo.path),
                enabled=True,
                # The sample story deploys mallory's fork PR beside the others; a real
                # repository keeps the default, under which it would wait for approval.
                trust=Trust.EVERYONE,
            )
        )
        for n, agent in enumerate(agents, start=1):
            _, token = register_server(session, agent.instance_id, agent.url, f"local-{n}")
            agent.configure(controller_url, token)
        session.commit()
    numbers = repo.open_pulls()

    app = create_app(
        settings,
        session_factory=sessions,
        ec2=lambda: ec2,
        github=lambda: make_github(settings.github),
    )
    web = wsgi.Server((host, port), app)
    web.prepare()  # binds now, so a taken port fails here with its OSError
    threading.Thread(target=web.serve, name="controller", daemon=True).start()
    stack.callback(web.stop)
    control = ControlServer(repo, standin, controller_url)
    control.start()
    stack.callback(control.stop)

    loop = threading.Thread(
        target=_reconcile_loop,
        args=(settings, engine, ec2, database, stopping),
        name="reconcile",
        daemon=True,
    )
    loop.start()
    for agent in agents:
        agent.start()
    # Registered last so they run first: no pass or deploy runs while schemas are dropped.
    stack.callback(_stop_agents, agents)
    stack.callback(loop.join, 60)

    statefile.write(
        home,
        {
            "pid": os.getpid(),
            "home": str(home),
            "controller_url": controller_url,
            "control_url": control.url,
            "api_token": api_token,
            "database_url": settings.controller.database_url,
            "repository": f"{OWNER}/{NAME}",
            "schema_prefix": f"pr_{repo_id}_",
            "base_schema": base_schema,
            "pulls": numbers,
            "agents": {agent.instance_id: agent.url for agent in agents},
        },
    )
    _banner(controller_url, password, control.url, home, found)
    while not stopping.wait(0.5):
        pass


def _stop_agents(agents: list[LocalAgent]) -> None:
    for agent in agents:
        agent.join(timeout=60)


def _reconcile_loop(
    settings: Settings,
    engine: Engine,
    ec2: Ec2,
    database: PyMysqlStagingDatabase | None,
    stopping: threading.Event,
) -> None:
    github = make_github(settings.github)
    while not stopping.is_set():
        started = time.monotonic()
        try:
            run_configured_pass(settings, engine, github, ec2, staging=database)
        except Exception:
            log.exception("reconcile pass failed; the next one starts from the database again")
        stopping.wait(max(0.0, PASS_INTERVAL_S - (time.monotonic() - started)))


def _settings(
    home: Path,
    *,
    host: str,
    port: int,
    github_url: str,
    github_token: str,
    ec2_url: str,
    found: staging.Staging | None,
) -> Settings:
    ini = home / "app.ini"
    ini.write_text(
        "[controller]\n"
        f"database_url = sqlite:///{home / 'controller.db'}\n"
        f"secret_key = {secrets.token_hex(32)}\n"
        f"host = {host}\nport = {port}\npublic_url = http://{host}:{port}\n"
        f"[github]\napi_url = {github_url}\ntoken = {github_token}\n"
        f"[aws]\nregion = {cloud.REGION}\nendpoint_url = {ec2_url}\n"
        f"[staging_mysql]\nurl = {found.url if found else ''}\n"
        # Short enough to watch an environment fall asleep; priced like AWS's t3.micro.
        "[pool]\nlease_seconds = 30\nidle_stop_minutes = 10\n"
        f"[cost]\ninstance_prices = {cloud.INSTANCE_TYPE}=0.0104\n"
    )
    ini.chmod(0o600)
    # No environment layer: the user's own PULLRE_* settings must not leak into the toy.
    return load_settings(ini, environ={})


def _banner(
    controller_url: str, password: str, control_url: str, home: Path, found: staging.Staging | None
) -> None:
    mysql = f"staging MySQL: {found.origin}" if found else staging.INSTALL_HINT
    print(
        f"""
pullre sandbox is running (Ctrl-C stops it and removes everything it created)

  log in:          {controller_url}   user admin, password {password}
  GitHub stand-in: {control_url}   (close or push to a PR)
  {mysql}
  files:           {home}

Try:
  watch three PRs get servers and the fourth wait in the queue on the dashboard;
  python -m pullre sandbox close 1      # frees its server for the queued PR
  python -m pullre sandbox push 2       # a new commit: PR 2 redeploys
  python -m pullre --config {home / "app.ini"} status
""",
        flush=True,
    )
