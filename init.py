"""Set up the controller's database (migrations) and its first admin; safe to run again."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from pullre import migrate
from pullre.accounts import user_accounts as accounts
from pullre.config import public_url
from pullre.db import make_engine, make_session_factory
from pullre.models import Role
from pullre.startup import EXIT_FAILURE, EXIT_OK, add_config_argument, settings_or_exit


def _admin_password(username: str) -> str:
    password = os.environ.get("PULLRE_ADMIN_PASSWORD")
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise accounts.AccountError(
            "set PULLRE_ADMIN_PASSWORD or run init.py in a terminal to type the password"
        )
    password = getpass.getpass(f"Password for {username}: ")
    if getpass.getpass("Again: ") != password:
        raise accounts.AccountError("the passwords differ")
    return password


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--admin-user", metavar="NAME", help="create this admin if missing")
    args = parser.parse_args(argv)
    settings = settings_or_exit(args.config)

    url = settings.controller.database_url
    migrate.upgrade(url)
    print(f"database ready at revision {migrate.head_revision(url)}")

    if args.admin_user:
        engine = make_engine(url)
        try:
            with make_session_factory(engine)() as session:
                if accounts.find_user(session, args.admin_user) is not None:
                    print(f"admin {args.admin_user} already exists; left unchanged")
                else:
                    password = _admin_password(args.admin_user)
                    accounts.create_user(session, args.admin_user, password, Role.ADMIN)
                    session.commit()
                    print(f"created admin {args.admin_user}")
        except accounts.AccountError as exc:
            print(f"init.py: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        finally:
            engine.dispose()

    print(
        "\nNext:\n"
        f"  python app.py                         # then log in at {public_url(settings)}\n"
        "  python -m pullre repo add OWNER/NAME  # follow a repository\n"
        "  set [github] token and [aws] in app.ini (see app.ini.default)"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
