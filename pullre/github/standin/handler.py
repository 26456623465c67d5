"""The fake GitHub's HTTP side: one request read off the socket, one response written back.

A body that is not JSON is GitHub's 400 ``Problems parsing JSON`` before anything else looks at
it; everything else is the server's ``answer`` (``GitHubStandIn`` subclasses this handler per
server). Keep-alive and no Nagle delay, as PyGithub's pooled session expects.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pullre.github.standin.state import Fail, Request, Response


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as PyGithub's pooled session expects
    disable_nagle_algorithm = True  # headers and body are two writes; no 40 ms ACK wait
    timeout = 10

    def answer(self, request: Request) -> Response:  # pragma: no cover - replaced per server
        raise NotImplementedError

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        request = Request(
            method=self.command,
            path=parts.path.rstrip("/") or "/",
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if body is None:
            response = Fail(400, "Problems parsing JSON").response
        else:
            response = self.answer(request)
        if response.raw is not None:
            payload = response.raw
        else:
            payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log on the stand-in is what tests read."""
