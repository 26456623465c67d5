"""What the agent refuses: PR data never reaches a shell, bad shas and URLs never reach git."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pullre.agent import deploy
from tests.agent_fixtures import (
    ENVIRONMENT_TOKEN,
    TOKEN,
    Agent,
    AssignPr,
    Box,
    FakeController,
    OriginRepo,
    pullre_toml,
)


def test_shell_metacharacters_in_pr_metadata_never_reach_a_shell(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    build = "echo building > built.txt"  # a shell command line of the repository's own
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port, build=build)})
    git_origin.open_pr(30, sha)
    fake_controller.assignment = git_origin.assignment(
        30,
        sha,
        head_ref=f"x; touch {marker}",
        repository=f"acme/$(touch {marker})`touch {marker}`",
    )

    assert agent.run() == 0

    assert ("health", "ok") in fake_controller.steps()
    assert agent.get(git_origin.port, "/built") == "building\n"
    assert not marker.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"head_sha": "HEAD"},
        {"head_sha": "--upload-pack=touch {marker}"},
        {"head_sha": "A" * 40},
        {"head_sha": "0" * 39 + " "},
        {"pr_number": "30; touch {marker}"},
        {"pr_number": True},
        {"pr_number": 0},
        {"environment_id": "7"},
        {"clone_url": "--upload-pack=touch {marker}"},
        {"clone_url": "ext::sh -c touch% {marker}"},
        {"environment_token": "abcdefghijklmnopqrstuvwxyz\r\nX-Injected: {marker}"},
        {"environment_token": 42},
    ],
)
def test_an_assignment_with_a_bad_field_is_refused_before_git_runs(
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    tmp_path: Path,
    overrides: dict[str, Any],
) -> None:
    marker = tmp_path / "pwned"
    sha = git_origin.commit({"README": "x\n"})
    git_origin.open_pr(30, sha)
    bad = {
        key: value.format(marker=marker) if isinstance(value, str) else value
        for key, value in overrides.items()
    }
    fake_controller.assignment = git_origin.assignment(30, sha, **bad)

    assert agent.run() == 1

    assert [r.path for r in fake_controller.requests] == ["/api/agent/assignment"]
    assert not (agent.settings.workdir / "repo.git").exists()
    assert not marker.exists()


def test_a_sha_missing_from_the_pr_ref_fails_checkout(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    sha = git_origin.commit({"README": "x\n"})
    git_origin.open_pr(31, sha)
    elsewhere = "1" * 40
    fake_controller.assignment = git_origin.assignment(31, elsewhere)

    agent.run()

    assert fake_controller.steps()[-1] == ("checkout", "failed")
    assert "not in the fetched PR ref" in fake_controller.step_log("checkout", "failed")


def test_a_chatty_build_sends_only_the_last_64_kib(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo
) -> None:
    build = (
        "i=0; while [ $i -lt 4000 ]; do echo line $i of a very chatty build step....; "
        "i=$((i+1)); done; exit 4"
    )
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port, build=build)})
    git_origin.open_pr(32, sha)
    fake_controller.assignment = git_origin.assignment(32, sha)

    agent.run()

    text = fake_controller.step_log("build", "failed")
    assert len(text.encode()) <= 64 * 1024
    assert "line 3999 of a very chatty build" in text
    assert "line 0 of" not in text
    assert text.rstrip().endswith("exit status 4")


def test_the_agent_reports_with_the_environment_token_and_forgets_it_at_release(
    agent: Agent, fake_controller: FakeController, assign_pr: AssignPr
) -> None:
    assign_pr(32, {"README": "x\n"})
    assert agent.run() == 0
    reports = [r for r in fake_controller.requests if r.path != "/api/agent/assignment"]
    assert reports
    assert {r.environment_token for r in reports} == {ENVIRONMENT_TOKEN}
    assert agent.state().environment_token == ENVIRONMENT_TOKEN

    fake_controller.assignment = None  # released
    fake_controller.clear()
    assert agent.run() == 0
    assert agent.state().environment_token is None
    heartbeat = [r for r in fake_controller.requests if r.path == "/api/agent/heartbeat"]
    assert [(r.body["environment_id"], r.environment_token) for r in heartbeat] == [(None, "")]


def test_the_state_file_holding_the_token_is_the_agents_alone(
    agent: Agent, assign_pr: AssignPr
) -> None:
    assign_pr(33, {"README": "y\n"})
    assert agent.run() == 0
    path = agent.settings.workdir / "state.json"
    assert ENVIRONMENT_TOKEN in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_hook_planted_in_the_agents_repository_never_runs(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, tmp_path: Path
) -> None:
    # Run as the agent's own user (allow_same_user), the build can write the repository; git's
    # reference-transaction hook would run on the next fetch, as the agent.
    marker = tmp_path / "hook-ran"
    hooks = agent.settings.workdir / "repo.git" / "hooks"
    hook = hooks / "reference-transaction"
    plant = f"printf '#!/bin/sh\\ntouch {marker}\\n' > {hook} && chmod +x {hook}"
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port, build=plant)})
    git_origin.open_pr(34, sha)
    fake_controller.assignment = git_origin.assignment(34, sha)
    agent.run()
    assert hook.is_file()

    sha = git_origin.commit({"README": "a push to the same PR\n"})
    git_origin.open_pr(34, sha)
    fake_controller.assignment = git_origin.assignment(34, sha)
    agent.run()

    assert fake_controller.steps()[-1] == ("smoke", "skipped")  # deployed to the end
    assert not marker.exists()


@pytest.mark.parametrize("case", ["no such user", "ini open to others"])
def test_an_agent_that_cannot_separate_pr_code_runs_none(
    case: str, box: Box, fake_controller: FakeController, assign_pr: AssignPr
) -> None:
    settings = box.settings(fake_controller.url, TOKEN)
    if case == "no such user":
        settings = replace(settings, app_user="pullre-nobody-here")
    else:
        box.ini.chmod(0o644)
    assign_pr(35, {"README": "x\n"})

    assert deploy.run_pass(settings, environ={}) == 1

    assert fake_controller.steps() == []
    assert not (box.workdir / "repo.git").exists()
    assert fake_controller.heartbeats()[-1]["runs_as"] == "refused"
