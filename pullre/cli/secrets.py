"""CLI commands for a repository's secrets: ``python -m pullre secret set|list|remove``.

The value is read from standard input, never from argv (which ``ps`` shows every user) nor an
environment variable: typed without echo at a terminal, else read to the end (one trailing newline
dropped, so ``printf '%s\\n' "$KEY" | ...`` and a file both work). The rules are
:mod:`pullre.secrets`'s, so the repository page refuses the same things with the same words.
A refusal is printed as one line and ends the command (exit status 1) before anything is saved.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from collections.abc import Callable

from sqlalchemy.orm import Session

from pullre.cli.arguments import AddCommand, full_name, registered
from pullre.clock import system_clock
from pullre.models import Repository
from pullre.secret_key import resolve_secret_key
from pullre.secrets import store
from pullre.secrets.names import SecretError
from pullre.startup import EXIT_FAILURE, settings_or_exit

Command = Callable[[Session, argparse.Namespace], None]


def _refusals_end_the_command(func: Command) -> Command:
    @functools.wraps(func)
    def run(session: Session, args: argparse.Namespace) -> None:
        try:
            func(session, args)
        except SecretError as exc:
            print(f"pullre: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_FAILURE) from None

    return run


def _repository(session: Session, full_name: tuple[str, str]) -> Repository:
    owner, name = full_name
    found = registered(session, full_name)
    if found is None:
        raise SecretError(f"{owner}/{name} is not registered")
    return found


def _actor() -> str:
    try:
        return f"{getpass.getuser()} (CLI)"
    except (OSError, KeyError):  # no login name: a container without a passwd entry
        return "the CLI"


def read_value() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Value (not shown): ")
    value = sys.stdin.read()
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")


@_refusals_end_the_command
def secret_set(session: Session, args: argparse.Namespace) -> None:
    repository = _repository(session, args.repository)
    secret_key = resolve_secret_key(settings_or_exit(args.config))
    redeploys = store.set_secret(
        session,
        repository,
        args.name,
        read_value(),
        actor=_actor(),
        secret_key=secret_key,
        clock=system_clock,
    )
    print(f"set {args.name} for {repository.full_name}")
    if redeploys:
        print(f"{redeploys} environment(s) will redeploy with it")


@_refusals_end_the_command
def secret_list(session: Session, args: argparse.Namespace) -> None:
    repository = _repository(session, args.repository)
    for secret in store.listed(session, repository):
        when = secret.set_at.strftime("%Y-%m-%d %H:%M UTC")
        print(f"{secret.name}\tset {when} by {secret.set_by or 'unknown'}")


@_refusals_end_the_command
def secret_remove(session: Session, args: argparse.Namespace) -> None:
    repository = _repository(session, args.repository)
    redeploys = store.remove_secret(
        session, repository, args.name, actor=_actor(), clock=system_clock
    )
    print(f"removed {args.name} from {repository.full_name}")
    if redeploys:
        print(f"{redeploys} environment(s) will redeploy without it")


def add_commands(
    command: AddCommand, commands: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    secret = commands.add_parser("secret", help="values a repository's apps get, kept encrypted")
    secret_commands = secret.add_subparsers(dest="secret_command", required=True, metavar="COMMAND")
    add = command(
        "set",
        secret_set,
        "set a secret; its value is read from standard input (no echo at a terminal)",
        secret_commands,
    )
    add.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    add.add_argument("name", metavar="NAME", help="an environment variable name, e.g. STRIPE_KEY")
    shown = command(
        "list", secret_list, "a repository's secret names, when and by whom set", secret_commands
    )
    shown.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    remove = command("remove", secret_remove, "remove a secret", secret_commands)
    remove.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    remove.add_argument("name", metavar="NAME")
