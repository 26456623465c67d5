"""Reports to GitHub through whole reconcile passes: real adapter, GitHub stand-in, moto, SQLite.

The agent's part (deploying, ready, failed) is driven through ``agent_reports.record_step``,
the same domain call the agent API makes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from pullre.environments.agent_reports import record_step
from pullre.github.port import GitHubError
from pullre.models import EnvironmentStatus, GithubReport, PullRequest, StepStatus, utcnow
from pullre.reconcile.run import PassReport, run_pass
from pullre.reporting import facts as report_facts
from pullre.reporting import pass_report as reporting
from pullre.reporting import verdicts
from pullre.reporting.comment import BACKTICK_STANDIN, MARKER, CommentView, code_block, link, render
from tests.github_fixtures import GITHUB_TOKEN
from tests.reconcile_fixtures import NAME, OWNER, World

PUBLIC = "https://pullre.example"


def run(world: World) -> PassReport:
    return run_pass(
        world.engine,
        world.github,
        world.ec2.adapter,
        include_drafts=False,
        lease_ttl=timedelta(seconds=60),
        public_url=PUBLIC,
    )


def report_only(world: World) -> list[str]:
    """Reporting alone, so a queued fault hits a reporting request and not the PR sync."""
    return reporting.report_changes(world.sessions, world.github, public_url=PUBLIC, clock=utcnow)


def pull_id(world: World, number: int) -> int:
    with world.sessions() as session:
        found = session.scalar(select(PullRequest.id).where(PullRequest.number == number))
        assert found is not None
        return found


def agent(world: World, number: int, *steps: tuple[str, StepStatus], log: str = "") -> None:
    """The agent of the PR's server reports ``steps`` for the PR's head sha."""
    with world.sessions() as session:
        pull = session.get(PullRequest, pull_id(world, number))
        assert pull is not None
        environment = pull.environments[-1]
        assert environment.server is not None
        for step, status in steps:
            record_step(
                session, environment.server, environment_id=environment.id,
                head_sha=pull.head_sha, step=step, status=status, log=log, clock=utcnow,
            )  # fmt: skip
        session.commit()


def deploy_ok(world: World, number: int) -> None:
    agent(
        world, number, ("fetch", StepStatus.RUNNING), ("health", StepStatus.OK),
        ("smoke", StepStatus.SKIPPED),
    )  # fmt: skip


def deployments(world: World, number: int) -> list[dict[str, Any]]:
    stored = world.standin.repo(OWNER, NAME).deployments
    return [d for d in stored if d["environment"] == f"pr-{number}"]


def statuses(world: World, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """Oldest first (the stand-in keeps them newest first, as GitHub lists them)."""
    return list(reversed(world.standin.repo(OWNER, NAME).deployment_statuses[deployment["id"]]))


def commit_statuses(world: World, sha: str) -> list[tuple[str, str]]:
    stored = world.standin.repo(OWNER, NAME).commit_statuses
    return [
        (s["state"], s["description"])
        for s in reversed(stored)
        if s["sha"] == sha and s["context"] == "pullre/deploy"
    ]


def comments(world: World, number: int) -> list[dict[str, Any]]:
    return list(world.standin.repo(OWNER, NAME).comments.get(number, []))


def the_comment(world: World, number: int) -> str:
    (comment,) = comments(world, number)
    body: str = comment["body"]
    return body


def forget_comment(world: World, number: int, remote_id: int | None) -> None:
    """As if the stored comment id were lost or wrong, with a stale digest to force a send."""
    with world.sessions() as session:
        row = session.scalars(
            select(GithubReport).where(
                GithubReport.pull_request_id == pull_id(world, number),
                GithubReport.key == "comment",
            )
        ).one()
        row.remote_id, row.digest = remote_id, ""
        session.commit()


def report_rows(world: World) -> dict[str, str | None]:
    with world.sessions() as session:
        return dict(session.execute(select(GithubReport.key, GithubReport.last_error)).all())


def drain_faults(world: World) -> None:
    """Let queued faults answer harmless reads until GitHub answers again."""
    for _ in range(100):
        try:
            world.github.get_pull(OWNER, NAME, 1)
            return
        except GitHubError:
            continue
    raise AssertionError("the stand-in kept failing")


def test_deployment_follows_the_environment_from_queue_to_release(world: World) -> None:
    world.add_repository()
    number = world.standin.open_pull(OWNER, NAME)
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    page = f"{PUBLIC}/pulls/{pull_id_after(world, number)}"

    world.add_servers(1)
    run(world)
    agent(world, number, ("fetch", StepStatus.RUNNING))
    run(world)
    agent(world, number, ("health", StepStatus.OK), ("smoke", StepStatus.SKIPPED))
    run(world)
    ready_comment = the_comment(world, number)
    world.standin.close(OWNER, NAME, number)
    run(world)
    run(world)  # the server is seen stopped: released, which GitHub was already told

    (deployment,) = deployments(world, number)
    assert (deployment["ref"], deployment["sha"]) == (sha, sha)
    assert deployment["transient_environment"] is True
    assert deployment["production_environment"] is False
    sent = statuses(world, deployment)
    assert [(s["state"], s["description"]) for s in sent] == [
        ("queued", "Waiting for a staging server"),
        ("in_progress", "Starting a staging server"),
        ("in_progress", f"Deploying {sha[:7]}"),
        ("success", f"Deployed {sha[:7]}"),
        ("inactive", "Staging environment released"),
    ]
    assert [s["environment_url"] for s in sent] == [
        "", "https://stage-1.example", "https://stage-1.example", "https://stage-1.example", "",
    ]  # fmt: skip
    assert {s["log_url"] for s in sent} == {page}
    assert f"- **Staging:** [open staging]({page}/visit) · `https://stage-1.example`" in (
        ready_comment
    )
    assert f"**Deployed:** {sha}" in ready_comment
    assert "Smoke" not in ready_comment, "a skipped smoke check is no smoke data"
    assert the_comment(world, number).startswith(f"{MARKER}\n**Staging environment:** released")


def pull_id_after(world: World, number: int) -> int:
    """The PR's id once a pass has recorded it (a pass with no server leaves it queued)."""
    run(world)
    return pull_id(world, number)


