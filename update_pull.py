"""Run reconcile passes: once (cron) or in a loop. Safe to run any number of times at once."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from sqlalchemy import Engine

from pullre.config import ConfigError, Settings
from pullre.db import make_engine
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2
from pullre.github.adapter import make_github
from pullre.github.port import GitHub
from pullre.reconcile.nudge import Nudger
from pullre.reconcile.run import PassReport, run_configured_pass
from pullre.staging_db.database import configured_staging_database
from pullre.staging_db.port import StagingDatabase
from pullre.startup import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    add_config_argument,
    configure_logging,
    require_migrated,
    settings_or_exit,
)

log = logging.getLogger("pullre.update_pull")


def _summary(report: PassReport) -> str:
    if report.skipped:
        return f"skipped: the lease is held by {report.lease_holder}"
    return (
        f"{report.repositories} repositories ({report.unchanged} unchanged), "
        f"{len(report.assigned)} assigned, {len(report.started)} started, "
        f"{len(report.stopped)} stopped, {len(report.released)} released, "
        f"{len(report.errors)} errors"
    )


def run(settings: Settings, *, loop: bool, interval: float) -> int:
    engine = make_engine(settings.controller.database_url)
    require_migrated(engine)
    try:
        github = make_github(settings.github)
    except ConfigError as exc:
        print(f"update_pull.py: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    ec2 = make_ec2(settings.aws)
    staging = configured_staging_database(settings.staging_mysql)
    if loop:
        return _loop(settings, engine, (github, ec2, staging), interval)
    started = time.monotonic()
    try:
        report = run_configured_pass(settings, engine, github, ec2, staging=staging)
    except Exception:
        # A bug or an outage outside every per-PR guard: the next pass starts from the database
        # again (the loop's worker logs and goes on); a single pass says it failed.
        log.exception("pass failed")
        return EXIT_FAILURE
    log.info("pass done in %.1fs: %s", time.monotonic() - started, _summary(report))
    return EXIT_OK


def _loop(
    settings: Settings,
    engine: Engine,
    adapters: tuple[GitHub, Ec2, StagingDatabase | None],
    interval: float,
) -> int:
    """A pass every ``interval`` seconds, reporting to GitHub in a worker of its own (the
    Nudger's two workers), so a pass never waits behind the last one's paced GitHub writes."""
    github, ec2, staging = adapters
    nudger = Nudger(
        settings, engine, github=lambda: github, ec2=lambda: ec2, staging=lambda: staging
    )
    try:
        while True:
            nudger.nudge("interval")
            time.sleep(max(interval, 1.0))
    finally:
        nudger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--loop", action="store_true", help="repeat passes until stopped")
    parser.add_argument(
        "--interval", type=float, default=60.0, metavar="SECONDS", help="time between passes"
    )
    args = parser.parse_args(argv)
    settings = settings_or_exit(args.config)
    configure_logging(settings)
    try:
        return run(settings, loop=args.loop, interval=args.interval)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
