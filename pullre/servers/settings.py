"""What admins set on a server besides its registration: its price, and office hours for machines
kept outside the pool.

Pool servers are started and stopped for the PRs they serve (and sleep with their repository's
office hours), so a schedule of their own would fight the reconciler: only servers outside the
pool take one, and the reconcile pass starts them at opening and stops them at closing. Shared
by the admin UI and the CLI so both refuse the same things with the same words; every change
writes an event and callers commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from pullre import events
from pullre.models import Schedule, Server
from pullre.policies import office_hours
from pullre.servers.registry import ServerError, check_instance_id

#: ``servers.hourly_price`` is NUMERIC(10, 4).
_PRICE_PLACES = 4
_MAX_PRICE = Decimal("999999.9999")
_NAME_LENGTH = 100

POOL_SERVERS_FOLLOW_THEIR_PRS = (
    "pool servers follow their PRs (and their repository's office hours), not a schedule of "
    "their own"
)


def check_hourly_price(value: str) -> Decimal | None:
    """Typed-in price per running hour: blank means "the instance type's price" (None)."""
    value = value.strip()
    if not value:
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number, e.g. 0.0416") from None
    if not price.is_finite() or price < 0:
        raise ValueError("the hourly price must be a number of at least 0")
    if price > _MAX_PRICE:
        raise ValueError(f"the hourly price must be at most {_MAX_PRICE}")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > _PRICE_PLACES:
        raise ValueError(f"the hourly price takes at most {_PRICE_PLACES} decimal places")
    return price + 0  # "-0" is 0


def format_price(price: Decimal) -> str:
    """2 to 4 decimals: "0.08", "0.0416", "1.50", as prices per hour are usually written."""
    text = f"{price.quantize(Decimal(1).scaleb(-_PRICE_PLACES)):f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


@dataclass(frozen=True)
class AppliedPrice:
    """The price a server's running hours are charged at, and where it comes from."""

    amount: Decimal | None
    #: "own" (set on the server), "type" (its instance type in ``[cost]``) or None (no price).
    source: str | None

    def describe(self, currency: str, instance_type: str | None) -> str:
        if self.amount is None:
            return "no price"
        text = f"{format_price(self.amount)} {currency}/h"
        if self.source == "type":
            return f"{text} ({instance_type} price)"
        return f"{text} (own price)"


def applied_price(server: Server, prices: Mapping[str, Decimal]) -> AppliedPrice:
    """Mirrors :func:`pullre.cost.hourly_price`, saying which of the two rules applied."""
    if server.hourly_price is not None:
        return AppliedPrice(server.hourly_price, "own")
    if server.instance_type and server.instance_type in prices:
        return AppliedPrice(prices[server.instance_type], "type")
    return AppliedPrice(None, None)


def set_price_and_schedule(
    session: Session,
    server: Server,
    *,
    hourly_price: Decimal | None,
    schedule: Schedule | None,
    name: str | None = None,
) -> None:
    """Save what an admin chose; a schedule on a pool server is refused (see the docstring).

    ``schedule_state`` is left as it is: compared with the new schedule, the pass then acts on
    the side the new hours are on (a machine that was stopped at closing is started when the
    new hours are open).
    """
    if schedule is not None and server.in_pool:
        raise ServerError(f"{label(server)}: {POOL_SERVERS_FOLLOW_THEIR_PRS}")
    if name is not None:
        server.name = name.strip()[:_NAME_LENGTH]
    server.hourly_price = hourly_price
    server.schedule = schedule
    server.schedule_id = schedule.id if schedule is not None else None
    price = "type price" if hourly_price is None else format_price(hourly_price)
    hours = office_hours.describe(schedule) if schedule is not None else "none"
    events.record(
        session,
        "server.saved",
        f"{label(server)} saved: price {price}, office hours {hours}",
        server=server,
        hourly_price=None if hourly_price is None else str(hourly_price),
        schedule=schedule.name if schedule is not None else None,
    )


def add_outside_server(
    session: Session,
    instance_id: str,
    *,
    name: str = "",
    hourly_price: Decimal | None = None,
    schedule: Schedule | None = None,
) -> Server:
    """Make pullre know an instance it must not hand to PRs, e.g. an always-on test machine.

    It gets no agent token and no staging URL: nothing is deployed to it. An instance pullre
    already knows is refused, whether in the pool (remove it first) or outside it (edit it).
    """
    instance_id = check_instance_id(instance_id)
    known = session.scalar(select(Server).where(Server.instance_id == instance_id))
    if known is not None:
        where = "in the pool" if known.in_pool else "already known outside the pool"
        raise ServerError(f"{instance_id} is {where}")
    server = Server(instance_id=instance_id, in_pool=False, name=name.strip()[:_NAME_LENGTH])
    session.add(server)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ServerError(f"{instance_id} is already known") from None
    events.record(session, "server.added", f"{label(server)} added outside the pool", server=server)
    set_price_and_schedule(session, server, hourly_price=hourly_price, schedule=schedule)
    return server


def schedule_by_name(session: Session, name: str) -> Schedule:
    schedule = session.scalar(select(Schedule).where(Schedule.name == name))
    if schedule is None:
        known = ", ".join(session.scalars(select(Schedule.name).order_by(Schedule.name))) or "none"
        raise ServerError(f"no schedule named {name!r} (known: {known})")
    return schedule


def next_start_or_stop(server: Server, now: datetime) -> str | None:
    """E.g. "stops Fri 2026-03-27 18:00 CET (Europe/Berlin)", for a scheduled outside server."""
    schedule = server.schedule
    if schedule is None or server.in_pool:
        return None
    change = office_hours.next_change(schedule, now)
    if change is None:
        return "always on" if office_hours.is_open(schedule, now) else "never started"
    verb = "stops" if office_hours.is_open(schedule, now) else "starts"
    return f"{verb} {office_hours.format_in_zone(schedule, change)}"


def label(server: Server) -> str:
    return f"{server.name} ({server.instance_id})" if server.name else server.instance_id


def outside_servers(session: Session) -> list[Server]:
    """Servers pullre knows but never hands to a PR: scheduled machines, removed pool servers."""
    return list(
        session.scalars(
            select(Server)
            .where(Server.in_pool.is_(False))
            .options(selectinload(Server.schedule))
            .order_by(Server.name, Server.instance_id)
        )
    )
