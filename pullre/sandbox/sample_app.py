"""The app the sandbox's sample repository deploys: one page showing a row of its own schema.

It is copied into the sample repository as ``app.py`` and started by the agent with ``$PORT``
and ``DATABASE_URL``. Showing the row read through the PR's own credentials is what lets a
newcomer (and the end-to-end test) see that each PR runs on its own migrated schema.
"""

from __future__ import annotations

import html
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pymysql

VERSION = "base"


def greeting() -> str:
    """The first greeting row, or why there is none (a sandbox without a database)."""
    raw = os.environ.get("DATABASE_URL")
    if not raw:
        return "(no database: the sandbox runs without MySQL)"
    url = urlsplit(raw)
    try:
        connection = pymysql.connect(
            host=url.hostname or "127.0.0.1",
            port=url.port or 3306,
            user=unquote(url.username or ""),
            password=unquote(url.password or ""),
            database=unquote(url.path.lstrip("/")),
            connect_timeout=5,
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT message FROM greeting ORDER BY id LIMIT 1")
            row = cursor.fetchone()
    except pymysql.MySQLError as exc:  # shown on the page: the app stays up to be looked at
        return f"(database error: {exc})"
    return str(row[0]) if row else "(no greeting row)"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/row":
            body, kind = greeting(), "text/plain"
        elif self.path == "/":
            sha = os.environ.get("PULLRE_SHA", "")[:7]
            number = os.environ.get("PULLRE_PR_NUMBER", "?")
            body = (
                f"<!doctype html><title>sample app</title><h1>sample app, PR #{number}</h1>"
                f"<p>commit {html.escape(sha)}, version {html.escape(VERSION)}</p>"
                f"<p>greeting from this PR's schema: <b>{html.escape(greeting())}</b></p>"
            )
            kind = "text/html"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
