"""``python -m pullre server ...`` as an admin runs it: real ini, real DB file, moto for --check."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from pullre.cli.main import main as cli
from pullre.db import make_engine, make_session_factory
from pullre.models import (
    Environment,
    EnvironmentStatus,
    PullRequest,
    Repository,
    Schedule,
    Server,
)
from pullre.servers import registry as servers
from tests.ec2_fixtures import REGION, Ec2Sandbox

INSTANCE = "i-0123456789abcdef0"
_TOKEN_LINE = re.compile(r"^agent token for (i-[0-9a-f]+): (\S+)$", re.MULTILINE)


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(["--config", str(config), "server", *args])
    out, err = capsys.readouterr()
    return code, out, err


def pool(config: Path) -> list[tuple[str, str, bool, str | None]]:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        rows = [
            (s.instance_id, s.staging_url, s.in_pool, s.agent_token_hash)
            for s in session.scalars(select(Server).order_by(Server.id))
        ]
    engine.dispose()
    return rows


def token_finds(config: Path, token: str) -> str | None:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        server = servers.find_server_by_token(session, token)
        found = server.instance_id if server else None
    engine.dispose()
    return found


def test_add_prints_the_token_once_and_stores_its_hash(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        config, capsys, "add", INSTANCE, "--url", "https://s1.example", "--name", "s1"
    )
    assert code == 0
    match = _TOKEN_LINE.search(out)
    assert match
    token = match.group(2)
    assert "will not be shown again" in out
    assert pool(config) == [(INSTANCE, "https://s1.example", True, servers.hash_token(token))]
    assert token_finds(config, token) == INSTANCE
    _, listing, _ = run(config, capsys, "list")
    assert token not in listing


def test_token_rotates_and_the_old_one_stops_working(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(config, capsys, "add", INSTANCE, "--url", "http://s1.example:8000")
    old = _TOKEN_LINE.search(out)
    assert old
    code, out, _ = run(config, capsys, "token", INSTANCE)
    new = _TOKEN_LINE.search(out)
    assert code == 0
    assert new
    assert new.group(2) != old.group(2)
    assert token_finds(config, old.group(2)) is None
    assert token_finds(config, new.group(2)) == INSTANCE


def test_list_shows_state_the_pr_served_and_heartbeat(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example", "--name", "s1")
    run(config, capsys, "add", "i-0abcdef12", "--url", "https://s2.example")
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        server = session.scalars(select(Server).where(Server.instance_id == INSTANCE)).one()
        server.observed_state = "running"
        repo = Repository(owner="acme", name="shop")
        session.add(repo)
        session.flush()
        pull = PullRequest(repository_id=repo.id, number=42)
        session.add(pull)
        session.flush()
        session.add(
            Environment(
                pull_request_id=pull.id, server_id=server.id, status=EnvironmentStatus.READY
            )
        )
        session.commit()
    engine.dispose()
    code, out, _ = run(config, capsys, "list")
    assert code == 0
    assert out.splitlines() == [
        "i-0abcdef12\t-\tunknown\tfree\theartbeat never",
        f"{INSTANCE}\ts1\trunning\tacme/shop#42\theartbeat never",
    ]
    code, _, err = run(config, capsys, "remove", INSTANCE)
    assert (code, err) == (
        1,
        f"pullre: s1 ({INSTANCE}) is held by a pull request; release it first\n",
    )


def test_remove_takes_it_out_of_the_pool(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    code, out, _ = run(config, capsys, "remove", INSTANCE)
    assert (code, out) == (0, f"removed {INSTANCE} from the pool\n")
    assert pool(config) == [(INSTANCE, "https://s1.example", False, None)]
    assert run(config, capsys, "list")[1] == ""
    code, _, err = run(config, capsys, "remove", INSTANCE)
    assert (code, err) == (1, f"pullre: {INSTANCE} is not in the pool\n")
    code, _, err = run(config, capsys, "token", INSTANCE)
    assert (code, err) == (1, f"pullre: {INSTANCE} is not in the pool\n")


def test_errors_are_one_line_and_non_zero(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    code, _, err = run(config, capsys, "add", INSTANCE, "--url", "https://other.example")
    assert (code, err) == (1, f"pullre: {INSTANCE} is already registered\n")
    for bad in (
        ["add", "web-1", "--url", "https://x.example"],
        ["add", INSTANCE, "--url", "ftp://x"],
    ):
        with pytest.raises(SystemExit) as exited:
            run(config, capsys, *bad)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "is not an EC2 instance id" in err or "is not an http:// or https:// URL" in err
    assert len(pool(config)) == 1


def test_check_asks_ec2_whether_the_instance_exists(
    config: Path, capsys: pytest.CaptureFixture[str], ec2: Ec2Sandbox
) -> None:
    with config.open("a") as ini:
        ini.write(f"[aws]\nregion = {REGION}\nendpoint_url = {ec2.endpoint_url}\n")
    [real] = ec2.create_instances(1)
    code, _, err = run(config, capsys, "add", INSTANCE, "--url", "https://x.example", "--check")
    assert (code, err) == (1, f"pullre: EC2 does not know {INSTANCE} in this account and region\n")
    code, out, _ = run(config, capsys, "add", real, "--url", "https://x.example", "--check")
    assert code == 0
    assert f"added {real}" in out
    assert [row[0] for row in pool(config)] == [real]


def _add_schedule(config: Path) -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        session.add(
            Schedule(
                name="office",
                time_zone="Europe/Berlin",
                days=[1, 2, 3, 4, 5],
                opens_at=time(9),
                closes_at=time(18),
            )
        )
        session.commit()
    engine.dispose()


def _server(config: Path, instance_id: str) -> tuple[bool, Decimal | None, str | None]:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        server = session.scalars(select(Server).where(Server.instance_id == instance_id)).one()
        found = (server.in_pool, server.hourly_price, server.schedule and server.schedule.name)
    engine.dispose()
    return found


def test_outside_servers_prices_and_office_hours(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_schedule(config)
    lab = "i-0aaaaaaaaaaaaaaa1"
    code, out, _ = run(
        config, capsys, "outside", lab, "--name", "lab", "--price", "0.1", "--schedule", "office"
    )
    assert code == 0
    assert out.startswith(
        f"added {lab} outside the pool: price 0.10 USD/h (own price), office hours office: "
        "Mon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin); "
    )
    assert re.search(
        r"; (starts|stops) \w{3} \d{4}-\d\d-\d\d \d\d:\d\d CES?T \(Europe/Berlin\)$", out
    )
    assert _server(config, lab) == (False, Decimal("0.1"), "office")

    code, out, _ = run(config, capsys, "set", lab, "--type-price", "--no-schedule")
    assert (code, out) == (0, f"saved {lab}: price no price, office hours none\n")
    assert _server(config, lab) == (False, None, None)

    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    code, out, _ = run(config, capsys, "set", INSTANCE, "--price", "0.0416")
    assert (code, out) == (
        0,
        f"saved {INSTANCE}: price 0.0416 USD/h (own price), office hours none\n",
    )
    code, _, err = run(config, capsys, "set", INSTANCE, "--schedule", "office")
    assert code == 1
    assert err == (
        f"pullre: {INSTANCE}: pool servers follow their PRs (and their repository's office "
        "hours), not a schedule of their own\n"
    )
    code, _, err = run(config, capsys, "set", lab, "--schedule", "nights")
    assert (code, err) == (1, "pullre: no schedule named 'nights' (known: office)\n")
    code, _, err = run(config, capsys, "outside", INSTANCE)
    assert (code, err) == (1, f"pullre: {INSTANCE} is in the pool\n")
    code, _, err = run(config, capsys, "set", "i-0bbbbbbbbbbbbbbb2")
    assert (code, err) == (1, "pullre: pullre does not know i-0bbbbbbbbbbbbbbb2\n")
    with pytest.raises(SystemExit):
        run(config, capsys, "set", lab, "--price", "-1")
    assert "at least 0" in capsys.readouterr().err

    capsys.readouterr()
    assert cli(["--config", str(config), "schedule", "list"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("office\tMon\N{EN DASH}Fri 09:00\N{EN DASH}18:00 (Europe/Berlin)\t")
    assert "(Europe/Berlin)\n" in line


def test_clean_clears_a_dirty_server_and_list_shows_it(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(config, capsys, "add", INSTANCE, "--url", "https://s1.example")
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    with make_session_factory(engine)() as session:
        server = session.scalars(select(Server)).one()
        server.dirty_reason = "cannot remove /tmp/x: Device or resource busy"
        session.commit()

    assert (
        "\tDIRTY: cannot remove /tmp/x: Device or resource busy" in run(config, capsys, "list")[1]
    )
    code, out, _ = run(config, capsys, "clean", INSTANCE)
    assert (code, out) == (0, f"marked {INSTANCE} clean; it takes pull requests again\n")
    assert "DIRTY" not in run(config, capsys, "list")[1]
    with make_session_factory(engine)() as session:
        assert session.scalars(select(Server.dirty_reason)).one() is None
    engine.dispose()
    assert run(config, capsys, "clean", INSTANCE)[1] == f"{INSTANCE} is not dirty\n"