def test_far_down_the_queue_a_move_does_not_rewrite_the_comment() -> None:
    from pullre.reporting.comment import EXACT_QUEUE_PLACES, queue_text

    assert queue_text(3) == "#3 in queue"
    assert queue_text(EXACT_QUEUE_PLACES) == f"#{EXACT_QUEUE_PLACES} in queue"
    # The text, and so the comment's digest, stays the same as the queue moves far behind
    # its head: no GitHub write for the hundreds of comments there.
    assert queue_text(412) == queue_text(EXACT_QUEUE_PLACES + 1)
    assert "in queue" not in queue_text(412)


def test_a_queued_pr_shows_queued_and_its_place(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    first, second, third = (world.standin.open_pull(OWNER, NAME) for _ in range(3))
    run(world)

    (deployment,) = deployments(world, third)
    assert [(s["state"], s["environment_url"]) for s in statuses(world, deployment)] == [
        ("queued", "")
    ]
    assert "#2 in queue" in the_comment(world, third)
    assert "#1 in queue" in the_comment(world, second)
    assert "in queue" not in the_comment(world, first)

    world.standin.close(OWNER, NAME, first)
    run(world)
    run(world)  # first released; second gets the server; third moves up
    assert "#1 in queue" in the_comment(world, third)
    assert "in queue" not in the_comment(world, second)


def test_a_push_gets_a_new_deployment_and_retires_the_old_one(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    old_sha = world.standin.pull(OWNER, NAME, number).head_sha
    run(world)
    deploy_ok(world, number)
    run(world)

    new_sha = world.standin.push(OWNER, NAME, number)
    run(world)
    old, new = deployments(world, number)
    assert [s["state"] for s in statuses(world, old)][-2:] == ["success", "inactive"]
    assert new["sha"] == new_sha
    assert [(s["state"], s["description"]) for s in statuses(world, new)] == [
        ("in_progress", f"Waiting to deploy {new_sha[:7]}")
    ]
    assert "a newer commit is waiting to deploy" in the_comment(world, number)
    assert f"**Deployed:** {old_sha}" in the_comment(world, number)

    deploy_ok(world, number)
    run(world)
    assert [s["state"] for s in statuses(world, new)] == ["in_progress", "success"]
    assert len(deployments(world, number)) == 2


def test_commit_status_follows_the_head_sha(world: World) -> None:
    world.add_repository()
    number = world.standin.open_pull(OWNER, NAME)
    old_sha = world.standin.pull(OWNER, NAME, number).head_sha
    page = f"{PUBLIC}/pulls/{pull_id_after(world, number)}"
    world.add_servers(1)
    run(world)
    deploy_ok(world, number)
    run(world)
    new_sha = world.standin.push(OWNER, NAME, number)
    run(world)
    agent(world, number, ("fetch", StepStatus.RUNNING), ("build", StepStatus.FAILED), log="boom")
    run(world)

    assert commit_statuses(world, old_sha) == [
        ("pending", "Waiting for a staging server"),
        ("pending", "Starting a staging server"),
        ("success", f"Deployed {old_sha[:7]}"),
    ]
    assert commit_statuses(world, new_sha) == [
        ("pending", f"Waiting to deploy {new_sha[:7]}"),
        ("failure", f"Deploy of {new_sha[:7]} failed"),
    ]
    targets = {s["target_url"] for s in world.standin.repo(OWNER, NAME).commit_statuses}
    assert targets == {page}


def test_one_comment_whatever_happens_to_its_id(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    for _ in range(4):
        run(world)
    assert len(comments(world, number)) == 1

    forget_comment(world, number, None)  # id unknown: found by its marker
    deploy_ok(world, number)
    run(world)
    assert len(comments(world, number)) == 1
    assert "**Staging environment:** ready" in the_comment(world, number)

    forget_comment(world, number, 987654321)  # id gone: 404, then found by its marker
    run(world)
    assert len(comments(world, number)) == 1

    world.standin.repo(OWNER, NAME).comments[number].clear()  # deleted by someone on GitHub
    forget_comment(world, number, None)
    world.standin.push(OWNER, NAME, number)
    run(world)
    run(world)
    assert len(comments(world, number)) == 1
    assert "a newer commit is waiting to deploy" in the_comment(world, number)


def test_someone_elses_comment_is_not_taken_for_ours(world: World) -> None:
    world.add_repository()
    number = world.standin.open_pull(OWNER, NAME)
    world.github.create_comment(OWNER, NAME, number, "Quoting the bot:\n" + MARKER)
    run(world)

    bodies = [c["body"] for c in comments(world, number)]
    assert bodies[0] == "Quoting the bot:\n" + MARKER
    assert len(bodies) == 2
    assert bodies[1].startswith(MARKER)


def test_an_unchanged_pass_makes_no_request(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    one = world.standin.open_pull(OWNER, NAME)
    world.standin.open_pull(OWNER, NAME)
    run(world)
    deploy_ok(world, one)
    run(world)
    run(world)
    world.standin.clear_requests()

    report = run(world)

    assert report.errors == []
    assert [(r.method, r.path, r.status, r.conditional) for r in world.standin.requests] == [
        ("GET", f"/repos/{OWNER}/{NAME}/pulls", 304, True)  # the sync's free conditional GET
    ]


def test_github_down_never_blocks_assignment_and_a_later_pass_catches_up(
    world: World,
) -> None:
    world.add_repository()
    number = world.standin.open_pull(OWNER, NAME)
    run(world)
    (server,) = world.add_servers(1)
    world.standin.fail_next(100)

    report = run(world)

    assert world.active() == {number: ("provisioning", server)}
    assert any("500" in error for error in report.errors)
    errors = report_rows(world)
    assert errors["deployment-status:1"] is not None
    assert errors["comment"] is not None
    (deployment,) = deployments(world, number)
    assert [s["state"] for s in statuses(world, deployment)] == ["queued"]

    drain_faults(world)
    report = run(world)

    assert report.errors == []
    assert [s["state"] for s in statuses(world, deployment)] == ["queued", "in_progress"]
    assert "starting a staging server" in the_comment(world, number)
    assert set(report_rows(world).values()) == {None}


def test_after_a_500_only_what_was_missed_is_sent(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    run(world)
    agent(world, number, ("fetch", StepStatus.RUNNING))
    world.standin.clear_requests()
    world.standin.fail_next(1)  # the first report of the change: the deployment status

    errors = report_only(world)

    assert len(errors) == 1
    assert "deployment-status" in errors[0]
    assert "deploying" in the_comment(world, number)  # the other keys went on
    world.standin.clear_requests()

    assert report_only(world) == []
    (deployment,) = deployments(world, number)
    assert [(r.method, r.path) for r in world.standin.requests] == [
        ("POST", f"/repos/{OWNER}/{NAME}/deployments/{deployment['id']}/statuses")
    ]
    assert statuses(world, deployment)[-1]["state"] == "in_progress"
    world.standin.clear_requests()
    assert report_only(world) == []
    assert world.standin.requests == []


def test_a_rate_limit_stops_reporting_until_the_next_pass(world: World) -> None:
    world.add_repository()
    world.add_servers(2)
    one, two = world.standin.open_pull(OWNER, NAME), world.standin.open_pull(OWNER, NAME)
    run(world)
    deploy_ok(world, one)
    deploy_ok(world, two)
    world.standin.clear_requests()
    world.standin.rate_limit_next(kind="secondary")

    errors = report_only(world)

    assert len(world.standin.requests) == 1, "no request after GitHub said to back off"
    assert "429" in errors[0]
    assert report_only(world) == []
    for number in (one, two):
        assert "**Staging environment:** ready" in the_comment(world, number)


def test_a_spent_budget_leaves_the_rest_to_the_next_pass_oldest_first(world: World) -> None:
    world.add_repository()
    world.add_servers(2)
    one, two = world.standin.open_pull(OWNER, NAME), world.standin.open_pull(OWNER, NAME)
    run(world)
    deploy_ok(world, one)
    deploy_ok(world, two)

    def ready() -> list[int]:
        return [n for n in (one, two) if "environment:** ready" in the_comment(world, n)]

    # The first pass reported them in PR id order; the one reported earlier goes first now.
    earlier = min((one, two), key=lambda n: pull_id(world, n))
    reporting.report_changes(
        world.sessions, world.github, public_url=PUBLIC, clock=utcnow, budget=timedelta(0)
    )
    assert ready() == [earlier]
    reporting.report_changes(
        world.sessions, world.github, public_url=PUBLIC, clock=utcnow, budget=timedelta(0)
    )
    assert ready() == [one, two]


def test_markdown_from_github_cannot_change_the_comment(world: World) -> None:
    world.add_repository()
    world.add_servers(2)
    nasty = (
        "</details> <!-- pullre:status --> # Owned\n```\n[click](javascript:alert(1)) "
        "<img src=x onerror=alert(1)> @everyone | --- |"
    )
    plain = world.standin.open_pull(OWNER, NAME, title="Fix the cart")
    evil = world.standin.open_pull(
        OWNER, NAME, title=nasty, head_ref="x`y<b>z</b>", author="m*a*l_l_o_r_y"
    )
    run(world)
    deploy_ok(world, plain)
    deploy_ok(world, evil)
    run(world)

    body = the_comment(world, evil)
    for fragment in ("Owned", "javascript", "<img", "@everyone", "<b>", "m*a*l", "</details>"):
        assert fragment not in body
    assert body.count("<!--") == 1

    # Same structure as a plain PR's comment: only numbers (ids, shas, hosts) differ.
    def normalise(text: str) -> str:
        return re.sub(r"[0-9a-f]{40}|\d+", "N", text)

    assert normalise(body) == normalise(the_comment(world, plain))


def test_the_last_error_is_fenced_truncated_and_cannot_break_out(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    run(world)
    lines = [f"line {i} " + "." * 150 for i in range(50)]
    log = "\n".join(lines) + "\n```\n# Injected heading\n``` tail"
    agent(world, number, ("fetch", StepStatus.RUNNING), ("build", StepStatus.FAILED), log=log)
    run(world)

    body = the_comment(world, number)
    assert body.count("```") == 2, "only pullre's own fence"
    fenced = body.split("```text\n", 1)[1]
    assert fenced.endswith("\n```\n")
    assert BACKTICK_STANDIN * 3 + " tail" in fenced
    assert "# Injected heading" in fenced
    assert "line 49" in fenced
    assert "line 40 " not in fenced
    assert "truncated" in fenced
    assert "**Staging environment:** deploy failed" in body


def test_a_pr_without_an_environment_gets_no_report(world: World) -> None:
    world.add_repository(required_label="staging")
    number = world.standin.open_pull(OWNER, NAME)

    run(world)

    assert comments(world, number) == []
    assert deployments(world, number) == []
    assert world.standin.repo(OWNER, NAME).commit_statuses == []


def test_smoke_line_only_from_real_smoke_results(world: World) -> None:
    world.add_repository()
    world.add_servers(1)
    number = world.standin.open_pull(OWNER, NAME)
    run(world)
    agent(
        world, number, ("fetch", StepStatus.RUNNING), ("health", StepStatus.OK),
        ("smoke", StepStatus.OK),
    )  # fmt: skip
    run(world)

    assert "- **Smoke checks:** passed" in the_comment(world, number)


def test_render_links_only_http_urls_and_quotes_them() -> None:
    assert link("javascript:alert(1)") is None
    assert link("https://a.example/x y)(<z>`") == "<https://a.example/x%20y%29%28%3Cz%3E%60>"
    body = render(CommentView(status="ready", staging_url="ftp://x", deployed_sha="not a sha"))
    assert body == f"{MARKER}\n**Staging environment:** ready\n"


def test_code_block_keeps_the_tail_without_backticks_or_control_characters() -> None:
    assert code_block("a\x1b[31mred\x00\tz`") == f"```text\na[31mred    z{BACKTICK_STANDIN}\n```"
    block = code_block("first\n" + "x" * 5000 + "`")
    assert block.startswith("```text\n… (truncated")
    assert block.endswith(f"x{BACKTICK_STANDIN}\n```")
    assert "first" not in block
    assert block.count("`") == 6


def test_standin_auto_inactive_retires_only_non_transient_deployments(
    world: World,
) -> None:
    number = world.standin.open_pull(OWNER, NAME)
    sha = world.standin.pull(OWNER, NAME, number).head_sha
    api = f"{world.standin.url}/repos/{OWNER}/{NAME}"
    headers = {"Authorization": f"token {GITHUB_TOKEN}"}

    def deploy(transient: bool) -> int:
        body: dict[str, str | bool] = {
            "ref": sha, "environment": "qa", "transient_environment": transient,
        }  # fmt: skip
        created = requests.post(f"{api}/deployments", json=body, headers=headers, timeout=5)
        deployment_id: int = created.json()["id"]
        requests.post(
            f"{api}/deployments/{deployment_id}/statuses",
            json={"state": "success"}, headers=headers, timeout=5,
        ).raise_for_status()  # fmt: skip
        return deployment_id

    lasting, transient = deploy(False), deploy(True)
    deploy(True)

    stored = world.standin.repo(OWNER, NAME).deployment_statuses
    assert [s["state"] for s in stored[lasting]] == ["inactive", "success"]
    assert [s["state"] for s in stored[transient]] == ["success"]


@pytest.mark.parametrize(
    ("status", "redeploy", "deployed", "expected"),
    [
        ("queued", False, None, "queued"),
        ("provisioning", False, None, "in_progress"),
        ("ready", False, "head", "success"),
        ("ready", False, "old", "in_progress"),
        ("ready", True, "head", "in_progress"),
        ("failed", False, "old", "failure"),
        ("failed", True, "old", "in_progress"),
        ("releasing", False, "head", "inactive"),
        ("sleeping", False, "head", "inactive"),  # serves nothing while its data is kept
    ],
)
def test_deployment_state_is_the_head_shas(
    status: str, redeploy: bool, deployed: str | None, expected: str
) -> None:
    env = report_facts.EnvironmentFacts(
        id=1, status=EnvironmentStatus(status), staging_url="", deployed_sha=deployed,
        redeploy_requested=redeploy, last_error=None, queue_position=None, smoke=None,
    )  # fmt: skip
    assert verdicts.deployment_state(env, "head") == expected
