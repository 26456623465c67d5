"""A green deploy means pullre's own app answered: not whatever else holds the app's port."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator

import pytest

from pullre.agent import listeners
from tests.agent_fixtures import Agent, AssignPr, FakeController, OriginRepo, pullre_toml


@pytest.fixture
def squatter(git_origin: OriginRepo) -> Iterator[socket.socket]:
    """This test process listening on the app's port before the deploy, as another app would."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", git_origin.port))
    held.listen()
    yield held
    held.close()


def test_a_port_already_taken_fails_the_start_step_naming_its_owner(
    agent: Agent,
    fake_controller: FakeController,
    assign_pr: AssignPr,
    squatter: socket.socket,
) -> None:
    assign_pr(51, {"README": "x\n"})
    agent.run()
    assert fake_controller.steps()[-1] == ("start", "failed")
    log = fake_controller.step_log("start", "failed")
    assert f"port {squatter.getsockname()[1]} is already in use by pid {os.getpid()}" in log
    assert "pytest" in log or sys.executable in log  # the command, when visible


def test_an_answer_from_a_process_outside_the_apps_group_is_not_health(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    # The "app" starts a server in a session of its own and sleeps: something answers on the
    # port, but not the process group pullre started.
    start = [
        "sh", "-c",
        f"setsid {sys.executable} -m http.server --bind 127.0.0.1 {git_origin.port} "
        ">/dev/null 2>&1 & exec sleep 60",
    ]  # fmt: skip
    assign_pr(52, {".pullre.toml": pullre_toml(git_origin.port, start=start, health_timeout=3)})
    try:
        agent.run()
        assert fake_controller.steps()[-1] == ("health", "failed")
        log = fake_controller.step_log("health", "failed")
        assert "not from the app pullre started" in log
        assert "http.server" in log
    finally:
        for other in listeners.on_port(git_origin.port) or []:
            if other.pid:
                os.kill(other.pid, signal.SIGKILL)


def test_the_apps_own_listener_is_recognised(
    agent: Agent, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    assign_pr(53, {"README": "y\n"})
    agent.run()
    pid = agent.app_pid()
    assert listeners.owned_by_group(git_origin.port, pid) is True
    assert [listener.pid for listener in listeners.on_port(git_origin.port) or []] == [pid]
    assert listeners.owned_by_group(git_origin.port, os.getpgrp()) is False
