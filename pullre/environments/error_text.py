"""A deploy's error as a person reads it: plain text, said once.

The error comes from a log tail, and a log tail holds whatever the PR's app printed: a whole
404 page of HTML from a health check, the same line repeated by a retry loop. Pages, the PR
comment and the visit page show it through :func:`plain_error`, so markup is collapsed to its
text and repeated lines appear once; :func:`error_summary` gives the one line that says why.
"""

from __future__ import annotations

import html
import re

_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_BLOCK = re.compile(
    r"</?(title|h\d|p|div|br|li|tr|pre|head|body|html|section|header)\b[^>]{0,2000}>", re.I
)
_TAG = re.compile(r"<[^>]{0,2000}>")
_MARKUP = re.compile(r"<(!doctype|html|head|body|div|p|h\d|title|pre|span|br)\b", re.I)
_SPACES = re.compile(r"[ \t\r\f\v]+")
SUMMARY_LENGTH = 200


def plain_error(text: str | None) -> str:
    """``text`` without HTML markup, blank lines or repeated lines."""
    if not text:
        return ""
    markup = _MARKUP.search(text) is not None
    if markup:
        text = html.unescape(_TAG.sub(" ", _BLOCK.sub("\n", _HIDDEN.sub(" ", text))))
    lines: list[str] = []
    for raw in text.splitlines():
        line = _SPACES.sub(" ", raw).strip()
        # A page's text repeats itself (title, heading): each line once. A log's lines only
        # collapse when repeated in a row (a retry loop); a stack trace keeps its frames.
        if line and (line not in lines if markup else lines[-1:] != [line]):
            lines.append(line)
    return "\n".join(lines)


def error_summary(text: str | None, limit: int = SUMMARY_LENGTH) -> str:
    """The first line of the plain error, cut to ``limit`` characters."""
    first = plain_error(text).split("\n", 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
