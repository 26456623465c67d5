"""Between passes, an agent run from a bundle becomes the bundle its controller serves.

The controller names its bundle's version and sha256 in every assignment answer. When that hash
is not the running file's, the agent downloads the bundle, refuses it unless its sha256 is the
one named (a truncated or tampered download leaves the old file as it was), writes it to a temp
file beside its own, fsyncs it and ``os.replace``s its file with it, so the path always holds a
whole bundle, old or new, even across a crash. In ``--loop`` it then re-executes itself (the
same interpreter, options and arguments) before the next pass; once a pass (cron, a timer) just
leaves the new file for the next run. An agent run from a source tree cannot replace itself: it
says an update is available and carries on.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from pullre.agent import AGENT_VERSION, bundle
from pullre.agent.controller import (
    BundleOffer,
    Controller,
    ControllerRefused,
    ControllerUnavailable,
)

log = logging.getLogger(__name__)
#: After a failed update, the same bundle is not tried again for this long (a read-only
#: directory, a proxy that mangles it): a --loop pass comes every 25 s.
RETRY_AFTER_S = 300.0


class UpdateRefused(Exception):
    """The downloaded bundle is not the one the controller named, or not a bundle at all."""


def outdated(offer: BundleOffer | None) -> bool:
    """Whether this agent differs from the one the controller serves."""
    if offer is None:
        return False
    running = bundle.running_sha256()
    if running is None:
        return offer.version != AGENT_VERSION
    return offer.sha256 != running


def install(data: bytes, expected_sha256: str, target: Path) -> None:
    """Replace ``target`` with ``data`` atomically, once ``data`` proves to be the bundle named."""
    actual = bundle.sha256(data)
    if actual != expected_sha256:
        raise UpdateRefused(
            f"the downloaded bundle's sha256 is {actual}, not {expected_sha256} as announced; "
            "keeping the running agent"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "__main__.py" not in archive.namelist():
                raise UpdateRefused("the downloaded bundle has no __main__.py")
    except zipfile.BadZipFile:
        raise UpdateRefused("the downloaded bundle is not a zip archive") from None
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".new"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def restart() -> None:
    """Become a new process of the same interpreter with the same options and arguments."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 - our own argv


def between_passes(controller: Controller) -> bool:
    """Update this agent when the controller serves another; True when its file was replaced.

    Never raises for a failed update: the running agent carries on, and tries that bundle
    again after ``RETRY_AFTER_S``.
    """
    offer = controller.offer
    if offer is None or not outdated(offer):
        return False
    target = bundle.running_bundle()
    failed_at = _FAILED.get(offer.sha256)
    if failed_at is not None and time.monotonic() < failed_at + RETRY_AFTER_S:
        return False
    if target is None:
        _say_once(
            f"the controller serves agent {offer.version} (this one is {AGENT_VERSION}, run from "
            "a source tree, which does not update itself)"
        )
        return False
    log.info(
        "updating the agent %s to %s (sha256 %s) from the controller",
        bundle.identity(),
        offer.version,
        offer.sha256,
    )
    try:
        install(controller.bundle(), offer.sha256, target)
    except (UpdateRefused, ControllerUnavailable, ControllerRefused, OSError) as exc:
        log.error("agent update refused or failed (next try in %g s): %s", RETRY_AFTER_S, exc)
        _FAILED[offer.sha256] = time.monotonic()
        return False
    log.info("%s replaced by agent %s", target, offer.version)
    return True


_SAID: set[str] = set()
#: When an update to each offered hash last failed (monotonic seconds), in this process.
_FAILED: dict[str, float] = {}


def _say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        log.warning("%s", message)
