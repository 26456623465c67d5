"""CLI commands for the pool of staging servers: ``python -m pullre server add|list|remove|...``.

Registering a server prints its agent token once (``token`` replaces it, printing the new one
once); ``add --check`` asks EC2 whether it knows the instance. The rules are those of
:mod:`pullre.servers.registry`, so the UI and the CLI refuse the same things with the same
words. A server's price, address and office hours are ``server_settings``.
"""

from __future__ import annotations

import argparse

from botocore.exceptions import BotoCoreError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.cli import CommandError
from pullre.cli.arguments import AddCommand
from pullre.ec2.boto3_adapter import make_ec2
from pullre.ec2.port import Ec2Error
from pullre.models import Server, utcnow
from pullre.servers import registry as servers
from pullre.startup import settings_or_exit


def _instance_id(value: str) -> str:
    try:
        return servers.check_instance_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _url(value: str) -> str:
    try:
        return servers.check_staging_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_token(instance_id: str, token: str) -> None:
    print(f"agent token for {instance_id}: {token}")
    print("It will not be shown again; put it in that instance's agent ini as [agent] token.")


def _pool_server(session: Session, instance_id: str) -> Server:
    server = session.scalar(
        select(Server).where(Server.instance_id == instance_id, Server.in_pool.is_(True))
    )
    if server is None:
        raise CommandError(f"{instance_id} is not in the pool")
    return server


def server_add(session: Session, args: argparse.Namespace) -> None:
    if args.check:
        # Only here does the CLI need AWS, so only here are [aws] settings read.
        try:
            found = make_ec2(settings_or_exit(args.config).aws).describe([args.instance_id])
        except (Ec2Error, BotoCoreError) as exc:
            raise CommandError(f"could not check {args.instance_id} in EC2: {exc}") from None
        if args.instance_id not in found:
            raise CommandError(f"EC2 does not know {args.instance_id} in this account and region")
    try:
        server, token = servers.register_server(
            session, args.instance_id, args.url, args.name or ""
        )
    except servers.ServerError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {server.instance_id} ({server.staging_url})")
    _print_token(server.instance_id, token)


def server_list(session: Session, args: argparse.Namespace) -> None:
    now = utcnow()
    for row in servers.server_rows(session):
        server = row.server
        heartbeat = servers.age(server.last_heartbeat, now)
        print(
            f"{server.instance_id}\t{server.name or '-'}\t{server.observed_state or 'unknown'}"
            f"\t{row.held_by or 'free'}\theartbeat {heartbeat}"
            + (f"\tDIRTY: {server.dirty_reason}" if server.dirty_reason else "")
        )


def server_clean(session: Session, args: argparse.Namespace) -> None:
    server = _pool_server(session, args.instance_id)
    if server.dirty_reason is None:
        print(f"{args.instance_id} is not dirty")
        return
    servers.mark_clean(session, server, "the CLI")
    print(f"marked {args.instance_id} clean; it takes pull requests again")


def server_remove(session: Session, args: argparse.Namespace) -> None:
    try:
        servers.remove_server(session, _pool_server(session, args.instance_id))
    except servers.ServerError as exc:
        raise CommandError(str(exc)) from None
    print(f"removed {args.instance_id} from the pool")


def server_token(session: Session, args: argparse.Namespace) -> None:
    token = servers.rotate_token(session, _pool_server(session, args.instance_id))
    _print_token(args.instance_id, token)


def add_commands(
    command: AddCommand, server_commands: argparse._SubParsersAction[argparse.ArgumentParser]
) -> None:
    add = command(
        "add", server_add, "register an EC2 instance; prints its agent token once", server_commands
    )
    add.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
    add.add_argument("--url", type=_url, required=True, help="the server's staging URL")
    add.add_argument("--name", help="shown in the UI and PR comments")
    add.add_argument("--check", action="store_true", help="check that EC2 knows the instance")
    command(
        "list", server_list, "pool servers, their state and the PR each serves", server_commands
    )
    remove = command("remove", server_remove, "take a server out of the pool", server_commands)
    remove.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
    token = command(
        "token", server_token, "replace a server's agent token; prints it once", server_commands
    )
    token.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
    clean = command(
        "clean", server_clean, "mark a dirty server clean: it takes PRs again", server_commands
    )
    clean.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
