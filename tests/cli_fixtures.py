"""An initialised controller for CLI tests: an app.ini on a fresh SQLite file, set up by init.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import init  # noqa: E402  (a top-level entry point, like app.py)

ADMIN_PASSWORD = "first admin pw"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ini path, after ``init.py --admin-user admin`` ran on it as a user would."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "app.ini"
    path.write_text(f"[controller]\ndatabase_url = sqlite:///{tmp_path / 'cli.db'}\n")
    monkeypatch.setenv("PULLRE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    assert init.main(["--config", str(path), "--admin-user", "admin"]) == 0
    return path
