"""One agent pass against a real git repository, real app processes and the controller stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pullre.agent import supervisor
from tests.agent_fixtures import Agent, AssignPr, FakeController, OriginRepo, git, pullre_toml

FULL_DEPLOY = [
    ("fetch", "running"),
    ("fetch", "ok"),
    ("checkout", "running"),
    ("checkout", "ok"),
    ("build", "skipped"),
    ("migrate", "skipped"),
    ("start", "running"),
    ("start", "ok"),
    ("health", "running"),
    ("health", "ok"),
    ("smoke", "skipped"),
]


def deployed(
    agent: Agent, assign_pr: AssignPr, number: int, files: dict[str, str | None] | None = None
) -> tuple[str, int]:
    """PR ``number`` (``files`` committed, a README by default) deployed by one agent pass:
    its sha and the app's pid."""
    sha = assign_pr(number, files or {"README": "x\n"})
    agent.run()
    return sha, agent.app_pid()


def test_first_deploy_runs_the_pr_head_and_reports_every_step(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha = assign_pr(12, sha=git_origin.commit({"README": "pr 12\n"}, "pr work"))

    assert agent.run() == 0

    assert fake_controller.steps() == FULL_DEPLOY
    assert agent.get(git_origin.port) == f"ok {sha}"
    assert all(r.authorization == "Bearer agent-token-for-tests" for r in fake_controller.requests)
    assert {
        (r.body["environment_id"], r.body["head_sha"]) for r in fake_controller.step_requests()
    } == {(7, sha)}
    assert fake_controller.heartbeats() == [
        {
            "agent_version": "0.1.0",
            "deployed_sha": sha,
            "app_running": True,
            "environment_id": 7,
            # No client but the agent's own health check, which does not count.
            "app_in_use": False,
            "runs_as": "same_user",  # these tests let PR code run as the agent
            "dirty": None,
        }
    ]
    env = json.loads(agent.get(git_origin.port, "/env"))
    assert env["PULLRE_PR_NUMBER"] == "12"
    assert env["PULLRE_SHA"] == sha
    assert env["PORT"] == str(git_origin.port)
    assert env["DATABASE_URL"] is None  # no database in this assignment
    assert env["PULLRE_AGENT_TOKEN"] is None  # the PR's code never sees the agent's token


def test_a_second_pass_leaves_a_healthy_app_alone(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    _, pid = deployed(agent, assign_pr, 3)
    fake_controller.clear()

    assert agent.run() == 0

    assert fake_controller.steps() == []
    assert agent.app_pid() == pid
    assert fake_controller.heartbeats()[-1]["app_running"] is True


def test_fork_pr_whose_commit_only_refs_pull_head_reaches(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha = git_origin.fork_commit({"README": "from a fork\n"})
    assign_pr(40, sha=sha, clone_url=f"file://{git_origin.path}")
    assert git(git_origin.path, "branch", "--all", "--contains", sha) == ""

    assert agent.run() == 0

    assert ("health", "ok") in fake_controller.steps()
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_a_push_replaces_the_app_and_removes_the_old_checkout(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    _, old_pid = deployed(agent, assign_pr, 5, {"README": "one\n"})
    old_checkout = Path(agent.state().checkouts[0])

    second = assign_pr(
        5,
        {".pullre.toml": pullre_toml(git_origin.port, build="echo built $PULLRE_SHA > built.txt")},
    )
    fake_controller.clear()
    assert agent.run() == 0

    assert agent.get(git_origin.port) == f"ok {second}"
    assert agent.get(git_origin.port, "/built") == f"built {second}\n"
    assert ("build", "ok") in fake_controller.steps()
    assert not supervisor.is_alive(old_pid, None)
    assert not old_checkout.exists()
    assert agent.state().deployed_sha == second


def test_redeploy_request_deploys_the_same_sha_again(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha, old_pid = deployed(agent, assign_pr, 6)
    fake_controller.assignment = git_origin.assignment(6, sha, redeploy=True)
    fake_controller.clear()

    agent.run()

    assert fake_controller.steps() == FULL_DEPLOY
    assert agent.app_pid() != old_pid
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_an_app_that_crashes_at_start_fails_health_with_its_stderr(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    crash = [sys.executable, "-c", "import sys; sys.exit('boom: no config for sample app')"]
    assign_pr(8, {".pullre.toml": pullre_toml(git_origin.port, start=crash)})

    assert agent.run() == 0

    assert fake_controller.steps()[-3:] == [
        ("start", "ok"),
        ("health", "running"),
        ("health", "failed"),
    ]
    text = fake_controller.step_log("health", "failed")
    assert "exited with status 1" in text
    assert "boom: no config for sample app" in text
    assert fake_controller.heartbeats()[-1] == {
        "agent_version": "0.1.0",
        "deployed_sha": None,
        "app_running": False,
        "environment_id": 7,
        "app_in_use": None,
        "runs_as": "same_user",  # these tests let PR code run as the agent
        "dirty": None,
    }

    fake_controller.clear()
    agent.run()  # the same broken sha is not rebuilt on every pass
    assert fake_controller.steps() == []

    fixed = assign_pr(8, {".pullre.toml": pullre_toml(git_origin.port)})
    agent.run()  # a new push deploys at once
    assert agent.get(git_origin.port) == f"ok {fixed}"
    checkouts = agent.state().checkouts
    assert len(checkouts) == 1  # the failed attempt's tree is gone
    assert sorted(p.name for p in (agent.settings.app_root / "checkouts").iterdir()) == [
        Path(checkouts[0]).name
    ]


def test_a_start_command_that_does_not_exist_fails_start(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    assign_pr(9, {".pullre.toml": pullre_toml(git_origin.port, start=["./no-such-server", "--x"])})

    agent.run()

    assert fake_controller.steps()[-2:] == [("start", "running"), ("start", "failed")]
    assert "no-such-server" in fake_controller.step_log("start", "failed")


def test_an_app_killed_later_is_restarted_by_the_next_pass(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha, pid = deployed(agent, assign_pr, 10)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while supervisor.is_alive(pid, None) and time.monotonic() < deadline:
        time.sleep(0.01)  # "later": the kernel has finished killing it
    fake_controller.clear()

    agent.run()

    assert fake_controller.steps() == [
        ("start", "running"),
        ("start", "ok"),
        ("health", "running"),
        ("health", "ok"),
    ]
    assert agent.app_pid() != pid
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_unassignment_stops_the_app(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    _, pid = deployed(agent, assign_pr, 11)
    fake_controller.assignment = None
    fake_controller.clear()

    assert agent.run() == 0

    assert not supervisor.is_alive(pid, None)
    assert not agent.answers(git_origin.port)
    assert fake_controller.steps() == []
    assert fake_controller.heartbeats() == [
        {
            "agent_version": "0.1.0",
            "deployed_sha": None,
            "app_running": False,
            "environment_id": None,
            "app_in_use": None,
            "runs_as": "same_user",  # these tests let PR code run as the agent
            "dirty": None,
        }
    ]
    assert agent.state().checkouts == []


def test_an_unreachable_or_failing_controller_leaves_the_app_running(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha, pid = deployed(agent, assign_pr, 12)

    with_nobody_listening = "http://127.0.0.1:9"
    assert agent.run(controller_url=with_nobody_listening) == 0
    fake_controller.status = 503
    assert agent.run() == 0

    assert agent.app_pid() == pid
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_a_second_pass_exits_at_once_while_one_holds_the_lock(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    workdir = agent.settings.workdir
    workdir.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from pullre.agent.lock import exclusive\n"
            "with exclusive(Path(sys.argv[1]) / 'agent.lock'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(30)\n",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        sha = assign_pr(13, {"README": "x\n"})
        started = time.monotonic()

        assert agent.run() == 0

        assert time.monotonic() - started < 2
        assert fake_controller.requests == []
    finally:
        holder.kill()
        holder.wait()
    agent.run()  # once the holder is gone, the lock is free again
    assert agent.get(git_origin.port) == f"ok {sha}"


def test_a_409_on_a_step_stops_the_deploy_quietly(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    assign_pr(14, {"README": "x\n"})
    fake_controller.steps_status = 409

    assert agent.run() == 0

    assert fake_controller.steps() == [("fetch", "running")]
    assert not (agent.settings.workdir / "repo.git").exists()
    assert agent.state().app is None


def test_invalid_toml_fails_checkout_with_the_parse_error(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    assign_pr(15, {".pullre.toml": "[deploy]\nstart = [unclosed\n"})

    assert agent.run() == 0

    assert fake_controller.steps()[-1] == ("checkout", "failed")
    assert "not valid TOML" in fake_controller.step_log("checkout", "failed")


def test_defaults_from_the_assignment_apply_without_a_pullre_toml(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    defaults = {
        "port": git_origin.port,
        "health_path": "/env",
        "start": [sys.executable, "app.py"],
        "migrate": None,
        "build": ["sh", "-c", "echo from-defaults > built.txt"],
    }
    assign_pr(16, {".pullre.toml": None}, defaults=defaults)

    agent.run()

    assert agent.get(git_origin.port, "/built") == "from-defaults\n"
    assert "/env" in fake_controller.step_log("health", "ok")


def test_a_new_assignment_replaces_the_previous_prs_app(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    _, old_pid = deployed(agent, assign_pr, 17, {"README": "pr 17\n"})
    second = assign_pr(18, sha=git_origin.fork_commit({"README": "pr 18\n"}), environment_id=8)
    fake_controller.clear()

    agent.run()

    assert not supervisor.is_alive(old_pid, None)
    assert agent.get(git_origin.port) == f"ok {second}"
    assert {r.body["environment_id"] for r in fake_controller.step_requests()} == {8}
    assert agent.state().pr_number == 18


def test_the_old_checkout_goes_after_the_smoke_step_not_before(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    deployed(agent, assign_pr, 8, {"README": "one\n"})
    old_checkout = Path(agent.state().checkouts[0])
    # The new deploy's smoke check looks for the previous tree: it is still there while the
    # checks run, and gone once they have (its deletion never delays the new app or its checks).
    smoke = (
        '[[smoke]]\nname = "old tree still there"\ntype = "command"\n'
        f'command = ["test", "-d", "{old_checkout}"]\n'
    )
    assign_pr(8, {".pullre.toml": pullre_toml(git_origin.port) + smoke})
    fake_controller.clear()
    assert agent.run() == 0
    assert fake_controller.steps()[-1] == ("smoke", "ok")
    assert not old_checkout.exists()


def test_a_released_box_sets_its_trees_aside_and_deletes_them_at_the_end_of_the_pass(
    agent: Agent, fake_controller: FakeController, assign_pr: AssignPr
) -> None:
    deployed(agent, assign_pr, 9)
    checkout = Path(agent.state().checkouts[0])
    app_dir = checkout.parent.parent
    fake_controller.assignment = None  # released
    assert agent.run() == 0
    assert not checkout.exists()
    assert list((app_dir / ".trash").iterdir()) == []  # emptied before the pass ended
    assert (app_dir / ".trash").stat().st_mode & 0o777 == 0o700
