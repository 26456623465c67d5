"""An agent waits on the controller for its assignment to change instead of polling each minute.

Against the real app in cheroot over a SQLite file (a second thread changes the database while
a request waits, as another replica's pass would)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from pullre.environments import tokens
from pullre.models import EnvironmentStatus, PullRequest
from pullre.servers.registry import register_server
from tests.agent_fixtures import stage_environment
from tests.web_fixtures import LiveServer, serving


@pytest.fixture
def agent_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app with one wait slot, so a second waiting agent finds none."""
    with serving(tmp_path, PULLRE_CONTROLLER_AGENT_WAIT_SLOTS="1") as server:
        yield server


def _staged(live: LiveServer, instance: str = "i-0aaaa0000bbbb1111") -> tuple[str, int]:
    with live.session_factory() as session:
        server, token = register_server(session, instance, "http://127.0.0.1:9", "box")
        environment = stage_environment(
            session, server, 7, "a" * 40, clone_url="/nowhere", status=EnvironmentStatus.READY
        )
        session.commit()
        return token, environment.pull_request_id


#: The environment token each agent (server token) was handed, presented as a real agent does.
_HELD: dict[str, str] = {}


def _ask(live: LiveServer, token: str, **query: str) -> dict[str, Any]:
    search = "&".join(f"{k}={v}" for k, v in query.items())
    headers = {"Authorization": f"Bearer {token}"}
    if token in _HELD:
        headers[tokens.HEADER] = _HELD[token]
    request = urllib.request.Request(f"{live.url}/api/agent/assignment?{search}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
    issued = (body["assignment"] or {}).get("environment_token")
    if issued:
        _HELD[token] = issued
    return body


def _push(live: LiveServer, pull_id: int, sha: str) -> None:
    with live.session_factory() as session:
        session.execute(update(PullRequest).where(PullRequest.id == pull_id).values(head_sha=sha))
        session.commit()


def test_a_waiting_agent_hears_of_a_push_within_seconds(agent_server: LiveServer) -> None:
    token, pull_id = _staged(agent_server)
    first = _ask(agent_server, token)
    assert first["assignment"]["head_sha"] == "a" * 40
    timer = threading.Timer(1.0, _push, (agent_server, pull_id, "b" * 40))
    timer.start()
    started = time.monotonic()
    answer = _ask(agent_server, token, wait="20", known=first["digest"])
    took = time.monotonic() - started
    timer.join()
    assert answer["assignment"]["head_sha"] == "b" * 40
    assert answer["digest"] != first["digest"]
    assert 0.9 <= took < 10, took  # answered after the push, long before the wait ran out


def test_without_a_change_the_wait_ends_with_the_same_digest(agent_server: LiveServer) -> None:
    token, _ = _staged(agent_server)
    first = _ask(agent_server, token)
    started = time.monotonic()
    answer = _ask(agent_server, token, wait="1.5", known=first["digest"])
    assert time.monotonic() - started >= 1.4
    assert answer["digest"] == first["digest"]
    assert answer["retry_after"] is None


def test_a_stale_digest_is_answered_at_once(agent_server: LiveServer) -> None:
    token, _ = _staged(agent_server)
    started = time.monotonic()
    answer = _ask(agent_server, token, wait="20", known="not-what-it-runs")
    assert time.monotonic() - started < 5
    assert answer["assignment"]["head_sha"] == "a" * 40


def test_past_the_wait_slots_an_agent_is_told_to_come_back(agent_server: LiveServer) -> None:
    token, _ = _staged(agent_server)
    digest = _ask(agent_server, token)["digest"]
    waiting = threading.Thread(
        target=_ask, args=(agent_server, token), kwargs={"wait": "3", "known": digest}
    )
    waiting.start()
    time.sleep(0.5)  # the first request holds the only slot
    started = time.monotonic()
    answer = _ask(agent_server, token, wait="3", known=digest)
    assert time.monotonic() - started < 2
    assert answer["retry_after"] == 5
    waiting.join()


@pytest.mark.parametrize("wait", ["-1", "61", "soon"])
def test_a_wait_out_of_bounds_is_a_400(agent_server: LiveServer, wait: str) -> None:
    token, _ = _staged(agent_server)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _ask(agent_server, token, wait=wait)
    assert refused.value.code == 400
