"""``python -m pullre``: the admin CLI, one module per command group.

Modules: ``main`` (the parser, ``main(argv) -> exit status``, repositories, GitHub users, UI
users and status), ``servers`` (the pool: add, list, remove, token, clean), ``server_settings``
(a server's price and office hours, machines outside the pool), ``approvals`` (a repository's
trust, approvers and clone URL, approving a PR's head), ``secrets`` (repository secrets),
``agent_bundle`` (the agent as one file), ``arguments`` (what their arguments share).

May import anything but ``web``; the CLI is an entry point and builds its own adapters.
Public name: ``CommandError``, a command that cannot be carried out.
"""

from __future__ import annotations


class CommandError(Exception):
    """A command that cannot be carried out; its message is the one line the user sees."""
