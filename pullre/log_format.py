"""``log_format = json``: one JSON object per line, for log collectors that index fields.

Each line has ``time`` (ISO 8601 UTC), ``level``, ``logger`` and ``message``, then every
``extra`` field the call passed (``event_kind``, ``details``...), then ``exception`` when there
is one. A collector can then filter on ``event_kind`` without parsing the message.

Secrets never reach the output: any field whose name looks like a secret (password, token,
secret, authorization, private key, cookie...) has its value replaced, at any depth inside
``extra`` values. The message text itself is the caller's responsibility; pullre's messages
never interpolate credentials.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|secret|token|authorization|api[_-]?key|private[_-]?key|"
    r"credential|cookie",
    re.IGNORECASE,
)
#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}
_BASE_FIELDS = ("time", "level", "logger", "message")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_name(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """A ``logging.Formatter``: set it on any handler, as ``configure_logging`` does."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            # The base fields win over an extra of the same name, so every line has them.
            if name in _STANDARD_ATTRIBUTES or name in _BASE_FIELDS:
                continue
            entry[name] = REDACTED if is_secret_name(name) else redact(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a datetime, an enum) still gets logged.
        return json.dumps(entry, default=str)
