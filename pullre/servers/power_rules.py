"""When an admin may start or stop a server by hand, and why not otherwise.

One rule for both sides: :func:`pullre.servers.registry.start_server` and ``stop_server`` apply
it to the state EC2 reports at that moment, and the Servers page applies it to the last state a
pass observed, so the page shows Start only where it can work (and says why elsewhere).
"""

from __future__ import annotations

from pullre.ec2.port import TRANSITIONAL_STATES

START = "start"
STOP = "stop"
_SETTLED = {START: "running", STOP: "stopped"}


def why_not(action: str, label: str, state: str | None, held_by: str | None) -> str | None:
    """Why ``action`` (start/stop) cannot run on the server ``label`` in EC2 ``state`` now;
    ``held_by`` names the environment holding it. None when it may run (or the state is not
    known yet, when EC2 itself is asked)."""
    if state in TRANSITIONAL_STATES:
        return f"{label} is {state}; try again once it has settled"
    if state in {"terminated", "shutting-down"}:
        return f"{label} is terminated"
    if state == _SETTLED[action]:
        return f"{label} is already {state}"
    if action == STOP and held_by is not None:
        return f"{label} is held by {held_by}; it stops when that environment is released"
    return None
