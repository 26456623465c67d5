"""A private repository over smart HTTP, as GitHub serves one: no credentials, no code.

``git http-backend`` (git's own CGI server) answers behind a small WSGI check of
``Authorization: Basic base64(x-access-token:TOKEN)``; ``may_read(token, "owner/name")`` decides
(tests wire it to the GitHub stand-in's grants). While it answers a request it looks through
``/proc`` at every process's command line, so a test can tell the token never was in any argv
while git was fetching, and that it did look at the fetching git processes.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

_PATH = re.compile(r"^/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+)\.git(?P<rest>/.*)$")


@dataclass(frozen=True)
class Seen:
    path: str
    token: str | None
    accepted: bool
    #: Command lines (of any process) that held the token while this request was answered.
    argv_with_token: tuple[str, ...]
    #: Command lines naming this server's URL then: the fetching git processes.
    fetching_argv: tuple[str, ...]


@dataclass
class PrivateGitServer:
    root: Path
    may_read: Callable[[str, str], bool]
    url: str = ""
    seen: list[Seen] = field(default_factory=list)

    def publish(self, owner: str, name: str, git_dir: Path) -> str:
        """Serve ``git_dir`` (a repository's ``.git``) as ``owner/name``; returns its URL."""
        target = self.root / owner / f"{name}.git"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(git_dir)
        return f"{self.url}/{owner}/{name}.git"

    def tokens_presented(self) -> set[str | None]:
        return {seen.token for seen in self.seen}

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = _PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        token = _token(environ.get("HTTP_AUTHORIZATION", ""))
        accepted = token is not None and self.may_read(token, f"{match['owner']}/{match['name']}")
        with_token, fetching = _processes(token, self.url)
        self.seen.append(Seen(match["rest"], token, accepted, with_token, fetching))
        if not accepted:
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="GitHub"'), ("Content-Type", "text/plain")],
            )
            return [b"Authentication required\n"]
        return self._backend(environ, start_response)

    def _backend(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
        cgi.pop("HTTP_AUTHORIZATION", None)
        cgi.update(
            GIT_PROJECT_ROOT=str(self.root),
            GIT_HTTP_EXPORT_ALL="1",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL="/dev/null",
            PATH=os.environ.get("PATH", os.defpath),
            PATH_INFO=environ["PATH_INFO"],
            REQUEST_METHOD=environ["REQUEST_METHOD"],
            QUERY_STRING=environ.get("QUERY_STRING", ""),
            CONTENT_TYPE=environ.get("CONTENT_TYPE", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR="127.0.0.1",
            GIT_PROTOCOL=environ.get("HTTP_GIT_PROTOCOL", ""),
        )
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = "200 OK"
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        start_response(status, headers)
        return [payload]


def _token(authorization: str) -> str | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return password if user == "x-access-token" and password else None


def _processes(token: str | None, url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    with_token: list[str] = []
    fetching: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone already
        if token and token in argv:
            with_token.append(argv)
        if url in argv:
            fetching.append(argv)
    return tuple(with_token), tuple(fetching)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The test reads ``seen``."""


def serve(root: Path, may_read: Callable[[str, str], bool]) -> Iterator[PrivateGitServer]:
    """A running server on 127.0.0.1 (a generator for a fixture: stopped after the test)."""
    git_server = PrivateGitServer(root, may_read)
    httpd: WSGIServer = make_server("127.0.0.1", 0, git_server.app, handler_class=_Quiet)
    git_server.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield git_server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
