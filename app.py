"""Run the controller's web app under CherryPy (a production WSGI server, threads, no reloader)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

import cherrypy

from pullre.config import WEB_THREADS, public_url
from pullre.db import make_engine, make_session_factory
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2
from pullre.github.adapter import make_github
from pullre.github.port import GitHub
from pullre.reconcile.nudge import Nudger
from pullre.staging_db.database import configured_staging_database
from pullre.staging_db.port import StagingDatabase
from pullre.startup import (
    EXIT_OK,
    add_config_argument,
    configure_logging,
    freeze_startup_heap,
    require_migrated,
    settings_or_exit,
)
from pullre.web import create_app

log = logging.getLogger("pullre.app")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--host", help="listen address (overrides [controller] host)")
    parser.add_argument("--port", type=int, help="listen port (overrides [controller] port)")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run the whole loop locally: GitHub stand-in, moto EC2, agents (no app.ini needed)",
    )
    args = parser.parse_args(argv)
    if args.sandbox:
        from pullre.sandbox import main as sandbox  # noqa: PLC0415 - only the sandbox needs it

        return sandbox(host=args.host or "127.0.0.1", port=args.port or 8080)
    settings = settings_or_exit(args.config)
    controller = replace(
        settings.controller,
        host=args.host or settings.controller.host,
        port=args.port or settings.controller.port,
    )
    settings = replace(settings, controller=controller)
    configure_logging(settings)

    engine = make_engine(settings.controller.database_url)
    require_migrated(engine)

    # Webhooks nudge passes in this process; without a secret the webhook refuses everything.
    def github() -> GitHub:
        return make_github(settings.github)

    def ec2() -> Ec2:
        return make_ec2(settings.aws)

    def staging() -> StagingDatabase | None:
        return configured_staging_database(settings.staging_mysql)

    # Webhooks nudge passes in this process; without a secret the webhook refuses everything.
    nudger = (
        Nudger(settings, engine, github=github, ec2=ec2, staging=staging)
        if settings.github.webhook_secret
        else None
    )
    app = create_app(
        settings,
        session_factory=make_session_factory(engine),
        nudger=nudger,
        ec2=ec2,
        github=github,
    )

    host, port = controller.host, controller.port
    cherrypy.tree.graft(app, "/")
    freeze_startup_heap()
    cherrypy.config.update(
        {
            "server.socket_host": host,
            "server.socket_port": port,
            "server.thread_pool": WEB_THREADS,
            "engine.autoreload.on": False,
            "log.screen": False,
            "environment": "production",
        }
    )
    cherrypy.engine.signals.subscribe()  # SIGTERM/SIGINT stop the server cleanly
    cherrypy.engine.start()
    log.info("pullre listening on http://%s:%s (public URL %s)", host, port, public_url(settings))
    print(f"pullre is running: open {public_url(settings)} (Ctrl-C stops it)", flush=True)
    cherrypy.engine.block()
    if nudger is not None:
        nudger.close()
    engine.dispose()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
