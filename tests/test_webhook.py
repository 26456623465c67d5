"""``POST /webhook/github`` end to end: GitHub's real payloads, re-signed, against a whole world.

The app runs on the world's own database (a pass commits in sessions of its own), the nudged
passes talk to the GitHub stand-in and moto over HTTP, exactly as a cron pass does.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from pullre.accounts import user_accounts as accounts
from pullre.clock import system_clock
from pullre.config import Settings
from pullre.github.port import GitHub
from pullre.github.standin.state import iso
from pullre.models import (
    Environment,
    Event,
    PullRequest,
    PullRequestState,
    Role,
    WebhookDelivery,
)
from pullre.reconcile import lease
from pullre.reconcile.nudge import Nudger
from pullre.web import create_app
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.web_fixtures import PASSWORD, log_in, make_settings

SECRET = "test-webhook-secret-4f1c"
#: Real deliveries as GitHub sends them, kept in the repository so a clean clone tests with them.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github-webhooks"
WAIT = 30.0


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload_for(
    world: World, action: str, number: int, *, owner: str = OWNER, name: str = NAME
) -> dict[str, Any]:
    """GitHub's example for ``action``, moved onto ``owner/name`` and the stand-in's PR."""
    payload = copy.deepcopy(fixture(f"pull_request.{action}"))
    for repo in (payload["repository"], payload["pull_request"]["base"]["repo"]):
        repo["name"], repo["full_name"] = name, f"{owner}/{name}"
        repo["owner"]["login"] = owner
    head = payload["pull_request"]["head"]
    head["repo"] = copy.deepcopy(payload["repository"])
    payload["number"] = payload["pull_request"]["number"] = number
    if (owner, name) == (OWNER, NAME):
        pull = world.standin.pull(owner, name, number)
        head["sha"], head["ref"] = pull.head_sha, pull.head_ref
        payload["pull_request"]["title"] = pull.title
        payload["pull_request"]["created_at"] = iso(pull.created_at)
        payload["pull_request"]["updated_at"] = iso(pull.updated_at)
    return payload


@dataclass
class Hook:
    """The app under test, its nudger, and the gate that holds the nudged pass back."""

    world: World
    app: Flask
    client: FlaskClient
    nudger: Nudger
    gate: threading.Event
    github_builds: list[int]

    def post(
        self,
        event: str,
        payload: Any,
        *,
        delivery: str | None = None,
        secret: str = SECRET,
        signature: str | None = None,
        client: FlaskClient | None = None,
        content_type: str = "application/json",
    ) -> TestResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature if signature is not None else sign(body, secret),
            "User-Agent": "GitHub-Hookshot/test",
        }
        return (client or self.client).post(
            "/webhook/github", data=body, headers=headers, content_type=content_type
        )

    def pull(self, number: int) -> PullRequest | None:
        with self.world.sessions() as session:
            return session.scalar(select(PullRequest).where(PullRequest.number == number))

    def count(self, model: type[Any], *where: Any) -> int:
        with self.world.sessions() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def world_settings(world: World, tmp_path: Path, **environ: str) -> Settings:
    url = world.engine.url.render_as_string(hide_password=False)
    return make_settings(url, tmp_path, **environ)


def make_nudger(
    world: World, settings: Settings, gate: threading.Event, builds: list[int]
) -> Nudger:
    def github() -> GitHub:
        builds.append(1)
        assert gate.wait(WAIT), "the test never opened the gate"
        return world.github

    return Nudger(settings, world.engine, github=github, ec2=lambda: world.ec2.adapter)


@pytest.fixture
def hook(world: World, tmp_path: Path) -> Iterator[Hook]:
    settings = world_settings(world, tmp_path, PULLRE_GITHUB_WEBHOOK_SECRET=SECRET)
    gate = threading.Event()
    gate.set()
    builds: list[int] = []
    nudger = make_nudger(world, settings, gate, builds)
    app = create_app(settings, session_factory=world.sessions, nudger=nudger)
    yield Hook(world, app, app.test_client(), nudger, gate, builds)
    gate.set()
    nudger.close()


def opened(hook: Hook, **pull: Any) -> int:
    """A PR opened on the stand-in and announced by its webhook; the pass is left to run."""
    number = hook.world.standin.open_pull(OWNER, NAME, **pull)
    response = hook.post("pull_request", payload_for(hook.world, "opened", number))
    assert response.status_code == 202, response.get_json()
    return number


# -- authentication --------------------------------------------------------------------------


def test_without_a_secret_every_delivery_is_refused(world: World, tmp_path: Path) -> None:
    app = create_app(world_settings(world, tmp_path), session_factory=world.sessions)
    client = app.test_client()
    body = json.dumps(fixture("ping")).encode()
    for signature in (sign(body), sign(body, ""), ""):
        response = client.post(
            "/webhook/github",
            data=body,
            content_type="application/json",
            headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature},
        )
        assert response.status_code == 403
        assert "not configured" in response.get_json()["error"]


def test_bad_or_missing_signature_is_401_and_records_nothing(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    body = json.dumps(payload).encode()
    tampered = body.replace(b'"opened"', b'"closed"', 1)
    for signature in (
        sign(body, "not-the-secret"),
        "",
        sign(body).replace("sha256=", "sha1="),
        sign(body)[:-1],
    ):
        response = hook.post("pull_request", payload, signature=signature)
        assert response.status_code == 401, signature
        assert "signature" in response.get_json()["error"].lower()
    assert hook.post("pull_request", tampered, signature=sign(body)).status_code == 401
    assert hook.pull(number) is None
    assert hook.count(WebhookDelivery) == 0
    assert hook.nudger.nudges == 0


def test_good_ping_answers_ok_without_login_or_csrf_token(hook: Hook) -> None:
    response = hook.post("ping", fixture("ping"))
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    assert hook.nudger.nudges == 0


# -- GitHub's default content type: a form with a ``payload`` field ---------------------------

FORM = "application/x-www-form-urlencoded"


def form(payload: Any) -> bytes:
    """The body GitHub sends with content type ``application/x-www-form-urlencoded``."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_form_deliveries_are_recorded_like_json_ones(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME, title="Form-encoded")

    assert hook.post("ping", form(fixture("ping")), content_type=FORM).status_code == 200
    opened = hook.post(
        "pull_request", form(payload_for(hook.world, "opened", number)), content_type=FORM
    )
    assert opened.status_code == 202, opened.get_json()
    pull = hook.pull(number)
    assert pull is not None
    assert pull.title == "Form-encoded"

    new_sha = hook.world.standin.push(OWNER, NAME, number)
    pushed = payload_for(hook.world, "synchronize", number)
    assert hook.post("pull_request", form(pushed), content_type=FORM).status_code == 202
    pull = hook.pull(number)
    assert pull is not None
    assert pull.head_sha == new_sha
    assert hook.count(WebhookDelivery) == 2


