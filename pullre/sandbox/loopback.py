"""A free TCP port on 127.0.0.1, for the local servers the sandbox, benches and tests start."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS's pick); another process may take it before the
    caller binds, which on a loopback the caller owns is rare enough for a toy or a test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
