"""A hostile PR on a real box: the agent as root (``client.py``, as cron runs it), PR code as the
real OS user ``pullre-app``, real git, the real controller over HTTP.

PR 41's build attacks everything the issue lists: it reads the agent's ini, state and
``/proc/<agent pid>/environ``, plants a hook and a file in the agent's repository, leaves a
``setsid`` daemon and files in ``/tmp``, ``/var/tmp``, ``/dev/shm`` and its HOME, and posts a
forged smoke pass with whatever token it found. PR 42 then runs on the same server: nothing of
PR 41 is left, and nothing PR 41 did counted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from pullre.agent import cleanup, deploy
from pullre.models import DeployStep, Environment, EnvironmentStatus, PullRequest, Server
from pullre.reconcile import pool
from pullre.servers import registry
from tests.agent_fixtures import Box, OriginRepo, assign_on_controller
from tests.web_fixtures import LiveServer

CLIENT = Path(__file__).resolve().parent.parent / "client.py"
SAMPLE_APP = Path(__file__).parent / "sample_app" / "app.py"
#: An interpreter the app user may run (pytest's own may live in root's 0700 home).
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "python3"

FORGE = """\
import json, os, sys, urllib.error, urllib.request
url, environment_id, sha = sys.argv[1:4]
found = [os.environ.get("PULLRE_AGENT_TOKEN", "")]
for path in sys.argv[4:]:
    try:
        text = open(path, "rb").read().decode(errors="replace")
    except OSError as exc:
        print(f"forge: cannot read {path}: {exc.strerror}")
        continue
    for piece in text.replace("\\0", "\\n").splitlines():
        if "TOKEN" in piece.upper():
            found.append(piece.split("=", 1)[-1].strip())
results = {"tier": "fast", "counts": {"pass": 3}, "time_ms": 5, "checks": [
    {"name": f"c{i}", "type": "http", "tier": "fast", "result": "pass", "message": "ok",
     "time_ms": 1} for i in range(3)]}
