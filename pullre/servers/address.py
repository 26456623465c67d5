"""Where a pool server's app is reached: its staging URL and the port the app listens on.

Both can change after registration (a new DNS name, a proxy in front that moved the app to
another port), also while a PR holds the server. Nothing is pushed to the box: the URL is what
pullre shows and reports from now on, and the port goes to the agent with the server's next
assignment (the agent reads its assignment on every pass) and is used by the next deploy there,
the next PR's or the current one's next push or redeploy. Shared by the CLI and the admin page so
both refuse the same things with the same words; callers commit.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pullre import events
from pullre.models import Server
from pullre.servers.registry import ServerError, check_staging_url
from pullre.servers.settings import label

#: The same sentinel for "leave it as it is" in the CLI; None means "the box's default".
KEEP = -1


def check_app_port(value: str) -> int | None:
    """Typed-in port: blank means "the box's own ([agent] port, else 8000)" (None)."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"{value!r} is not a port number (1 to 65535)")
    return int(value)


def set_address(
    session: Session, server: Server, *, staging_url: str | None, app_port: int | None
) -> list[str]:
    """Save a new URL and/or port (``staging_url`` None or ``app_port`` KEEP: unchanged);
    returns what changed, each as words for the admin, and records one event for it."""
    if not server.in_pool:
        raise ServerError(f"{label(server)} is outside the pool: it has no staging URL or port")
    changes: list[str] = []
    if staging_url is not None:
        try:
            staging_url = check_staging_url(staging_url)
        except ValueError as exc:
            raise ServerError(str(exc)) from None
        if staging_url != server.staging_url:
            changes.append(f"staging URL {server.staging_url or '(none)'} → {staging_url}")
            server.staging_url = staging_url
    if app_port != KEEP:
        if app_port is not None and not 1 <= app_port <= 65535:
            raise ServerError(f"{app_port} is not a port number (1 to 65535)")
        if app_port != server.app_port:
            changes.append(f"app port {_port(server.app_port)} → {_port(app_port)}")
            server.app_port = app_port
    if changes:
        events.record(
            session,
            "server.address",
            f"{label(server)}: {'; '.join(changes)} (applies at its next assignment)",
            server=server,
            staging_url=server.staging_url,
            app_port=server.app_port,
        )
    return changes


def _port(port: int | None) -> str:
    return "the box's default" if port is None else str(port)