def test_a_form_is_signed_over_its_raw_body(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    body = form(payload)

    for signature in (sign(json.dumps(payload).encode()), sign(body, "not-the-secret")):
        response = hook.post("pull_request", body, signature=signature, content_type=FORM)
        assert response.status_code == 401
    tampered = body.replace(b"opened", b"closed", 1)
    refused = hook.post("pull_request", tampered, signature=sign(body), content_type=FORM)
    assert refused.status_code == 401
    assert hook.pull(number) is None
    assert hook.count(WebhookDelivery) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"action=opened", 400),
        (b"payload=%7Bnot+json", 400),
        (b"payload=1&payload=2", 400),
        (b"payload=%FF%FE", 400),
    ],
    ids=["no-payload", "not-json", "two-payloads", "not-utf8"],
)
def test_a_malformed_form_is_400_and_records_nothing(hook: Hook, body: bytes, status: int) -> None:
    hook.world.add_repository()
    response = hook.post("pull_request", body, content_type=FORM)
    assert response.status_code == status
    assert response.get_json()["error"]
    assert hook.count(WebhookDelivery) == 0
    assert hook.nudger.nudges == 0


def test_another_content_type_is_415_naming_both_accepted_ones(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    body = json.dumps(payload_for(hook.world, "opened", number)).encode()
    response = hook.post("pull_request", body, content_type="text/plain")
    assert response.status_code == 415
    assert FORM in response.get_json()["error"]
    assert hook.pull(number) is None


# -- pull request events ---------------------------------------------------------------------


def test_opened_is_recorded_at_once_and_the_pass_runs_in_the_background(hook: Hook) -> None:
    hook.world.add_repository()
    (server,) = hook.world.add_servers(1)
    hook.gate.clear()  # the nudged pass cannot get past building its GitHub adapter

    number = opened(hook, title="Add the basket")

    # Answered while the pass is still held back: it never ran in the request thread.
    pull = hook.pull(number)
    assert pull is not None
    assert (pull.title, pull.state) == ("Add the basket", PullRequestState.OPEN)
    assert hook.world.environments() == {}
    assert not hook.nudger.wait_idle(0.2)
    assert hook.count(Event, Event.kind == "webhook") == 1

    hook.gate.set()
    assert hook.nudger.wait_idle(WAIT)
    assert hook.world.environments() == {number: ("provisioning", server)}
    assert hook.world.states() == {server: "running"}
    assert hook.nudger.passes == 1


def test_synchronize_updates_the_head_sha_and_asks_a_redeploy(hook: Hook) -> None:
    hook.world.add_repository()
    hook.world.add_servers(1)
    number = opened(hook)
    assert hook.nudger.wait_idle(WAIT)
    new_sha = hook.world.standin.push(OWNER, NAME, number)

    response = hook.post("pull_request", payload_for(hook.world, "synchronize", number))

    assert response.status_code == 202
    pull = hook.pull(number)
    assert pull is not None
    assert pull.head_sha == new_sha
    with hook.world.sessions() as session:
        environment = session.scalar(select(Environment))
        assert environment is not None
        assert environment.deploy_requested_at is not None
    assert hook.count(Event, Event.kind == "pushed") == 1
    assert hook.nudger.wait_idle(WAIT)
    assert hook.nudger.passes == 2


def test_closed_hands_the_server_to_the_queued_pr_without_waiting_for_cron(hook: Hook) -> None:
    hook.world.add_repository()
    (server,) = hook.world.add_servers(1)
    number = opened(hook)
    assert hook.nudger.wait_idle(WAIT)
    assert hook.world.active() == {number: ("provisioning", server)}
    waiting = opened(hook)
    assert hook.nudger.wait_idle(WAIT)
    assert hook.world.active()[waiting] == ("queued", None)
    hook.world.standin.close(OWNER, NAME, number)

    response = hook.post("pull_request", payload_for(hook.world, "closed", number))

    assert response.status_code == 202
    pull = hook.pull(number)
    assert pull is not None
    assert pull.state is PullRequestState.CLOSED
    # The close's pass stops the instance; the passes that follow it (not the next webhook or
    # cron pass) see it stopped, free the server and start it for the queued PR.
    assert hook.nudger.wait_idle(WAIT)
    assert hook.world.active() == {waiting: ("provisioning", server)}
    assert hook.world.states() == {server: "running"}
    assert hook.nudger.passes >= 4


def test_a_repeated_delivery_is_recorded_once_and_nudges_once(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    delivery = str(uuid.uuid4())

    first = hook.post("pull_request", payload, delivery=delivery)
    again = hook.post("pull_request", payload, delivery=delivery)

    assert first.status_code == 202
    assert (again.status_code, again.get_json()) == (200, {"duplicate": True})
    assert hook.count(WebhookDelivery, WebhookDelivery.delivery_id == delivery) == 1
    assert hook.count(Event, Event.kind == "webhook") == 1
    assert hook.nudger.nudges == 1


def test_two_copies_racing_are_recorded_once(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    delivery = str(uuid.uuid4())
    start = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        client = hook.app.test_client()
        start.wait()
        response = hook.post("pull_request", payload, delivery=delivery, client=client)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)

    assert sorted(statuses) == [200, 202]
    assert hook.count(WebhookDelivery) == 1
    assert hook.count(PullRequest) == 1
    assert hook.nudger.nudges == 1


def test_an_older_payload_does_not_roll_the_pr_back(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    stale = payload_for(hook.world, "opened", number)
    stale["pull_request"]["updated_at"] = "2019-05-15T15:20:33Z"  # GitHub's times are whole seconds
    new_sha = hook.world.standin.push(OWNER, NAME, number)
    assert (
        hook.post("pull_request", payload_for(hook.world, "synchronize", number)).status_code == 202
    )

    response = hook.post("pull_request", stale)  # delivered late

    assert response.status_code == 202
    assert "older" in response.get_json()["ignored"]
    pull = hook.pull(number)
    assert pull is not None
    assert pull.head_sha == new_sha
    assert hook.count(Event, Event.kind == "webhook.stale") == 1
    assert hook.nudger.nudges == 1


@pytest.mark.parametrize("registered", [False, True])
def test_unregistered_or_disabled_repository_is_ignored(hook: Hook, registered: bool) -> None:
    if registered:
        hook.world.add_repository("acme", "legacy", enabled=False)
    response = hook.post("pull_request", payload_for(hook.world, "opened", 7, name="legacy"))

    assert response.status_code == 202
    assert "acme/legacy" in response.get_json()["ignored"]
    assert hook.count(PullRequest) == 0
    assert hook.count(WebhookDelivery) == 0
    assert hook.nudger.nudges == 0


def test_registered_name_matches_whatever_case_github_sends(hook: Hook) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    payload["repository"]["owner"]["login"] = OWNER.upper()

    assert hook.post("pull_request", payload).status_code == 202
    assert hook.pull(number) is not None


@pytest.mark.parametrize(("event", "action"), [("issues", "opened"), ("pull_request", "assigned")])
def test_other_events_and_actions_are_ignored(hook: Hook, event: str, action: str) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)
    payload = payload_for(hook.world, "opened", number)
    payload["action"] = action

    response = hook.post(event, payload)

    assert response.status_code == 202
    assert "not handled" in response.get_json()["ignored"]
    assert hook.pull(number) is None
    assert hook.nudger.nudges == 0


def _without_head(payload: dict[str, Any]) -> dict[str, Any]:
    del payload["pull_request"]["head"]
    return payload


def _bad_time(payload: dict[str, Any]) -> dict[str, Any]:
    payload["pull_request"]["updated_at"] = "yesterday"
    return payload


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p: b"{not json",
        lambda p: b"\xff\xfe",
        lambda p: [p],
        lambda p: {k: v for k, v in p.items() if k != "pull_request"},
        lambda p: {k: v for k, v in p.items() if k != "repository"},
        _without_head,
        _bad_time,
    ],
    ids=["not-json", "not-utf8", "array", "no-pr", "no-repo", "no-head", "bad-time"],
)
def test_malformed_body_is_400_and_records_nothing(
    hook: Hook, spoil: Callable[[dict[str, Any]], Any]
) -> None:
    hook.world.add_repository()
    number = hook.world.standin.open_pull(OWNER, NAME)

    response = hook.post("pull_request", spoil(payload_for(hook.world, "opened", number)))

    assert response.status_code == 400
    assert response.get_json()["error"]
    assert hook.count(PullRequest) == 0
    assert hook.count(WebhookDelivery) == 0
    assert hook.nudger.nudges == 0


