"""The staging agent: one pass (``--loop`` to repeat). Exit 2 on bad settings.

Runs on every staging instance from cron or systemd. See pullre/agent/deploy.py for the pass.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from pullre.agent import deploy
from pullre.agent.settings import SettingsError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pullre staging agent: deploy this server's PR")
    parser.add_argument("--config", help="ini file with an [agent] section (default: app.ini)")
    parser.add_argument("--loop", action="store_true", help="repeat the pass until stopped")
    parser.add_argument(
        "--interval", type=float, default=60.0, help="seconds between passes with --loop"
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
    if not args.loop:
        return deploy.run_pass(settings)
    while True:
        try:
            deploy.run_pass(settings)
        except Exception:
            # One broken pass (a full disk, say) must not end the loop that would retry it.
            logging.getLogger("client").exception("the pass failed; retrying after the interval")
        try:
            time.sleep(max(args.interval, 1.0))
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
