"""A tiny app as a PR would deploy it: stdlib HTTP on ``$PORT``, one row from its database.

It reads its database from ``DATABASE_URL`` (decoding the percent-encoded password, as real apps
do) and queries it through the ``mariadb``/``mysql`` client, so the agent's tests see a PR's app
really reach the PR's schema with the credentials the agent handed it.
"""

import json
import os
import shutil
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

SHOWN_ENV = (
    "PORT",
    "PULLRE_PR_NUMBER",
    "PULLRE_SHA",
    "DATABASE_URL",
    "MYSQL_HOST",
    "MYSQL_PORT",
    "MYSQL_USER",
    "MYSQL_DATABASE",
    "SAMPLE_GREETING",
    "SAMPLE_SECRET",
    "PULLRE_AGENT_TOKEN",
)


def query(sql: str) -> str:
    url = urlsplit(os.environ["DATABASE_URL"])
    client = shutil.which("mariadb") or shutil.which("mysql")
    result = subprocess.run(
        [
            client,
            "--no-defaults",
            "--batch",
            "--skip-column-names",
            f"--host={url.hostname}",
            f"--port={url.port}",
            f"--user={unquote(url.username or '')}",
            f"--database={unquote(url.path.lstrip('/'))}",
            "-e",
            sql,
        ],
        env={**os.environ, "MYSQL_PWD": unquote(url.password or "")},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout.strip()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/":
                body = f"ok {os.environ.get('PULLRE_SHA', '')}"
            elif self.path == "/row":
                body = query("SELECT message FROM greeting ORDER BY id LIMIT 1")
            elif self.path == "/env":
                body = json.dumps({name: os.environ.get(name) for name in SHOWN_ENV})
            elif self.path == "/built":
                body = Path("built.txt").read_text()
            else:
                self.send_error(404)
                return
        except Exception as exc:
            self.send_error(500, str(exc)[:200])
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(format % args + "\n")


if __name__ == "__main__":
    print(f"sample app listening on {os.environ['PORT']}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
