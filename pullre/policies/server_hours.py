"""Office hours for servers outside the pool: always-on test machines started and stopped.

What admins once set ``auto_start_at``/``auto_stop_at`` for. pullre acts on the schedule's edges
only, as for repositories: ``Server.schedule_state`` holds the side last acted on (None counts
as open), so a machine someone starts by hand at night keeps running until the next closing
edge. The state is stored only once EC2 accepted the call (or the machine already was where the
schedule wants it), so a refused or lost call is tried again by the next pass; an instance
mid-transition (pending, stopping) is left alone until a pass sees it settle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from pullre import events
from pullre.ec2.port import Ec2Error, InstanceInfo
from pullre.models import Server
from pullre.policies import office_hours

if TYPE_CHECKING:
    from pullre.reconcile.pool_operations import PoolOperations

#: The EC2 state each side of the schedule wants, and the state a call can move from.
_WANTED = {office_hours.OPEN: "running", office_hours.CLOSED: "stopped"}
_MOVABLE = {office_hours.OPEN: "stopped", office_hours.CLOSED: "running"}


def follow(ops: PoolOperations, observed: dict[str, InstanceInfo]) -> None:
    """Start or stop each scheduled server outside the pool whose hours changed side."""
    now = ops.clock()
    with ops.sessions() as session:
        servers = session.scalars(
            select(Server)
            .where(Server.in_pool.is_(False), Server.schedule_id.is_not(None))
            .options(joinedload(Server.schedule))
            .order_by(Server.id)
        ).all()
        for server in servers:
            if not ops.ec2_usable:
                return
            schedule = server.schedule
            assert schedule is not None
            try:
                side = office_hours.side(schedule, now)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                ops.context.error(
                    session,
                    f"{server.instance_id}: office hours not followed: {exc}",
                    server=server,
                )
                continue
            if side == (server.schedule_state or office_hours.OPEN):
                continue
            info = observed.get(server.instance_id)
            state = info.state if info is not None else None
            if state == _WANTED[side]:
                _settled(session, server, side, f"already {state}")
            elif state == _MOVABLE[side]:
                _move(ops, session, server, side)
            # pending, stopping or not seen: wait for a pass that sees it settle


def _settled(session: Session, server: Server, side: str, how: str) -> None:
    server.schedule_state = side
    events.record(
        session,
        f"office_hours_{side}",
        f"{server.name or server.instance_id}: office hours {_name(server)}{side}, {how}",
        server=server,
    )
    session.commit()


def _move(ops: PoolOperations, session: Session, server: Server, side: str) -> None:
    session.commit()  # hold no transaction while EC2 answers
    try:
        if side == office_hours.OPEN:
            state = ops.ec2.start(server.instance_id)
        else:
            state = ops.ec2.stop(server.instance_id)
    except Ec2Error as exc:
        ops.ec2_failed(session, exc, None, server)  # state kept: the next pass tries again
        return
    server.observed_state = state
    server.last_error = None
    verb = "starting" if side == office_hours.OPEN else "stopping"
    (ops.report.started if side == office_hours.OPEN else ops.report.stopped).append(
        server.instance_id
    )
    _settled(session, server, side, f"{server.instance_id} {verb}")
    ops.renew()


def _name(server: Server) -> str:
    return f"({server.schedule.name}) " if server.schedule is not None else ""
