"""Local agents: one per moto instance, running ``client.py`` passes while it is ``running``.

Each pass is a ``client.py --config agent.ini`` subprocess, as cron runs it on a real box, so
the sandbox exercises the same entry point, lock and state file as production. The subprocess
gets a session of its own: Ctrl-C in the terminal reaches the sandbox only, which then lets the
pass in flight finish instead of leaving a half-started app behind. When moto says the instance
is not running, the agent stops its app, as powering a real box off would.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pullre.agent import state, supervisor
from pullre.ec2.port import Ec2

CLIENT = Path(__file__).resolve().parent.parent.parent / "client.py"
PASS_INTERVAL_S = 2.0
PASS_TIMEOUT_S = 120.0

log = logging.getLogger("pullre.sandbox.agents")


@dataclass
class LocalAgent:
    """The box behind one pool instance: its workdir, its app port and its pass loop."""

    instance_id: str
    port: int
    home: Path
    ec2: Ec2
    stopping: threading.Event
    thread: threading.Thread | None = None
    current: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def workdir(self) -> Path:
        return self.home / "work"

    @property
    def ini(self) -> Path:
        return self.home / "agent.ini"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def configure(self, controller_url: str, token: str) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.ini.write_text(
            f"[agent]\ncontroller_url = {controller_url}\ntoken = {token}\n"
            f"workdir = {self.workdir}\nport = {self.port}\n"
            # The sandbox runs PR code as the user running it: there is no app user here.
            f"app_user = {getpass.getuser()}\nallow_same_user = true\n"
        )
        self.ini.chmod(0o600)

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self._loop, name=f"agent-{self.instance_id}", daemon=True
        )
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                info = self.ec2.describe([self.instance_id]).get(self.instance_id)
                if info is not None and info.state == "running":
                    self._run_pass()
                else:
                    self.stop_app()
            except Exception:
                # The sandbox must keep going through one bad pass, as cron would.
                log.exception("agent for %s: the pass failed", self.instance_id)
            self.stopping.wait(PASS_INTERVAL_S)

    def _run_pass(self) -> None:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PULLRE_", "AWS_"))  # a box holds only its ini's secrets
        }
        with (self.home / "agent.log").open("ab") as output:
            self.current = subprocess.Popen(  # noqa: S603 - our interpreter and script
                [sys.executable, str(CLIENT), "--config", str(self.ini)],
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                self.current.wait(PASS_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("agent for %s: the pass hung; killing it", self.instance_id)
                kill_group(self.current.pid)
                self.current.wait()
            finally:
                self.current = None

    def stop_app(self) -> None:
        app = state.load(self.workdir).app if self.workdir.exists() else None
        if app is not None:
            supervisor.stop(app.pid, app.start_time, timeout=10)

    def join(self, timeout: float) -> None:
        """Wait for the pass in flight, then kill it if it overstays; the caller set stopping."""
        if self.thread is not None:
            self.thread.join(timeout)
            running = self.current
            if running is not None:
                kill_group(running.pid)
                running.wait()
                self.thread.join(5)
        self.stop_app()


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
