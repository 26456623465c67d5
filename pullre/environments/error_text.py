"""A deploy's error as a person reads it: plain text, said once.

The error comes from a log tail, and a log tail holds whatever the PR's app printed: a whole
404 page of HTML from a health check, the same line repeated by a retry loop. Pages, the PR
comment and the visit page show it through :func:`plain_error`, so markup is collapsed to its
text and repeated lines appear once; :func:`error_summary` gives the one line that says why.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]{0,2000}>", re.I | re.S)
_MARKUP = re.compile(r"<(!doctype|html|head|body|div|p|h\d|title|pre|span|br)\b", re.I)
_SPACES = re.compile(r"[ \t\r\f\v]+")
SUMMARY_LENGTH = 200


def plain_error(text: str | None) -> str:
    """``text`` without HTML markup, blank runs or repeated lines."""
    if not text:
        return ""
    if _MARKUP.search(text):
        text = html.unescape(_TAG.sub(" ", text))
    lines: dict[str, None] = {}  # ordered, and each line once
    for raw in text.splitlines():
        if line := _SPACES.sub(" ", raw).strip():
            lines.setdefault(line)
    return "\n".join(lines)


def error_summary(text: str | None, limit: int = SUMMARY_LENGTH) -> str:
    """The first line of the plain error, cut to ``limit`` characters."""
    first = plain_error(text).split("\n", 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