def test_html_in_the_title_is_stored_and_shown_as_text(hook: Hook) -> None:
    hook.world.add_repository()
    title = '<script>alert("x")</script> & <b>bold</b>'
    number = opened(hook, title=title)

    pull = hook.pull(number)
    assert pull is not None
    assert pull.title == title
    assert hook.nudger.wait_idle(WAIT)  # the pass shows the PR on the dashboard too
    with hook.world.sessions() as session:
        accounts.create_user(session, "viewer", PASSWORD, Role.MEMBER)
        session.commit()
    viewer = hook.app.test_client()
    log_in(viewer, "viewer")
    page = viewer.get("/").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert(" not in page


# -- the nudger ------------------------------------------------------------------------------


def test_nudges_during_a_pass_coalesce_into_one_more_pass(hook: Hook) -> None:
    hook.gate.clear()
    hook.nudger.nudge("first")
    assert not hook.nudger.wait_idle(0.2)  # the first pass is running, held at the gate
    for index in range(5):
        hook.nudger.nudge(f"while running {index}")

    hook.gate.set()

    assert hook.nudger.wait_idle(WAIT)
    assert hook.nudger.passes == 2
    assert hook.nudger.nudges == 6
    assert hook.nudger.last_report is not None
    assert not hook.nudger.last_report.skipped


def test_adapters_that_cannot_be_built_are_logged_and_tried_again(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def broken() -> GitHub:
        attempts.append(1)
        raise RuntimeError("no GitHub credentials")

    nudger = Nudger(
        world_settings(world, tmp_path), world.engine, github=broken, ec2=lambda: world.ec2.adapter
    )
    try:
        nudger.nudge()
        assert nudger.wait_idle(WAIT)
        nudger.nudge()
        assert nudger.wait_idle(WAIT)
    finally:
        nudger.close()
    assert len(attempts) == 2
    assert nudger.last_report is None
    assert "cannot build the GitHub/EC2 adapters" in caplog.text


def test_a_pass_that_finds_the_lease_held_is_tried_again(world: World, tmp_path: Path) -> None:
    held = lease.try_acquire(world.engine, "reconcile", "cron", timedelta(seconds=60), system_clock)
    assert held is not None
    nudger = Nudger(
        world_settings(world, tmp_path),
        world.engine,
        github=lambda: world.github,
        ec2=lambda: world.ec2.adapter,
        skipped_retry_delay=0.2,
        skipped_retries=50,
    )
    try:
        nudger.nudge()
        assert not nudger.wait_idle(0.3)
        held.release()
        assert nudger.wait_idle(WAIT)
    finally:
        nudger.close()
    assert nudger.last_report is not None
    assert not nudger.last_report.skipped
