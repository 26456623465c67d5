"""Where a running sandbox says how to reach it: ``sandbox.json`` in its temp dir.

The temp dir is ``pullre-sandbox-*`` under the system temp dir (``$TMPDIR``), so the CLI finds
the running sandbox without being told; ``PULLRE_SANDBOX_DIR`` names one explicitly. The file
holds an admin API token, so it is written 0600 inside the 0700 temp dir.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PREFIX = "pullre-sandbox-"
FILENAME = "sandbox.json"


class NoSandbox(Exception):
    """No running sandbox was found, or it refused; the message says what to do."""


def write(directory: Path, facts: Mapping[str, Any]) -> None:
    path = directory / FILENAME
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(dict(facts), indent=2))
    temporary.chmod(0o600)
    os.replace(temporary, path)


def find(environ: Mapping[str, str]) -> dict[str, Any]:
    """The facts of the running sandbox (the newest, when several run)."""
    named = environ.get("PULLRE_SANDBOX_DIR")
    candidates = (
        [Path(named) / FILENAME]
        if named
        else sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*/{FILENAME}"), key=_age)
    )
    for path in candidates:
        try:
            facts: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(facts.get("pid", 0))):
            return facts
    raise NoSandbox("no running sandbox found; start one with `python app.py --sandbox`")


def act(environ: Mapping[str, str], number: int, action: str) -> str:
    """Ask the running sandbox to ``close`` or ``push`` PR ``number``; its answer."""
    url = f"{find(environ)['control_url']}/pulls/{number}/{action}"
    request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310 - http only
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our http URL
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise NoSandbox(json.loads(exc.read() or b"{}").get("error", str(exc))) from None
    except (urllib.error.URLError, OSError) as exc:
        raise NoSandbox(f"the sandbox did not answer at {url}: {exc}") from None
    return str(body["message"])


def _age(path: Path) -> float:
    """Newest first; a file removed meanwhile (a sandbox just stopped) sorts last."""
    try:
        return -path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
