"""JSON log lines: one parseable object per line, pullre's extra fields kept, secrets never."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pullre import events
from pullre.config import ConfigError, Settings, load_settings
from pullre.log_format import REDACTED, JsonFormatter
from pullre.models import PullRequest, Repository
from pullre.startup import LOG_FORMAT, configure_logging
from tests.web_fixtures import make_settings


class Capture:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """A JSON handler on the ``pullre`` logger, at INFO whatever pytest set the root to."""
    capture = Capture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pullre")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield capture
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_an_event_is_one_json_line_with_its_kind_and_details(
    session: Session, capture: Capture
) -> None:
    repo = Repository(owner="acme", name="shop")
    session.add(repo)
    session.flush()
    pull = PullRequest(repository_id=repo.id, number=7)
    session.add(pull)
    session.flush()

    events.record(session, "deploy_failed", "#7 build failed", pull_request=pull, step="build")

    (line,) = capture.lines()
    assert line["level"] == "INFO"
    assert line["logger"] == "pullre.events"
    assert line["message"] == "deploy_failed: #7 build failed"
    assert line["event_kind"] == "deploy_failed"
    assert line["details"] == {"step": "build"}
    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.tzinfo is not None
    assert abs((datetime.now(UTC) - logged_at).total_seconds()) < 60
    assert list(line)[:4] == ["time", "level", "logger", "message"]


def test_secret_looking_fields_are_never_written(capture: Capture) -> None:
    log = logging.getLogger("pullre.test")
    log.warning(
        "connecting to %s",
        "db.example",
        extra={
            "details": {
                "user": "pr_1_7",
                "password": "hunter2-pass",
                "nested": [{"api_token": "tok-abc-123"}, {"Authorization": "Bearer zyx-987"}],
            },
            "webhook_secret": "whsec-456",
            "agent_token": "agent-tok-789",
        },
    )
    raw = capture.stream.getvalue()
    for secret in ("hunter2-pass", "tok-abc-123", "zyx-987", "whsec-456", "agent-tok-789"):
        assert secret not in raw
    (line,) = capture.lines()
    assert line["details"]["user"] == "pr_1_7"  # only the secret-looking fields go
    assert line["details"]["password"] == REDACTED
    assert line["details"]["nested"] == [{"api_token": REDACTED}, {"Authorization": REDACTED}]
    assert line["webhook_secret"] == REDACTED
    assert line["agent_token"] == REDACTED
    assert line["message"] == "connecting to db.example"


def test_an_exception_stays_on_its_one_line(capture: Capture) -> None:
    log = logging.getLogger("pullre.test")
    try:
        raise ValueError("bad thing\nsecond line")
    except ValueError:
        log.exception("pass failed", extra={"when": datetime(2026, 1, 2, tzinfo=UTC)})

    (line,) = capture.lines()
    assert line["level"] == "ERROR"
    assert "Traceback" in line["exception"]
    assert "ValueError: bad thing\nsecond line" in line["exception"]
    assert line["when"] == "2026-01-02 00:00:00+00:00"  # not JSON: written as text, not lost


def test_an_extra_cannot_replace_the_base_fields(capture: Capture) -> None:
    logging.getLogger("pullre.test").info("real", extra={"level": "fake", "logger": "fake"})
    (line,) = capture.lines()
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "pullre.test", "real")


def _configured_formatter(settings: Settings) -> logging.Formatter | None:
    """What ``configure_logging`` puts on a bare root logger (pytest's handlers set aside,
    since ``basicConfig`` does nothing while the root has any)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        configure_logging(settings)
        (handler,) = root.handlers
        return handler.formatter
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_configure_logging_honours_log_format(tmp_path: Path) -> None:
    json_settings = make_settings("sqlite://", tmp_path, PULLRE_CONTROLLER_LOG_FORMAT="json")
    assert isinstance(_configured_formatter(json_settings), JsonFormatter)

    text = _configured_formatter(make_settings("sqlite://", tmp_path))
    assert text is not None
    assert not isinstance(text, JsonFormatter)
    assert text._fmt == LOG_FORMAT


def test_log_format_accepts_only_text_or_json() -> None:
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(environ={"PULLRE_CONTROLLER_LOG_FORMAT": "xml"})
