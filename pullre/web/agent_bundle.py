"""The controller's own agent bundle: served at ``GET /api/agent/bundle``, named in assignments.

Built once per process from the tree the controller runs (``pullre.agent.bundle``), so every
replica of one release serves the same bytes and the same hash. Agents compare that hash with
their own file's and update themselves (``pullre.agent.self_update``); the Servers page compares
what each agent reports with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import Request, Response

from pullre.agent import AGENT_VERSION, bundle


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str

    @property
    def identity(self) -> str:
        """What an agent run from this bundle reports as its ``agent_version``."""
        return bundle.identity_of(AGENT_VERSION, self.sha256)


@functools.cache
def current() -> Bundle:
    data = bundle.build(bundle.tree_root())
    return Bundle(data=data, sha256=bundle.sha256(data))


def offer() -> dict[str, str]:
    """The ``agent`` member of an assignment answer: what an up-to-date agent runs."""
    return {"version": AGENT_VERSION, "sha256": current().sha256}


def response(request: Request) -> Response:
    """The bundle, with its hash in a header and as the ETag (304 when the caller has it)."""
    served = current()
    if served.sha256 in request.if_none_match:
        answer = Response(status=304)
    else:
        answer = Response(served.data, mimetype="application/zip")
        answer.headers["Content-Disposition"] = "attachment; filename=pullre-agent.pyz"
    answer.set_etag(served.sha256)
    answer.headers[bundle.SHA256_HEADER] = served.sha256
    answer.headers["Cache-Control"] = "no-cache"
    return answer


def outdated(reported: str | None) -> bool:
    """Whether an agent reporting ``reported`` as its version differs from the controller's:
    another version, or a bundle (``VERSION+HASH``) other than the one served. An agent run
    from a source tree reports the version alone, which is all there is to compare."""
    if not reported:
        return False
    version, _, digest = reported.partition("+")
    if version != AGENT_VERSION:
        return True
    return bool(digest) and reported != current().identity
