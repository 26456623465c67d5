"""``/metrics``: refused without its token, and the numbers match the database and a real pass."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from pullre.cost.pricing import month_start
from pullre.models import (
    DeployStep,
    Environment,
    EnvironmentStatus,
    PassRun,
    PullRequest,
    Repository,
    RunningSpan,
    Server,
    StepStatus,
    utcnow,
)
from pullre.overview.metrics import Metric, escape_label_value, exposition, render
from pullre.web import create_app
from tests.reconcile_fixtures import NAME, OWNER, World
from tests.web_fixtures import make_settings

TOKEN = "metrics-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """A small parser of the text format: samples by (name, labels), and each metric's TYPE.

    It insists that HELP and TYPE come before a metric's samples, as the format requires.
    """
    samples: Samples = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge"}, line
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        assert name in types, f"{name} has no TYPE line before its samples"
        assert name in helped, f"{name} has no HELP line before its samples"
        labels: list[tuple[str, str]] = []
        if label_text:
            consumed = 0
            for label in _LABEL.finditer(label_text):
                assert label.start() == consumed, f"bad labels in {line!r}"
                raw = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], label.group(2))
                labels.append((label.group(1), raw))
                consumed = label.end()
            assert consumed == len(label_text), f"bad labels in {line!r}"
        key = (name, frozenset(labels))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(client: FlaskClient) -> tuple[Samples, dict[str, str]]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


@pytest.fixture
def metrics_client(
    db_url: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> FlaskClient:
    settings = make_settings(db_url, tmp_path, PULLRE_CONTROLLER_METRICS_TOKEN=TOKEN)
    return create_app(settings, session_factory=session_factory).test_client()


def test_metrics_are_refused_when_no_token_is_configured(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 403
        assert response.get_data(as_text=True).strip() == "metrics are not configured"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer é"],
)
def test_metrics_need_the_right_bearer_token(
    metrics_client: FlaskClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = metrics_client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "pullre_" not in response.get_data(as_text=True)


def test_metrics_endpoint_needs_no_login_session_or_csrf(metrics_client: FlaskClient) -> None:
    samples, _ = scrape(metrics_client)  # no login: the token alone is enough
    assert value(samples, "pullre_passes_total") == 0


def _seed(session: Session) -> None:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    states = ["running", "running", "pending", "stopping", "stopped", "running"]
    servers = [
        Server(instance_id=f"i-{n:017x}", observed_state=state, in_pool=n != 5)
        for n, state in enumerate(states)
    ]
    session.add_all(servers)
    session.flush()
    statuses: list[tuple[EnvironmentStatus, Server | None]] = [
        (EnvironmentStatus.READY, servers[0]),
        (EnvironmentStatus.PROVISIONING, servers[2]),
        (EnvironmentStatus.RELEASING, servers[3]),
        (EnvironmentStatus.QUEUED, None),
        (EnvironmentStatus.QUEUED, None),
        (EnvironmentStatus.RELEASED, None),
        (EnvironmentStatus.RELEASED, None),
        (EnvironmentStatus.READY, servers[5]),  # a server taken out of the pool
    ]
    for number, (status, server) in enumerate(statuses, start=1):
        pull = PullRequest(repository_id=repo.id, number=number)
        session.add(pull)
        session.flush()
        session.add(
            Environment(
                pull_request_id=pull.id,
                status=status,
                server_id=server.id if server else None,
            )
        )
    session.flush()
    environment_id = session.query(Environment.id).first()
    assert environment_id is not None
    steps = [
        ("fetch", StepStatus.OK),
        ("health", StepStatus.OK),
        ("health", StepStatus.OK),
        ("health", StepStatus.RUNNING),
        ("build", StepStatus.FAILED),
        ("health", StepStatus.FAILED),
        ("smoke", StepStatus.SKIPPED),
    ]
    session.add_all(
        DeployStep(environment_id=environment_id[0], head_sha="a" * 40, step=step, status=status)
        for step, status in steps
    )
    started = utcnow() - timedelta(minutes=3)
    passes = [
        (120, 40, 30, 4100, 9),
        (80, 3, 1, 4090, 2),
        (1500, 7, 2, None, 3),
    ]
    for index, (duration, requests, not_modified, remaining, ec2) in enumerate(passes):
        session.add(
            PassRun(
                started_at=started + timedelta(minutes=index),
                duration_ms=duration,
                github_requests=requests,
                github_not_modified=not_modified,
                rate_limit_remaining=remaining,
                ec2_calls=ec2,
            )
        )
    session.commit()


def test_metrics_match_a_seeded_database(metrics_client: FlaskClient, session: Session) -> None:
    _seed(session)
    last_started = utcnow() - timedelta(minutes=1)

    samples, types = scrape(metrics_client)

    assert value(samples, "pullre_pool_servers") == 5
    assert value(samples, "pullre_servers_busy") == 3  # ready, provisioning, releasing
    assert value(samples, "pullre_servers_free") == 2
    assert value(samples, "pullre_servers_starting") == 1
    assert value(samples, "pullre_servers_stopping") == 1
    assert value(samples, "pullre_queue_length") == 2
    by_status = {
        dict(labels)["status"]: v
        for (name, labels), v in samples.items()
        if name == "pullre_environments"
    }
    assert by_status == {
        "queued": 2,
        "provisioning": 1,
        "deploying": 0,
        "ready": 2,
        "failed": 0,
        "sleeping": 0,
        "releasing": 1,
    }
    assert value(samples, "pullre_passes_total") == 3
    assert value(samples, "pullre_github_requests_total") == 50
    assert value(samples, "pullre_github_not_modified_total") == 33
    assert value(samples, "pullre_ec2_calls_total") == 14
    assert value(samples, "pullre_github_rate_limit_remaining") == 4090  # the last one known
    assert value(samples, "pullre_last_pass_duration_seconds") == 1.5
    ended = value(samples, "pullre_last_pass_timestamp_seconds")
    assert abs(ended - (last_started.timestamp() + 1.5)) < 5
    assert value(samples, "pullre_deploys_total", result="ok") == 2
    assert value(samples, "pullre_deploys_total", result="failed") == 2
    assert {n for n, kind in types.items() if kind == "counter"} == {
        "pullre_passes_total",
        "pullre_github_requests_total",
        "pullre_github_not_modified_total",
        "pullre_ec2_calls_total",
        "pullre_deploys_total",
    }
    assert all(name.startswith("pullre_") for name in types)


def test_an_empty_database_has_no_invented_pass_figures(metrics_client: FlaskClient) -> None:
    samples, types = scrape(metrics_client)
    names = {name for name, _ in samples}
    # "Never measured" must not read as "rate limit exhausted" or "last pass in 1970".
    assert "pullre_github_rate_limit_remaining" not in names
    assert "pullre_last_pass_timestamp_seconds" not in names
    assert "pullre_last_pass_duration_seconds" not in names
    assert value(samples, "pullre_pool_servers") == 0
    assert value(samples, "pullre_environments", status="queued") == 0
    assert value(samples, "pullre_deploys_total", result="failed") == 0
    assert len(types) == 15  # the three above are declared only with a sample
    assert value(samples, "pullre_pinned_environments") == 0
    assert not [n for n, _ in samples if n.endswith("_month_to_date")], "no repository yet"


def test_label_values_are_escaped_and_parse_back() -> None:
    nasty = 'a\\b "quoted"\nnext line'
    assert escape_label_value(nasty) == 'a\\\\b \\"quoted\\"\\nnext line'
    text = render(
        [Metric("pullre_x", "gauge", "Help with \\ and\nnewline.", [({"v": nasty}, 2.5)])]
    )
    assert text.count("\n") == 3  # HELP, TYPE, one sample: the newlines are escaped
    samples, _ = parse(text)
    assert value(samples, "pullre_x", v=nasty) == 2.5


@pytest.fixture
def world_client(world: World, tmp_path: Path) -> FlaskClient:
    url = str(world.engine.url)
    settings = make_settings(url, tmp_path, PULLRE_CONTROLLER_METRICS_TOKEN=TOKEN)
    app: Flask = create_app(settings, session_factory=world.sessions)
    return app.test_client()


def test_metrics_after_a_real_pass(world: World, world_client: FlaskClient) -> None:
    world.add_repository()
    first, second = world.add_servers(2)
    for number in range(3):
        world.standin.open_pull(OWNER, NAME, title=f"PR {number}")
    requests_before = world.github.stats.requests
    ec2_before = sum(world.ec2.adapter.calls.values())

    report = world.run()

    assert sorted(report.started) == sorted([first, second])
    samples, _ = scrape(world_client)
    assert value(samples, "pullre_passes_total") == 1
    assert value(samples, "pullre_github_requests_total") == (
        world.github.stats.requests - requests_before
    )
    assert value(samples, "pullre_github_requests_total") > 0
    assert value(samples, "pullre_ec2_calls_total") == (
        sum(world.ec2.adapter.calls.values()) - ec2_before
    )
    assert value(samples, "pullre_servers_busy") == 2
    assert value(samples, "pullre_servers_free") == 0
    assert value(samples, "pullre_queue_length") == 1
    assert value(samples, "pullre_environments", status="provisioning") == 2
    assert value(samples, "pullre_github_rate_limit_remaining") == (
        world.github.stats.rate_limit_remaining
    )
    assert abs(value(samples, "pullre_last_pass_timestamp_seconds") - time.time()) < 60

    world.run()
    samples, _ = scrape(world_client)
    assert value(samples, "pullre_passes_total") == 2
    assert value(samples, "pullre_github_not_modified_total") >= 1


NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def _at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _seed_policies(session: Session) -> None:
    """Two repositories, a pinned PR, a sleeping one, and running spans around this month."""
    shop, web = Repository(owner="acme", name="shop"), Repository(owner="acme", name="web")
    session.add_all([shop, web])
    server = Server(instance_id="i-00000000000000001")
    session.add(server)
    session.flush()
    rows: list[tuple[Repository, EnvironmentStatus, bool]] = [
        (shop, EnvironmentStatus.READY, True),  # pinned, active: counted
        (shop, EnvironmentStatus.SLEEPING, False),
        (shop, EnvironmentStatus.RELEASED, True),  # pinned, but its stay is over
        (web, EnvironmentStatus.SLEEPING, False),
    ]
    environments = []
    for number, (repo, status, pinned) in enumerate(rows, start=1):
        pull = PullRequest(
            repository_id=repo.id, number=number, pinned_by="alice" if pinned else None,
            pinned_reason="demo" if pinned else None, pinned_at=NOW if pinned else None,
        )  # fmt: skip
        session.add(pull)
        session.flush()
        environment = Environment(pull_request_id=pull.id, status=status)
        session.add(environment)
        session.flush()
        environments.append(environment.id)
    ready, sleeping, released, _ = environments
    spans = [
        (ready, _at(31, 22, month=10), _at(1, 2), "0.50"),  # 2 h of it in November: 1.00
        (sleeping, _at(10), None, "0.25"),  # still running: 132 h up to NOW, 33.00
        (released, _at(2), _at(2, 3), None),  # 3 h at no known price
        (None, _at(3), _at(3, 1), "1.00"),  # an orphan: nobody's PR
        (ready, _at(1, month=9), _at(2, month=9), "9.00"),  # another month
    ]
    session.add_all(
        RunningSpan(
            server_id=server.id,
            environment_id=environment_id,
            started_at=start,
            ended_at=end,
            hourly_price=Decimal(price) if price else None,
        )
        for environment_id, start, end, price in spans
    )
    session.commit()


def test_policy_and_cost_metrics_match_a_seeded_database(session: Session) -> None:
    _seed_policies(session)

    samples, types = parse(exposition(session, currency="EUR", now=NOW))

    assert value(samples, "pullre_pinned_environments") == 1
    assert value(samples, "pullre_environments", status="sleeping") == 2
    cost = {
        dict(labels)["repository"]: (dict(labels)["currency"], v)
        for (name, labels), v in samples.items()
        if name == "pullre_cost_month_to_date"
    }
    assert cost == {"acme/shop": ("EUR", 34.0), "acme/web": ("EUR", 0.0), "(no PR)": ("EUR", 1.0)}
    hours = {
        dict(labels)["repository"]: v
        for (name, labels), v in samples.items()
        if name == "pullre_running_hours_month_to_date"
    }
    assert hours == {"acme/shop": 137.0, "acme/web": 0.0, "(no PR)": 1.0}
    assert types["pullre_cost_month_to_date"] == "gauge", "it starts again at 0 each month"


def test_the_scrape_prices_in_the_configured_currency(
    db_url: str, tmp_path: Path, session_factory: sessionmaker[Session], session: Session
) -> None:
    settings = make_settings(
        db_url, tmp_path, PULLRE_CONTROLLER_METRICS_TOKEN=TOKEN, PULLRE_COST_CURRENCY="CHF"
    )
    client = create_app(settings, session_factory=session_factory).test_client()
    repo = Repository(owner="acme", name="shop")
    server = Server(instance_id="i-00000000000000002")
    session.add_all([repo, server])
    session.flush()
    pull = PullRequest(repository_id=repo.id, number=1)
    session.add(pull)
    session.flush()
    environment = Environment(pull_request_id=pull.id, status=EnvironmentStatus.READY)
    session.add(environment)
    session.flush()
    start = month_start(utcnow())
    session.add(
        RunningSpan(
            server_id=server.id,
            environment_id=environment.id,
            started_at=start,
            ended_at=start + timedelta(minutes=6),
            hourly_price=Decimal("2.00"),
        )
    )
    session.commit()

    samples, _ = scrape(client)

    assert value(samples, "pullre_cost_month_to_date", repository="acme/shop", currency="CHF") == (
        0.2
    )
    assert value(samples, "pullre_running_hours_month_to_date", repository="acme/shop") == 0.1
