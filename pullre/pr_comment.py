"""The Markdown of pullre's one status comment on a pull request.

The comment is rendered only from values pullre controls (a fixed status wording, a validated
sha, URLs from the admin's configuration, a number): the PR's title, branch and author come from
whoever opened the PR and are never echoed, so they cannot inject Markdown, HTML or mentions.
The one piece of foreign text, the last error (an agent's log tail, i.e. output of the PR's own
code), is fenced with every backtick replaced, so it cannot close its code block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

#: Hidden first line by which the comment is found again when its id is unknown or gone.
MARKER = "<!-- pullre:status -->"
ERROR_MAX_LINES = 20
ERROR_MAX_CHARS = 1500
#: Looks like a backtick, is not one: a fence can only be closed by real backticks.
BACKTICK_STANDIN = "\u02cb"
_SHA = re.compile(r"[0-9a-f]{7,40}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: What may stay unescaped in a URL inside ``<...>``: no spaces, angle brackets, backticks or
#: parentheses, which is every character that could end the autolink or start new Markdown.
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


@dataclass(frozen=True)
class CommentView:
    """Everything the comment shows; ``status`` is one of pullre's own fixed phrases."""

    status: str
    staging_url: str | None = None
    queue_position: int | None = None
    deployed_sha: str | None = None
    smoke: str | None = None
    #: Names of failing smoke checks: written in the PR's own ``.pullre.toml``, so foreign text.
    smoke_failed: tuple[str, ...] = ()
    last_error: str | None = None
    page_url: str | None = None
    #: (title, result) of the PR's acceptance scenarios; titles are people's text.
    scenarios: tuple[tuple[str, str], ...] = ()


def link(url: str) -> str | None:
    """An autolink for an http(s) URL, or None: a configured URL is trusted, yet quoted."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"<{quote(url.strip(), safe=_URL_SAFE)}>"


def code_block(text: str) -> str:
    """The tail of ``text`` in a fence it cannot break out of; the end of a log is the news."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    truncated = len(lines) > ERROR_MAX_LINES
    body = "\n".join(lines[-ERROR_MAX_LINES:])
    if len(body) > ERROR_MAX_CHARS:
        body, truncated = body[-ERROR_MAX_CHARS:], True
    body = _CONTROL.sub("", body.replace("`", BACKTICK_STANDIN).replace("\t", "    "))
    head = "… (truncated; the full log is in pullre)\n" if truncated else ""
    return f"```text\n{head}{body}\n```"


#: Exact places are shown near the head of the queue only. Past it, every queue move would
#: rewrite hundreds of comments (one paced GitHub write each) to say "#412" instead of "#411";
#: the live place is one click away on pullre's page.
EXACT_QUEUE_PLACES = 10


def queue_text(position: int) -> str:
    if position <= EXACT_QUEUE_PLACES:
        return f"#{position} in queue"
    return f"waiting behind more than {EXACT_QUEUE_PLACES} other PRs (live place on pullre)"


_RESULT = {"stale": "stale (a newer commit needs a re-run)"}
#: Everything that could start Markdown, HTML, a table cell or a link inside a table cell.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:&])")


def table_cell(text: str, limit: int = 80) -> str:
    """A scenario title (written by a person, or in a PR's branch) as inert table-cell text:
    one line, bounded, every Markdown character escaped and ``@`` kept from mentioning."""
    text = _CONTROL.sub("", " ".join(text.split()))
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "@\u200b")


SMOKE_NAMES_SHOWN = 5
SMOKE_NAME_CHARS = 60


def failed_names(names: tuple[str, ...]) -> str:
    """``— not passing: `a`, `b` and 3 more``: each name in a code span it cannot leave (no
    backticks, no line breaks), so a name written as Markdown, HTML or an @mention stays inert."""
    if not names:
        return ""
    shown = [
        "`"
        + _CONTROL.sub("", name.replace("`", BACKTICK_STANDIN).replace("\n", " "))[
            :SMOKE_NAME_CHARS
        ].strip()
        + "`"
        for name in names[:SMOKE_NAMES_SHOWN]
    ]
    more = len(names) - SMOKE_NAMES_SHOWN
    return " — not passing: " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def render(view: CommentView) -> str:
    lines = [MARKER, f"**Staging environment:** {view.status}", ""]
    url = link(view.staging_url) if view.staging_url else None
    if url:
        lines.append(f"- **URL:** {url}")
    if view.queue_position is not None:
        lines.append(f"- **Queue:** {queue_text(view.queue_position)}")
    if view.deployed_sha and _SHA.fullmatch(view.deployed_sha):
        lines.append(f"- **Deployed:** {view.deployed_sha}")  # GitHub links a bare sha itself
    if view.smoke is not None:
        lines.append(f"- **Smoke checks:** {view.smoke}{failed_names(view.smoke_failed)}")
    page = link(view.page_url) if view.page_url else None
    if page:
        lines.append(f"- **Details:** {page}")
    if view.scenarios:
        lines += ["", "**Acceptance scenarios**", "", "| Scenario | Result |", "|---|---|"]
        lines += [f"| {table_cell(title)} | {_RESULT.get(r, r)} |" for title, r in view.scenarios]
    if view.last_error:
        lines += ["", "**Last error**", "", code_block(view.last_error)]
    return "\n".join(lines).rstrip() + "\n"
