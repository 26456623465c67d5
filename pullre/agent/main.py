"""The staging agent's command line: one pass (``--loop`` to repeat). Exit 2 on bad settings.

Runs on every staging instance from cron or systemd, as ``client.py`` from a source tree or as
``pullre-agent.pyz`` (see ``bundle``), whose ``__main__`` is this ``main``. See ``deploy`` for the
pass and ``self_update`` for what happens between passes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from pullre.agent import bundle, deploy, self_update
from pullre.agent.controller import Controller, ControllerRefused, ControllerUnavailable
from pullre.agent.settings import AgentSettings, SettingsError, load

#: The longest one wait on the controller lasts; a pass follows every wait.
WAIT_S = 25.0
#: The pause between passes when the controller cannot be waited on (unreachable, or older).
FALLBACK_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pullre staging agent: deploy this server's PR")
    parser.add_argument("--config", help="ini file with an [agent] section (default: app.ini)")
    parser.add_argument("--loop", action="store_true", help="repeat the pass until stopped")
    parser.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="with --loop: the longest time between passes (a change on the controller "
        "starts the next pass at once)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load(args.config, os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    bundle.running_sha256()  # this file's hash, before an update replaces it
    if not args.loop:
        controller = Controller(settings.controller_url, settings.token)
        status = deploy.run_pass(settings, controller=controller)
        self_update.between_passes(controller)  # the next run (cron, timer) is the new one
        return status
    return _loop(settings, max(args.interval, 1.0))


def _loop(settings: AgentSettings, interval: float) -> int:
    """A pass, then wait on the controller for the assignment to change (at most
    ``interval``, and ``WAIT_S``: a pass also restarts a dead app), then the next pass."""
    log = logging.getLogger("client")
    controller = Controller(settings.controller_url, settings.token)
    while True:
        try:
            deploy.run_pass(settings, controller=controller)
        except Exception:
            # One broken pass (a full disk, say) must not end the loop that would retry it.
            log.exception("the pass failed; retrying after the interval")
        if self_update.between_passes(controller):
            self_update.restart()
        try:
            pause = controller.wait_for_change(min(interval, WAIT_S))
        except (ControllerUnavailable, ControllerRefused) as exc:
            log.warning("cannot wait on the controller (%s); sleeping instead", exc)
            pause = None
        try:
            time.sleep(min(interval, FALLBACK_S) if pause is None else pause)
        except KeyboardInterrupt:
            return 0
