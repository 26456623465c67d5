"""The Markdown of pullre's one status comment on a pull request.

The comment is rendered only from values pullre controls (a fixed status wording, a validated
sha, URLs from the admin's configuration, a number): the PR's title, branch and author come from
whoever opened the PR and are never echoed, so they cannot inject Markdown, HTML or mentions.
Foreign text that must be shown is neutralised: the last error (an agent's log tail, i.e. output
of the PR's own code) is fenced with every backtick replaced, so it cannot close its code block;
people's words (scenario titles, who pinned or put to sleep and why) are escaped character by
character and kept from mentioning anyone.

Everything here changes only with a state, never with the clock alone: each rewrite of the
comment is a paced GitHub write, so times shown are moments (slept at, running since, expires
at), never durations that would grow every pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from pullre.cost.pricing import Cost, hours, money

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
    #: Asleep since then (instance stopped, data kept); ``sleep_why`` is pullre's own wording
    #: of the reason, ``slept_by`` the person who put it to sleep (a name: foreign text).
    sleeping_since: datetime | None = None
    sleep_why: str = ""
    slept_by: str | None = None
    #: The page that wakes a sleeping environment and leads on to its staging URL.
    visit_url: str | None = None
    #: pullre warned that this stay expires; at ``expires_at`` when the TTL is known.
    expiry_warned: bool = False
    expires_at: datetime | None = None
    #: Why pullre itself ended this stay (expired, reclaimed); ``parked``: the PR then waits for
    #: a push or a person rather than for the queue.
    released_because: str | None = None
    parked: bool = False
    #: Why pullre ended the PR's previous stay, shown while the new one is getting going.
    earlier_release: str | None = None
    pinned_by: str | None = None
    pinned_reason: str | None = None
    #: Finished running time and its price, and the start of a run still going on.
    cost: Cost | None = None
    currency: str = ""
    #: The PR waits for a maintainer to approve ``head_sha``; pullre's words for who may.
    approval_by: str | None = None
    head_sha: str = ""


def link(url: str) -> str | None:
    """An autolink for an http(s) URL, or None: a configured URL is trusted, yet quoted."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"<{quote(url.strip(), safe=_URL_SAFE)}>"


def named_link(text: str, url: str) -> str | None:
    """``[text](url)`` for an http(s) URL, or None; ``text`` is pullre's own wording."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"[{text}]({quote(url.strip(), safe=_URL_SAFE)})"


def moment(when: datetime) -> str:
    """To the minute, in UTC and saying so: readers of a PR are in every time zone."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


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


PIN_REASON_CHARS = 300


def cost_text(cost: Cost, currency: str) -> str | None:
    """``1.23 USD (4.0 h) + 2.0 h at no known price, and running since …``; None before any run.

    Only finished runs are added up: a run going on is given by its start, so the text (and the
    comment's digest) changes when a run starts or ends, not on every pass.
    """
    if cost.hours <= 0 and cost.running_since is None:
        return None
    parts: list[str] = []
    priced = cost.hours - cost.unpriced_hours
    if priced > 0:
        amount = f"{money(cost.amount)} {table_cell(currency, 12)}".strip()
        parts.append(f"{amount} ({hours(priced)})")
    if cost.unpriced_hours > 0:
        parts.append(f"{hours(cost.unpriced_hours)} at no known price")
    text = " + ".join(parts)
    if cost.running_since is not None:
        running = f"running since {moment(cost.running_since)}"
        text = f"{text}, and {running}" if text else running
    return text


def _approval(view: CommentView) -> list[str]:
    """Why nothing runs, who may change that and where: every word is pullre's own."""
    sha = view.head_sha if _SHA.fullmatch(view.head_sha) else "its head commit"
    page = link(view.page_url) if view.page_url else None
    return [
        "- **Approval:** this PR comes from a fork or from someone without write access to the "
        "repository, so none of its code runs and it gets no server or database until "
        f"{view.approval_by} approves commit {sha}{f' on {page}' if page else ' in pullre'}. "
        "A push needs a new approval.",
    ]


def _status(view: CommentView) -> str:
    if view.approval_by is not None:
        return "waiting for a maintainer's approval"
    if view.sleeping_since is not None:
        why = view.sleep_why
        if view.slept_by:
            why = f"{why} by {table_cell(view.slept_by, 60)}"
        wake = named_link("wake it", view.visit_url) if view.visit_url else None
        return f"sleeping since {moment(view.sleeping_since)} ({why}) — data kept" + (
            f"; {wake}" if wake else "; wake it from pullre"
        )
    if view.released_because is not None:
        next_step = (
            "push or queue it again from pullre to get a new one"
            if view.parked
            else "the PR is queued again for a new one"
        )
        return f"released by pullre: {table_cell(view.released_because, 200)} — {next_step}"
    return view.status


def _expiry(view: CommentView) -> str | None:
    if not view.expiry_warned:
        return None
    when = f"at {moment(view.expires_at)}" if view.expires_at is not None else "soon"
    visit = named_link("open it", view.visit_url) if view.visit_url else None
    return (
        f"- **Expiry:** this environment expires {when} unless someone opens it, pushes or "
        f"pins it{f' — {visit}' if visit else ''}"
    )


def _staging_line(view: CommentView) -> str | None:
    """The visit link, which works whatever the environment is doing (it opens the app when it
    is up, else says what is happening and waits), with the raw address beside it as text."""
    url = link(view.staging_url) if view.staging_url else None
    if url is None:
        return None
    visit = named_link("open staging", view.visit_url) if view.visit_url else None
    if visit is None:
        return url
    return f"{visit} · `{url[1:-1]}`"  # quoted by link(): no backtick can end the code span


def render(view: CommentView) -> str:
    lines = [MARKER, f"**Staging environment:** {_status(view)}", ""]
    if view.approval_by is not None:
        lines += _approval(view)
    expiry = _expiry(view)
    if expiry:
        lines.append(expiry)
    url = _staging_line(view)
    if url:
        lines.append(f"- **Staging:** {url}")
    if view.queue_position is not None:
        lines.append(f"- **Queue:** {queue_text(view.queue_position)}")
    if view.earlier_release is not None:
        lines.append(
            f"- **Earlier environment:** released by pullre: "
            f"{table_cell(view.earlier_release, 200)} (its data was dropped)"
        )
    if view.deployed_sha and _SHA.fullmatch(view.deployed_sha):
        lines.append(f"- **Deployed:** {view.deployed_sha}")  # GitHub links a bare sha itself
    if view.smoke is not None:
        lines.append(f"- **Smoke checks:** {view.smoke}{failed_names(view.smoke_failed)}")
    if view.pinned_by is not None:
        lines.append(
            f"- **Pinned:** pinned by {table_cell(view.pinned_by, 60)}: "
            f"{table_cell(view.pinned_reason or '', PIN_REASON_CHARS)} "
            "(it neither sleeps nor expires)"
        )
    cost = cost_text(view.cost, view.currency) if view.cost is not None else None
    if cost:
        lines.append(f"- **Cost so far:** {cost}")
    page = link(view.page_url) if view.page_url else None
    if page:
        lines.append(f"- **Details:** {page}")
    if view.scenarios:
        lines += ["", "**Acceptance scenarios**", "", "| Scenario | Result |", "|---|---|"]
        lines += [f"| {table_cell(title)} | {_RESULT.get(r, r)} |" for title, r in view.scenarios]
    if view.last_error:
        lines += ["", "**Last error**", "", code_block(view.last_error)]
    return "\n".join(lines).rstrip() + "\n"
