"""What a reviewer would see of a PR on GitHub, drawn from the stand-in's memory for the sandbox's
control page: pullre's comment (rendered from its Markdown), the commit statuses on the PR's
head (the newest of each context, as GitHub's checks box shows them) and its deployments with
their newest status. Without it a newcomer trying the sandbox never sees what pullre tells
reviewers. Every string is escaped: titles, comments and descriptions come from the PR side.
"""

from __future__ import annotations

import html
from typing import Any

from pullre.github.standin.state import Pull, Repo
from pullre.sandbox.markdown_view import render

STATE_MARK = {"success": "✓", "failure": "✗", "error": "✗", "pending": "•"}


def _link(url: str, text: str) -> str:
    if not url.startswith(("http://", "https://")):
        return html.escape(text)
    return f'<a href="{html.escape(url)}">{html.escape(text)}</a>'


def statuses(repo: Repo, pull: Pull) -> str:
    """The head's commit statuses, newest of each context (the stand-in keeps newest first)."""
    newest: dict[str, dict[str, Any]] = {}
    for status in repo.commit_statuses:
        if status.get("sha") == pull.head_sha:
            newest.setdefault(str(status.get("context", "")), status)
    if not newest:
        return "<p>No commit status on this head yet.</p>"
    items = "".join(
        f'<li><span class="state state-{html.escape(str(s["state"]))}">'
        f"{STATE_MARK.get(str(s['state']), '')} {html.escape(str(s['state']))}</span> "
        f"<strong>{html.escape(context)}</strong> {html.escape(str(s.get('description') or ''))}"
        f"{' · ' + _link(str(s.get('target_url') or ''), 'details') if s.get('target_url') else ''}"
        "</li>"
        for context, s in sorted(newest.items())
    )
    return f'<ul class="statuses">{items}</ul>'


def deployments(repo: Repo, pull: Pull) -> str:
    """The PR's deployments (pullre names their environment ``pr-N``), newest first."""
    mine = [d for d in repo.deployments if d.get("environment") == f"pr-{pull.number}"]
    if not mine:
        return "<p>No deployment yet.</p>"
    rows = []
    for deployment in sorted(mine, key=lambda d: -int(d["id"])):
        latest = (repo.deployment_statuses.get(deployment["id"]) or [{}])[0]
        state = str(latest.get("state", "created"))
        url = str(latest.get("environment_url") or "")
        rows.append(
            f"<li><code>{html.escape(str(deployment['sha'])[:7])}</code> "
            f'<span class="state state-{html.escape(state)}">{html.escape(state)}</span> '
            f"{html.escape(str(latest.get('description') or deployment.get('description') or ''))}"
            f"{' · ' + _link(url, 'view deployment') if url else ''}</li>"
        )
    return f'<ul class="deployments">{"".join(rows)}</ul>'


def comments(repo: Repo, pull: Pull) -> str:
    found = repo.comments.get(pull.number, [])
    if not found:
        return "<p>No comment yet.</p>"
    return "".join(
        f'<article class="comment"><p class="who">{html.escape(_login(c))} commented</p>'
        f"{render(str(c.get('body') or ''))}</article>"
        for c in found
    )


def _login(comment: dict[str, Any]) -> str:
    user = comment.get("user")
    return str(user.get("login", "")) if isinstance(user, dict) else ""


def pull_section(repo: Repo, pull: Pull) -> str:
    return (
        f'<section class="pull" id="pr-{pull.number}">'
        f"<h2>#{pull.number} {html.escape(pull.title)}</h2>"
        f"<h3>Checks on <code>{html.escape(pull.head_sha[:7])}</code></h3>{statuses(repo, pull)}"
        f"<h3>Deployments</h3>{deployments(repo, pull)}"
        f"<h3>Conversation</h3>{comments(repo, pull)}</section>"
    )


STYLE = (
    "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;"
    "padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;"
    "padding:.25rem .5rem}.comment{border:1px solid #d0d7de;border-radius:6px;padding:0 1rem;"
    "margin:.5rem 0}.who{color:#57606a;border-bottom:1px solid #d0d7de;margin:0 -1rem;"
    "padding:.25rem 1rem;background:#f6f8fa}pre{background:#f6f8fa;padding:.5rem;"
    "overflow:auto}.state-success{color:#116329}.state-failure,.state-error{color:#a40e26}"
    ".state-pending{color:#6a4a00}</style>"
)
