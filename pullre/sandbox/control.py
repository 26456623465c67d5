"""The sandbox's control page: the PRs on the GitHub stand-in, with close and push buttons,
and below them what a reviewer sees of each on GitHub (``standin_page``: pullre's comment, the
head's commit statuses, the deployments).

GitHub's own pages are where a real PR is closed or pushed to; this stands in for them. It
binds to 127.0.0.1 only and has no CSRF protection: it is a local toy, and every action it
offers is one a PR author could do on GitHub anyway. ``python -m pullre sandbox close|push N``
posts to the same endpoints (``POST /pulls/N/close``, ``POST /pulls/N/push``, JSON answers).
"""

from __future__ import annotations

import html
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pullre.github.standin.server import GitHubStandIn
from pullre.sandbox.sample_repo import NAME, OWNER, SampleRepo
from pullre.sandbox.standin_page import STYLE, pull_section

ACTION = re.compile(r"^/pulls/(?P<number>\d+)/(?P<action>close|push)$")


class ControlServer:
    def __init__(self, repo: SampleRepo, standin: GitHubStandIn, controller_url: str) -> None:
        self.repo, self.standin, self.controller_url = repo, standin, controller_url
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="sandbox-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def act(self, number: int, action: str) -> str:
        """Close or push to PR ``number``; the sentence the caller shows."""
        pull = self.standin.pull(OWNER, NAME, number)
        if pull.state != "open":
            raise ValueError(f"PR #{number} is already {pull.state}")
        if action == "close":
            self.standin.close(OWNER, NAME, number)
            return f"closed PR #{number}; its server goes to the next PR in the queue"
        sha = self.repo.push(number)
        return f"pushed {sha[:7]} to PR #{number}; it redeploys on the next passes"

    def page(self) -> str:
        rows = []
        for number in sorted(self.standin.repo(OWNER, NAME).pulls):
            pull = self.standin.pull(OWNER, NAME, number)
            buttons = ""
            if pull.state == "open":
                buttons = "".join(
                    f'<form method="post" action="/pulls/{number}/{verb}" style="display:inline">'
                    f"<button>{verb}</button></form> "
                    for verb in ("push", "close")
                )
            fork = f" (fork {html.escape(pull.head_owner)})" if pull.head_owner != OWNER else ""
            rows.append(
                f"<tr><td>#{number}</td><td>{html.escape(pull.title)}</td>"
                f"<td>{html.escape(pull.author)}{fork}</td><td><code>{pull.head_sha[:7]}</code></td>"
                f"<td>{pull.state}</td><td>{buttons}</td></tr>"
            )
        repo = self.standin.repo(OWNER, NAME)
        sections = "".join(
            pull_section(repo, self.standin.pull(OWNER, NAME, number))
            for number in sorted(repo.pulls)
        )
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            "<title>GitHub stand-in: acme/shop</title>"
            f"{STYLE}<h1>GitHub stand-in: {OWNER}/{NAME}</h1>"
            f'<p>pullre: <a href="{html.escape(self.controller_url)}">'
            f"{html.escape(self.controller_url)}</a> (PR statuses refresh every 10 s; reload this"
            " page to see what pullre reported)</p>"
            "<table><tr><th>PR</th><th>title</th><th>author</th>"
            f"<th>head</th><th>state</th><th>actions</th></tr>{''.join(rows)}</table>"
            f"{sections}"
        )


def _handler(control: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self._send(404, "text/plain", "not found")
                return
            self._send(200, "text/html", control.page())

        def do_POST(self) -> None:
            match = ACTION.match(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if match is None:
                self._send(404, "application/json", json.dumps({"error": "no such action"}))
                return
            try:
                message = control.act(int(match["number"]), match["action"])
            except (KeyError, ValueError) as exc:
                self._answer(409, {"error": str(exc).strip("'")})
                return
            self._answer(200, {"ok": True, "message": message})

        def _answer(self, status: int, body: dict[str, object]) -> None:
            if "text/html" in self.headers.get("Accept", ""):  # the page's own buttons
                self.send_response(303)
                self.send_header("Location", "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(status, "application/json", json.dumps(body))

        def _send(self, status: int, kind: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
