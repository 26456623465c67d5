"""``pullre-agent.pyz``, built from the tree, run with ``python3 -I -S`` as on a staging box.

Each run is a real process of the zipapp against the controller stand-in, deploying the sample
app from a real git repository; an older bundle (the tree with a patched ``AGENT_VERSION``)
updates itself from what the stand-in offers.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from pullre.agent import AGENT_VERSION, bundle
from tests.agent_fixtures import ME, TOKEN, Agent, AssignPr, FakeController, OriginRepo

ROOT = Path(__file__).parent.parent
OLD_VERSION = "0.0.1"


def old_tree(tmp_path: Path, version: str = OLD_VERSION) -> Path:
    """The agent's part of this tree, as an earlier release with ``version``."""
    root = tmp_path / f"tree-{version}"
    for package in bundle.PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pullre" / "__init__.py", root / "pullre" / "__init__.py")
    init = root / "pullre" / "agent" / "__init__.py"
    text = init.read_text()
    assert f'AGENT_VERSION = "{AGENT_VERSION}"' in text
    init.write_text(text.replace(f'"{AGENT_VERSION}"', f'"{version}"'))
    return root


def write_pyz(path: Path, root: Path) -> bytes:
    data = bundle.build(root)
    path.write_bytes(data)
    path.chmod(0o755)
    return data


def identity(data: bytes, version: str = AGENT_VERSION) -> str:
    return f"{version}+{hashlib.sha256(data).hexdigest()[:12]}"


def write_ini(path: Path, controller_url: str, workdir: Path) -> Path:
    path.write_text(
        f"[agent]\ncontroller_url = {controller_url}\ntoken = {TOKEN}\nworkdir = {workdir}\n"
        f"app_user = {ME}\nallow_same_user = true\n"
    )
    path.chmod(0o600)
    return path


def run_pyz(pyz: Path, ini: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python3 -I -S pullre-agent.pyz --config INI``: no site-packages, no PYTHON* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PULLRE_", "PYTHON"))}
    return subprocess.run(
        [sys.executable, "-I", "-S", str(pyz), "--config", str(ini), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_bundle_is_the_same_bytes_from_any_copy_of_the_tree(tmp_path: Path) -> None:
    built = bundle.build(ROOT)
    copy = old_tree(tmp_path, AGENT_VERSION)  # same sources, new files, new times and order
    os.utime(copy / "pullre" / "agent" / "deploy.py", (1_000_000_000, 1_000_000_000))

    assert bundle.build(copy) == built
    names = zipfile.ZipFile(io.BytesIO(built)).namelist()
    assert names == [*sorted(names[:-1]), "__main__.py"]
    assert {name.split("/")[1] for name in names if "/" in name} == {
        "__init__.py",
        "agent",
        "smoke",
    }
    assert built.startswith(b"#!/usr/bin/env python3\n")

    result = subprocess.run(
        [sys.executable, "-m", "pullre", "agent", "bundle", "-o", str(tmp_path / "cli.pyz")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.pyz").read_bytes() == built
    assert hashlib.sha256(built).hexdigest() in result.stdout


def test_the_bundle_deploys_the_sample_app_on_the_standard_library_alone(
    tmp_path: Path,
    agent: Agent,
    fake_controller: FakeController,
    git_origin: OriginRepo,
    assign_pr: AssignPr,
) -> None:
    pyz = tmp_path / "pullre-agent.pyz"
    data = write_pyz(pyz, ROOT)
    ini = write_ini(tmp_path / "agent.ini", fake_controller.url, agent.settings.workdir)
    sha = assign_pr(12, {"README": "from the bundle\n"})

    result = run_pyz(pyz, ini)

    assert result.returncode == 0, result.stderr
    assert ("health", "ok") in fake_controller.steps()
    assert agent.get(git_origin.port) == f"ok {sha}"
    assert fake_controller.heartbeats()[-1]["agent_version"] == identity(data)


def test_an_older_bundle_refuses_a_tampered_update_then_takes_the_announced_one(
    tmp_path: Path, fake_controller: FakeController
) -> None:
    box = tmp_path / "box"
    box.mkdir()
    pyz = box / "pullre-agent.pyz"
    old = write_pyz(pyz, old_tree(tmp_path))
    ini = write_ini(tmp_path / "agent.ini", fake_controller.url, tmp_path / "work")
    new = bundle.build(ROOT)
    fake_controller.agent_offer = {
        "version": AGENT_VERSION,
        "sha256": hashlib.sha256(new).hexdigest(),
    }
    fake_controller.bundle = new.replace(b"def run_pass(", b"def run_pazz(")  # same length

    refused = run_pyz(pyz, ini)

    assert refused.returncode == 0, refused.stderr
    assert "agent update refused or failed" in refused.stderr
    assert fake_controller.agent_offer["sha256"] in refused.stderr
    assert pyz.read_bytes() == old
    assert sorted(p.name for p in box.iterdir()) == ["pullre-agent.pyz"]  # no temp file left
    assert fake_controller.heartbeats()[-1]["agent_version"] == identity(old, OLD_VERSION)

    fake_controller.bundle = new
    updated = run_pyz(pyz, ini)  # once (cron, a timer): the next run is the new agent

    assert updated.returncode == 0, updated.stderr
    assert pyz.read_bytes() == new
    assert pyz.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in box.iterdir()) == ["pullre-agent.pyz"]

    fake_controller.clear()
    assert run_pyz(pyz, ini).returncode == 0
    assert fake_controller.heartbeats()[-1]["agent_version"] == identity(new)
    assert "/api/agent/bundle" not in [r.path for r in fake_controller.requests]  # up to date


def test_an_agent_run_from_a_source_tree_only_says_an_update_is_available(
    tmp_path: Path, fake_controller: FakeController
) -> None:
    ini = write_ini(tmp_path / "agent.ini", fake_controller.url, tmp_path / "work")
    fake_controller.agent_offer = {"version": "9.9.9", "sha256": "0" * 64}
    fake_controller.bundle = b"not to be fetched"
    client = ROOT / "client.py"

    result = subprocess.run(
        [sys.executable, str(client), "--config", str(ini)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "serves agent 9.9.9" in result.stderr
    assert "/api/agent/bundle" not in [r.path for r in fake_controller.requests]
    assert client.read_text().startswith('"""The staging agent from a source tree')


def test_a_looping_agent_refused_an_update_keeps_running_and_does_not_fetch_it_each_pass(
    tmp_path: Path, fake_controller: FakeController
) -> None:
    pyz = tmp_path / "pullre-agent.pyz"
    old = write_pyz(pyz, old_tree(tmp_path))
    ini = write_ini(tmp_path / "agent.ini", fake_controller.url, tmp_path / "work")
    new = bundle.build(ROOT)
    fake_controller.agent_offer = {"version": AGENT_VERSION, "sha256": bundle.sha256(new)}
    fake_controller.bundle = new[:-100]  # cut short

    process = subprocess.Popen(
        [sys.executable, "-I", "-S", str(pyz), "--config", str(ini), "--loop", "--interval", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(fake_controller.heartbeats()) < 4:
            time.sleep(0.1)
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()

    assert len(fake_controller.heartbeats()) >= 4  # four passes by the old agent
    assert {h["agent_version"] for h in fake_controller.heartbeats()} == {
        identity(old, OLD_VERSION)
    }
    assert [r.path for r in fake_controller.requests].count("/api/agent/bundle") == 1
    assert pyz.read_bytes() == old
