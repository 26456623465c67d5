"""The controller's secret key: signs sessions and derives per-PR database passwords."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from pullre.config import Settings

log = logging.getLogger(__name__)


def resolve_secret_key(settings: Settings) -> str:
    """``[controller] secret_key``, or the generated one kept in ``secret_key_file``."""
    if settings.controller.secret_key:
        return settings.controller.secret_key
    path = Path(settings.controller.secret_key_file)
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    log.info("generated a new secret key in %s", path)
    return key


def derived_password(secret_key: str, purpose: str) -> str:
    """A stable secret for ``purpose`` that is never stored: recomputed whenever it is needed.

    The PR's MySQL password is handed to the agent on every pass; deriving it means the
    controller DB holds no database password that a leaked backup would reveal.
    """
    digest = hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()
    return digest[:32]
