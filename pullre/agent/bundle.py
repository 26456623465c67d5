"""The agent as one file: ``pullre-agent.pyz``, a standard-library zipapp, and which one runs.

The controller builds the bundle from its own tree and serves it; agents compare its hash with
their own file's to know they are out of date. So the bytes must depend on the source files
alone: entries in a fixed order, one fixed timestamp and mode, stored uncompressed (deflate's
output may differ between zlib builds, which would make two controller replicas disagree).

A running agent is told apart by ``identity()``: ``AGENT_VERSION`` from a source tree,
``AGENT_VERSION+<first 12 hex of its file's sha256>`` from a bundle, which is what its heartbeat
reports as ``agent_version`` and what the Servers page compares with the controller's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipapp
import zipfile
import zipimport
from pathlib import Path

from pullre.agent import AGENT_VERSION

#: What the bundle holds, relative to the directory above ``pullre/``.
PACKAGES = ("pullre/agent", "pullre/smoke")
#: Run as ``python3 pullre-agent.pyz ...``: what ``client.py`` runs, once the interpreter is new
#: enough (Amazon Linux 2023's ``python3`` is 3.9; the agent reads ``.pullre.toml`` with tomllib).
MAIN = """import sys

if sys.version_info < (3, 11):
    sys.exit("pullre-agent needs Python 3.11 or later, not " + sys.version.split()[0])

from pullre.agent.main import main

sys.exit(main())
"""
INTERPRETER = "/usr/bin/env python3"
#: Zip cannot hold times before 1980; every entry gets this one.
TIMESTAMP = (1980, 1, 1, 0, 0, 0)
#: The response header carrying the served bundle's sha256 (hex).
SHA256_HEADER = "X-Pullre-Bundle-Sha256"
#: Hex digits of the bundle's sha256 in an agent's identity (fits ``agent_version``'s 40).
IDENTITY_DIGITS = 12


def source_files(root: Path) -> list[str]:
    """The bundle's files as archive names, sorted; ``root`` is the directory above ``pullre/``."""
    names = ["pullre/__init__.py"]
    for package in PACKAGES:
        names += [
            path.relative_to(root).as_posix()
            for path in (root / package).rglob("*.py")
            if "__pycache__" not in path.parts
        ]
    return sorted(names)


def build(root: Path) -> bytes:
    """The zipapp's bytes for the tree at ``root``: equal trees give equal bytes."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name in [*source_files(root), "__main__.py"]:
            data = MAIN.encode() if name == "__main__.py" else (root / name).read_bytes()
            entry = zipfile.ZipInfo(name, date_time=TIMESTAMP)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # unix, whatever the building machine
            bundle.writestr(entry, data)
    archive.seek(0)
    result = io.BytesIO()
    # zipapp puts the interpreter line in front, as `python -m zipapp` would.
    zipapp.create_archive(archive, result, interpreter=INTERPRETER)
    return result.getvalue()


def tree_root() -> Path:
    """The directory above the ``pullre`` package this code was imported from."""
    return Path(__file__).resolve().parent.parent.parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity_of(version: str, digest: str | None) -> str:
    return version if digest is None else f"{version}+{digest[:IDENTITY_DIGITS]}"


def running_bundle() -> Path | None:
    """The ``.pyz`` this code runs from, or None when it runs from a source tree."""
    loader = globals().get("__loader__")
    if isinstance(loader, zipimport.zipimporter):
        return Path(loader.archive).resolve()
    return None


@functools.cache
def running_sha256() -> str | None:
    """The running bundle's hash, read once: the file may be replaced under this process."""
    path = running_bundle()
    return None if path is None else sha256(path.read_bytes())


def identity() -> str:
    """What this agent reports as ``agent_version``."""
    return identity_of(AGENT_VERSION, running_sha256())
