"""``python app.py --sandbox``: the whole loop on one machine, with no AWS and no GitHub.

See ``pullre.sandbox.run`` for what starts and in which order; the CLI's ``sandbox`` commands
reach a running sandbox through ``pullre.sandbox.statefile``.
"""

from __future__ import annotations


def main(*, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Run the sandbox until Ctrl-C or SIGTERM; imported late so the CLI stays light."""
    from pullre.sandbox.run import run  # noqa: PLC0415

    return run(host=host, port=port)
