"""``python -m pullre agent bundle -o pullre-agent.pyz``: the agent as one file for a staging box.

Needs no settings and no database: it packs the tree this ``pullre`` runs from, the same bytes
the controller serves at ``GET /api/agent/bundle``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pullre.agent import AGENT_VERSION, bundle
from pullre.startup import EXIT_FAILURE, EXIT_OK


def write_bundle(args: argparse.Namespace) -> int:
    data = bundle.build(bundle.tree_root())
    target: Path = args.output
    try:
        target.write_bytes(data)
        os.chmod(target, 0o755)  # noqa: S103 - `./pullre-agent.pyz` runs it by its #! line
    except OSError as exc:
        print(f"pullre: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {target}: agent {AGENT_VERSION}, {len(data)} bytes, sha256 {bundle.sha256(data)}")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``agent bundle``; it runs without settings (``standalone``), so main() skips the DB."""
    agent = commands.add_parser("agent", help="the staging agent")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True, metavar="COMMAND")
    text = "build the agent as one zipapp (python3 FILE --config INI [--loop] runs it)"
    build = agent_commands.add_parser("bundle", help=text, description=text)
    build.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("pullre-agent.pyz"),
        help="where to write it (default: pullre-agent.pyz)",
    )
    build.set_defaults(standalone=write_bundle)
