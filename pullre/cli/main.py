"""``python -m pullre``: the admin CLI, for what admins script or do before the UI is up."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pullre import events
from pullre.accounts import user_accounts as accounts
from pullre.cli import CommandError
from pullre.cli import agent_bundle as cli_agent_bundle
from pullre.cli import approvals as cli_approvals
from pullre.cli import secrets as cli_secrets
from pullre.cli import server_settings as cli_server_settings
from pullre.cli import servers as cli_servers
from pullre.cli.arguments import full_name
from pullre.db import make_engine, make_session_factory
from pullre.environments.status import pull_request_views
from pullre.identifiers import GITHUB_LOGIN, is_schema_name
from pullre.models import GithubUser, Repository, Role
from pullre.servers import registry as servers
from pullre.startup import (
    EXIT_FAILURE,
    EXIT_OK,
    add_config_argument,
    require_migrated,
    settings_or_exit,
)
from pullre.trust.approval import ApprovalRefused

Command = Callable[[Session, argparse.Namespace], None]


def _schema(value: str) -> str:
    if not is_schema_name(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a schema name (letters, digits, underscores; at most 64)"
        )
    return value


def _login(value: str) -> str:
    if not GITHUB_LOGIN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a GitHub login")
    return value


def repo_add(session: Session, args: argparse.Namespace) -> None:
    owner, name = args.repository
    repository = Repository(
        owner=owner,
        name=name,
        base_schema=args.base_schema,
        required_label=args.label or None,
        enabled=True,
    )
    session.add(repository)
    try:
        session.flush()
    except IntegrityError:
        raise CommandError(f"{owner}/{name} is already registered") from None
    events.record(
        session,
        "repository.saved",
        f"{owner}/{name} added from the CLI",
        repository_id=repository.id,
    )
    print(f"added {owner}/{name}")


def repo_list(session: Session, args: argparse.Namespace) -> None:
    for repo in session.scalars(select(Repository).order_by(Repository.owner, Repository.name)):
        flags = [
            f"base schema {repo.base_schema}" if repo.base_schema else "no base schema",
            f"label {repo.required_label}" if repo.required_label else "any PR",
            "enabled" if repo.enabled else "disabled",
        ]
        print(f"{repo.full_name}\t{', '.join(flags)}")


def github_user_add(session: Session, args: argparse.Namespace) -> None:
    session.add(GithubUser(login=args.login, source_schema=args.schema))
    try:
        session.flush()
    except IntegrityError:
        raise CommandError(f"GitHub user {args.login} is already registered") from None
    print(f"added GitHub user {args.login} → {args.schema}")


def _password(variable: str) -> str:
    password = os.environ.get(variable)
    if password is None:
        if not sys.stdin.isatty():
            raise CommandError(f"set {variable} or run interactively to type a password")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the passwords differ")
    return password


def user_add(session: Session, args: argparse.Namespace) -> None:
    try:
        accounts.create_user(session, args.username, _password("PULLRE_PASSWORD"), Role(args.role))
    except accounts.AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {args.role} {args.username}")


def status(session: Session, args: argparse.Namespace) -> None:
    views = pull_request_views(session)
    if args.json:
        json.dump([view.as_json() for view in views], sys.stdout, indent=2)
        print()
        return
    if not views:
        print("no open pull requests")
    for view in views:
        env = view.environment
        where = "awaiting approval" if view.awaiting_approval else "no environment"
        if env is not None:
            where = env.status
            if env.queue_position:
                where += f" (#{env.queue_position} in queue)"
            if env.server:
                where += f" on {env.server}"
            if env.url:
                where += f" {env.url}"
        print(f"{view.repository}#{view.number}\t{view.head_sha[:7]}\t{where}\t{view.title}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pullre", description=__doc__)
    add_config_argument(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        func: Command,
        help_text: str,
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = commands,
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        add_config_argument(sub, suppress=True)
        sub.set_defaults(func=func)
        return sub

    repo = commands.add_parser("repo", help="repositories pullre follows")
    repo_commands = repo.add_subparsers(dest="repo_command", required=True, metavar="COMMAND")
    add = command("add", repo_add, "follow a GitHub repository", repo_commands)
    add.add_argument("repository", type=full_name, metavar="OWNER/NAME")
    add.add_argument("--base-schema", type=_schema, help="schema each PR's schema is cloned from")
    add.add_argument("--label", help="only PRs with this label get an environment")
    command("list", repo_list, "list followed repositories", repo_commands)
    cli_approvals.add_commands(command, repo_commands, commands)
    cli_secrets.add_commands(command, commands)

    github_user = commands.add_parser("github-user", help="GitHub logins with their own schema")
    gh_commands = github_user.add_subparsers(dest="gh_command", required=True, metavar="COMMAND")
    add = command("add", github_user_add, "register a GitHub login's source schema", gh_commands)
    add.add_argument("login", type=_login)
    add.add_argument("--schema", type=_schema, required=True)

    user = commands.add_parser("user", help="people who log in to the UI")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")
    add = command(
        "add", user_add, "add a UI user (password from PULLRE_PASSWORD or a prompt)", user_commands
    )
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.MEMBER.value)

    server = commands.add_parser("server", help="the pool of staging servers")
    server_commands = server.add_subparsers(dest="server_command", required=True, metavar="COMMAND")
    cli_servers.add_commands(command, server_commands)
    cli_server_settings.add_commands(command, server_commands, commands)

    sandbox = commands.add_parser(
        "sandbox", help="drive a running `python app.py --sandbox` (its GitHub stand-in)"
    )
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    for verb, text in (("close", "close PR N"), ("push", "push a new commit to PR N")):
        sub = sandbox_commands.add_parser(verb, help=text, description=text)
        sub.add_argument("number", type=int, metavar="N")
        sub.set_defaults(func=None, sandbox_action=verb)

    cli_agent_bundle.add_commands(commands)
    show = command("status", status, "where every open PR stands")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        return _sandbox(args.sandbox_action, args.number)
    if getattr(args, "standalone", None):  # needs no settings nor database
        return int(args.standalone(args))
    settings = settings_or_exit(args.config)
    engine = make_engine(settings.controller.database_url)
    try:
        require_migrated(engine)
        with make_session_factory(engine)() as session:
            args.func(session, args)
            session.commit()
    except (CommandError, servers.ServerError, ApprovalRefused) as exc:
        print(f"pullre: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        engine.dispose()
    return EXIT_OK


def _sandbox(action: str, number: int) -> int:
    """Talk to the running sandbox, not to a controller DB: it may have no app.ini at all."""
    from pullre.sandbox import statefile  # noqa: PLC0415 - only these commands need it

    try:
        print(statefile.act(os.environ, number, action))
    except statefile.NoSandbox as exc:
        print(f"pullre: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