for token in [t for t in found if t] or ["none"]:
    for step in ("health", "smoke"):
        body = {"environment_id": int(environment_id), "head_sha": sha, "step": step,
                "status": "ok", "log": "all good"}
        if step == "smoke":
            body["results"] = results
        request = urllib.request.Request(
            url + "/api/agent/steps", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                print(f"forged {step}: HTTP {answer.status}")
        except urllib.error.HTTPError as exc:
            print(f"forged {step}: HTTP {exc.code}")
"""


def hostile_build(box: Box, live: LiveServer, environment_id: int, marker: str) -> str:
    """PR 41's build: every attack, each one's outcome printed, then a failed exit."""
    workdir = box.workdir
    repo = workdir / "repo.git"
    return f"""\
set -u
echo "== ini"; cat {box.ini}
echo "== state"; cat {workdir}/state.json
echo "== logs"; ls {workdir}/logs
echo "== agent environ"; cat /proc/$PPID/environ
echo "== hook"; printf '#!/bin/sh\\ntouch /tmp/{marker}-hook-ran\\n' > {repo}/hooks/post-checkout
echo "== plant"; echo planted > {repo}/planted
echo "== daemon"; setsid sleep 3{marker[-4:]} </dev/null >/dev/null 2>&1 &
echo x > /tmp/{marker}; echo x > /var/tmp/{marker}; echo x > /dev/shm/{marker}
mkdir /tmp/{marker}-dir && echo x > /tmp/{marker}-dir/inside
echo x > "$HOME/{marker}"; echo x > "$TMPDIR/{marker}"
echo "== whoami: $(id -un)"
echo "== forge"
{PYTHON} forge.py {live.url} {environment_id} "$PULLRE_SHA" {box.ini} /proc/$PPID/environ
exit 1
"""


def agent_pass(box: Box, token: str) -> subprocess.CompletedProcess[str]:
    """One ``client.py`` pass as cron runs it, its token also in its environment."""
    environ = {"PATH": os.environ["PATH"], "PULLRE_AGENT_TOKEN": token, "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, str(CLIENT), "--config", str(box.ini)],
        env=environ,
        cwd=CLIENT.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sleeping_daemons(marker: str) -> list[int]:
    wanted = f"sleep\0003{marker[-4:]}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def build_log(live: LiveServer, environment_id: int) -> str:
    with live.session_factory() as session:
        logs = session.scalars(
            select(DeployStep.log_tail).where(
                DeployStep.environment_id == environment_id, DeployStep.step == "build"
            )
        ).all()
    return "\n".join(log or "" for log in logs)


def test_a_hostile_pr_reads_nothing_keeps_nothing_and_reports_nothing(
    live_server: LiveServer, git_origin: OriginRepo, box: Box
) -> None:
    marker = f"pullre-hostile-{secrets.token_hex(4)}-{secrets.randbelow(9000) + 1000}"
    left = [Path("/tmp", marker), Path("/var/tmp", marker), Path("/dev/shm", marker)]
    left += [Path("/tmp", marker + "-dir")]
    hook_ran = Path("/tmp", marker + "-hook-ran")
    first = git_origin.commit({"README": "pr 41\n"})
    git_origin.open_pr(41, first)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 41, first, instance_id="i-0000041a"
    )
    toml = f'start = ["{PYTHON}", "app.py"]\nport = {git_origin.port}\nhealth_timeout = 15\n'
    files = {
        "hostile.sh": hostile_build(box, live_server, assigned.environment_id, marker),
        "forge.py": FORGE,
        ".pullre.toml": '[deploy]\nbuild = ["sh", "hostile.sh"]\n' + toml,
    }
    sha = git_origin.commit(files, "pr 41: hostile")
    git_origin.open_pr(41, sha)
    with live_server.session_factory() as session:
        session.get_one(PullRequest, assigned.pull_id).head_sha = sha
        session.commit()
    box.write_ini(live_server.url, assigned.token)

    done = agent_pass(box, assigned.token)
    assert done.returncode == 0, done.stderr

    log = build_log(live_server, assigned.environment_id)
    assert "== whoami: pullre-app" in log
    assert f"cat: {box.ini}: Permission denied" in log
    assert f"cat: {box.workdir}/state.json: Permission denied" in log
    assert f"ls: cannot access '{box.workdir}/logs': Permission denied" in log
    assert "environ: Permission denied" in log
    assert log.count("Permission denied") >= 6, log  # the hook and the planted file too
    assert assigned.token not in log
    assert "forged smoke: HTTP 401" in log
    assert "forged smoke: HTTP 2" not in log
    assert "forged health: HTTP 2" not in log
    with live_server.session_factory() as session:
        environment = session.get_one(Environment, assigned.environment_id)
        assert environment.status is EnvironmentStatus.FAILED
        smoke = session.scalars(
            select(DeployStep).where(
                DeployStep.environment_id == environment.id, DeployStep.step == "smoke"
            )
        ).all()
        assert smoke == []
        assert session.get_one(Server, assigned.server_id).runs_as == "app_user"
    # What the build did leave, before the next PR comes (the attack really happened).
    assert sleeping_daemons(marker)
    assert all(path.exists() for path in left)
    assert not (box.workdir / "repo.git" / "planted").exists()
    assert not (box.workdir / "repo.git" / "hooks" / "post-checkout").exists()

    # PR 41 is released; PR 42 gets the same server.
    looks = f'ls -A "$HOME" "$TMPDIR"; ls {" ".join(map(str, left))}; echo "== done"'
    second = git_origin.commit(
        {
            "hostile.sh": None,
            "forge.py": None,
            ".pullre.toml": f"[deploy]\nbuild = {json.dumps(['sh', '-c', looks])}\n" + toml,
        }
    )
    git_origin.open_pr(42, second)
    with live_server.session_factory() as session:
        old = session.get_one(Environment, assigned.environment_id)
        old.status = EnvironmentStatus.RELEASED
        old.server_id = None  # as a release does: the server is free for the next PR
        session.flush()
        pull = PullRequest(
            repository_id=old.pull_request.repository_id,
            number=42,
            title="next",
            author_login="bob",
            head_ref="next",
            head_sha=second,
        )
        session.add(pull)
        session.flush()
        following = Environment(
            pull_request_id=pull.id,
            server_id=assigned.server_id,
            status=EnvironmentStatus.PROVISIONING,
        )
        session.add(following)
        session.commit()
        following_id = following.id

    done = agent_pass(box, assigned.token)
    assert done.returncode == 0, done.stderr

    assert sleeping_daemons(marker) == []
    assert [path for path in left if path.exists()] == []
    assert list((box.app_dir / "home").iterdir()) == []
    assert list((box.app_dir / "tmp").iterdir()) == []
    assert not hook_ran.exists()
    seen = build_log(live_server, following_id)
    assert "== done" in seen
    assert seen.count("No such file or directory") == len(left)
    with live_server.session_factory() as session:
        assert session.get_one(Environment, following_id).status is EnvironmentStatus.READY
        assert session.get_one(Environment, assigned.environment_id).status is not (
            EnvironmentStatus.READY
        )
        server = session.get_one(Server, assigned.server_id)
        assert server.dirty_reason is None
    uid = os.stat(box.app_dir / "home").st_uid
    assert len(cleanup.processes_of(uid)) == 1  # PR 42's app, and nothing else
    assert oct(box.workdir.stat().st_mode & 0o777) == "0o700"


def test_a_box_that_cannot_be_cleaned_is_dirty_until_an_admin_marks_it_clean(
    live_server: LiveServer, git_origin: OriginRepo, box: Box, app_user: str
) -> None:
    toml = f'[deploy]\nstart = ["{PYTHON}", "app.py"]\nport = {git_origin.port}\n'
    sha = git_origin.commit({".pullre.toml": toml})
    git_origin.open_pr(43, sha)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 43, sha, instance_id="i-0000043a"
    )
    settings = box.settings(live_server.url, assigned.token)
    assert deploy.run_pass(settings, environ={}) == 0
    with live_server.session_factory() as session:
        environment = session.get_one(Environment, assigned.environment_id)
        assert environment.status is EnvironmentStatus.READY
        # Released, and the server given to the PR again at once (a new stay): the box must
        # be cleaned before that code runs.
        environment.status = EnvironmentStatus.RELEASED
        environment.server_id = None
        session.get_one(Server, assigned.server_id).observed_state = "running"
        session.flush()
        again = Environment(
            pull_request_id=assigned.pull_id,
            server_id=assigned.server_id,
            status=EnvironmentStatus.PROVISIONING,
        )
        session.add(again)
        session.commit()

    # Something the agent cannot stop (here: a root shell of this test) keeps starting
    # processes as the app user, so one is always alive whatever the agent kills.
    as_app = f"setpriv --reuid={app_user} --regid={app_user} --clear-groups"
    loop = f"while :; do {as_app} sleep 30 & sleep 0.003; done"
    respawner = subprocess.Popen(
        ["sh", "-c", f"({loop}) & ({loop}) & {loop}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.1)
        assert deploy.run_pass(settings, environ={}) == 1  # dirty: deploys nothing
    finally:
        os.killpg(respawner.pid, signal.SIGKILL)
        respawner.wait()

    with live_server.session_factory() as session:
        server = session.get_one(Server, assigned.server_id)
        assert server.dirty_reason is not None
        assert "process(es) of pullre-app still alive" in server.dirty_reason
        server_id = server.id
        assert session.get_one(Environment, again.id).status is EnvironmentStatus.PROVISIONING
        steps = select(DeployStep).where(DeployStep.environment_id == again.id)
        assert session.scalars(steps).all() == []
    # The next pass cleans again before that PR's code runs; with the respawner gone it can.
    assert deploy.run_pass(settings, environ={}) == 0
    with live_server.session_factory() as session:
        assert session.get_one(Environment, again.id).status is EnvironmentStatus.READY
    with live_server.session_factory() as session:
        server = session.get_one(Server, server_id)
        assert server.dirty_reason is not None  # but only an admin clears the controller's mark
        session.get_one(Environment, again.id).status = EnvironmentStatus.RELEASED
        session.get_one(Environment, again.id).server_id = None
        session.commit()
        assert server_id not in {s.id for s in pool.free_servers(session)}
        registry.mark_clean(session, server, "alice")
        session.commit()
        assert server.dirty_reason is None
        assert server_id in {s.id for s in pool.free_servers(session)}
