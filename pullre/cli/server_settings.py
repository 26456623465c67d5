"""CLI commands for what a server costs and when machines outside the pool run.

``python -m pullre server set|outside`` and ``schedule list``; ``server set --url/--port`` follow
:mod:`pullre.servers.address`; the rules are those of
:mod:`pullre.servers.settings`, so the UI and the CLI refuse the same things with the same words.
Failures are :class:`~pullre.servers.ServerError`, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.cli.arguments import AddCommand
from pullre.models import Schedule, Server, utcnow
from pullre.policies import office_hours
from pullre.servers import settings as server_settings
from pullre.servers.address import KEEP, check_app_port, set_address
from pullre.servers.registry import ServerError, check_instance_id
from pullre.startup import settings_or_exit


def _price(value: str) -> Decimal:
    try:
        price = server_settings.check_hourly_price(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if price is None:
        raise argparse.ArgumentTypeError("give a price, or --type-price for the type's price")
    return price


def _instance_id(value: str) -> str:
    try:
        return check_instance_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _summary(server: Server, args: argparse.Namespace) -> str:
    cost = settings_or_exit(args.config).cost
    price = server_settings.applied_price(server, cost.instance_prices)
    hours = "none"
    if server.schedule is not None:
        hours = f"{server.schedule.name}: {office_hours.describe(server.schedule)}"
    text = f"price {price.describe(cost.currency, server.instance_type)}, office hours {hours}"
    upcoming = server_settings.next_start_or_stop(server, utcnow())
    return f"{text}; {upcoming}" if upcoming else text


def _port(value: str) -> int:
    try:
        port = check_app_port(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if port is None:
        raise argparse.ArgumentTypeError("give a port, or --default-port for the box's own")
    return port


def server_set(session: Session, args: argparse.Namespace) -> None:
    server = session.scalar(select(Server).where(Server.instance_id == args.instance_id))
    if server is None:
        raise ServerError(f"pullre does not know {args.instance_id}")
    address = args.url is not None or args.port is not None or args.default_port
    if address:
        port = None if args.default_port else KEEP if args.port is None else args.port
        changes = set_address(session, server, staging_url=args.url, app_port=port)
        print(f"saved {server.instance_id}: {'; '.join(changes) or 'address unchanged'}")
        if changes:
            print("applies at its next assignment: the agent deploys with it next time")
    costs = (args.price, args.schedule, args.name)
    if address and all(v is None for v in costs) and not (args.type_price or args.no_schedule):
        return
    price = server.hourly_price
    if args.type_price:
        price = None
    elif args.price is not None:
        price = args.price
    schedule = server.schedule
    if args.no_schedule:
        schedule = None
    elif args.schedule is not None:
        schedule = server_settings.schedule_by_name(session, args.schedule)
    server_settings.set_price_and_schedule(
        session, server, hourly_price=price, schedule=schedule, name=args.name
    )
    print(f"saved {server.instance_id}: {_summary(server, args)}")


def server_outside(session: Session, args: argparse.Namespace) -> None:
    schedule = None
    if args.schedule is not None:
        schedule = server_settings.schedule_by_name(session, args.schedule)
    server = server_settings.add_outside_server(
        session, args.instance_id, name=args.name or "", hourly_price=args.price, schedule=schedule
    )
    print(f"added {server.instance_id} outside the pool: {_summary(server, args)}")


def schedule_list(session: Session, args: argparse.Namespace) -> None:
    now = utcnow()
    for schedule in session.scalars(select(Schedule).order_by(Schedule.name)):
        change = office_hours.next_change(schedule, now)
        state = "open" if office_hours.is_open(schedule, now) else "closed"
        upcoming = (
            f"{'closes' if state == 'open' else 'opens'} "
            f"{office_hours.format_in_zone(schedule, change)}"
            if change is not None
            else "never changes"
        )
        print(f"{schedule.name}\t{office_hours.describe(schedule)}\t{state} now, {upcoming}")


def add_commands(
    command: AddCommand,
    server_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    set_ = command(
        "set",
        server_set,
        "set a server's name, staging URL, app port, hourly price or (outside the pool) "
        "office hours",
        server_commands,
    )
    set_.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
    set_.add_argument("--name", help="shown in the UI and PR comments")
    set_.add_argument("--url", help="its new staging URL (a pool server's)")
    port = set_.add_mutually_exclusive_group()
    port.add_argument(
        "--port", type=_port, help="the port its app listens on, sent with its next assignment"
    )
    port.add_argument(
        "--default-port", action="store_true", help="the box's own [agent] port (else 8000)"
    )
    price = set_.add_mutually_exclusive_group()
    price.add_argument("--price", type=_price, help="its own price per running hour")
    price.add_argument(
        "--type-price", action="store_true", help="charge its instance type's [cost] price"
    )
    hours = set_.add_mutually_exclusive_group()
    hours.add_argument("--schedule", metavar="NAME", help="office hours (outside the pool only)")
    hours.add_argument("--no-schedule", action="store_true", help="no office hours")

    outside = command(
        "outside",
        server_outside,
        "add an instance outside the pool (started and stopped by office hours, never a PR's)",
        server_commands,
    )
    outside.add_argument("instance_id", type=_instance_id, metavar="INSTANCE_ID")
    outside.add_argument("--name", help="shown in the UI")
    outside.add_argument("--price", type=_price, help="its own price per running hour")
    outside.add_argument("--schedule", metavar="NAME", help="office hours that start and stop it")

    schedule = commands.add_parser("schedule", help="office hours (add them in the UI)")
    schedule_commands = schedule.add_subparsers(
        dest="schedule_command", required=True, metavar="COMMAND"
    )
    command(
        "list",
        schedule_list,
        "office hours, whether each is open now and its next change",
        schedule_commands,
    )
