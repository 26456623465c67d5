"""The adapters ``create_app`` was given, each built once, on first use, for every page.

The app starts (and serves every other page) without AWS or GitHub credentials: a port is built
from its factory the first time a page needs it, under a lock so two requests never build two.
One GitHub port serves the scenario pages and the agent API's fetch tokens alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

from flask import Flask, current_app

from pullre.config import ConfigError
from pullre.ec2.port import Ec2, Ec2Error
from pullre.github.port import GitHub, GitHubError

_FACTORIES_KEY = "pullre.port_factories"
_BUILT_KEY = "pullre.ports"
_lock = threading.Lock()


def init_app(
    app: Flask, *, ec2: Callable[[], Ec2] | None, github: Callable[[], GitHub] | None
) -> None:
    app.extensions[_FACTORIES_KEY] = {"ec2": ec2, "github": github}
    app.extensions[_BUILT_KEY] = {}


def ec2() -> Ec2:
    """The EC2 port; Ec2Error when the app was started without one."""
    port = _built("ec2")
    if port is None:
        raise Ec2Error("this controller was started without EC2 (no [aws] adapter)")
    return cast(Ec2, port)


def github() -> GitHub:
    """The GitHub port; GitHubError when there is none or its settings are unusable."""
    try:
        port = _built("github")
    except (ConfigError, OSError) as exc:
        raise GitHubError(f"the [github] settings are unusable: {exc}") from None
    if port is None:
        raise GitHubError("this controller was started without a GitHub client")
    return cast(GitHub, port)


def _built(name: str) -> object | None:
    """The port called ``name``, built now if it was not yet; None without a factory."""
    built: dict[str, object] = current_app.extensions[_BUILT_KEY]
    if name not in built:
        with _lock:
            if name not in built:
                factory: Callable[[], object] | None = current_app.extensions[_FACTORIES_KEY][name]
                if factory is None:
                    return None
                built[name] = factory()
    return built[name]
