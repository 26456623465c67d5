"""Just enough Markdown for the sandbox's stand-in page to show pullre's PR comment as GitHub
would: paragraphs, ``- `` lists, pipe tables, fenced code, ``**bold**``, code spans, ``<url>``
and ``[text](url)`` links, and backslash escapes; an HTML comment (the comment's marker) is
dropped. Everything is HTML-escaped before any of it becomes markup, links are http(s) only,
and no raw HTML passes, so a comment quoting a PR's hostile log or title stays text.
"""

from __future__ import annotations

import html
import re

_ESCAPABLE = re.compile(r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
_CODE = re.compile(r"`([^`]+)`")
_AUTOLINK = re.compile(r"&lt;(https?://[^\s]+?)&gt;")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HOLE = re.compile("\x00(\\d+)\x00")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_RULE_ROW = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def inline(text: str) -> str:
    """One line's inline Markdown as HTML; what is not Markdown is escaped."""
    held: list[str] = []

    def hold(markup: str) -> str:
        held.append(markup)
        return f"\x00{len(held) - 1}\x00"

    text = text.replace("\x00", "")
    text = _ESCAPABLE.sub(lambda m: hold(html.escape(m[1])), text)
    text = _CODE.sub(lambda m: hold(f"<code>{html.escape(m[1])}</code>"), text)
    text = html.escape(text)
    text = _AUTOLINK.sub(lambda m: hold(f'<a href="{m[1]}">{m[1]}</a>'), text)
    text = _LINK.sub(lambda m: hold(f'<a href="{m[2]}">{m[1]}</a>'), text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    while _HOLE.search(text):  # a held link may hold a code span or an escape
        text = _HOLE.sub(lambda m: held[int(m[1])], text)
    return text


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip() for cell in _CELL_SPLIT.split(line)]


def _table(header: str, rows: list[str]) -> str:
    head = "".join(f"<th>{inline(cell)}</th>" for cell in _cells(header))
    body = "".join(
        "<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in _cells(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(markdown: str) -> str:
    """The whole comment as HTML blocks."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + " ".join(inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            out.append(
                f"<pre><code>{html.escape(chr(10).join(lines[index + 1 : end]))}</code></pre>"
            )
            index = end + 1
        elif stripped.startswith("<!--") and stripped.endswith("-->"):
            index += 1
        elif (
            stripped.startswith("|")
            and index + 1 < len(lines)
            and _RULE_ROW.match(lines[index + 1])
        ):
            flush()
            end = index + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            out.append(_table(line, lines[index + 2 : end]))
            index = end
        elif stripped.startswith("- "):
            flush()
            items = []
            while index < len(lines) and lines[index].strip().startswith("- "):
                items.append(f"<li>{inline(lines[index].strip()[2:])}</li>")
                index += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif not stripped:
            flush()
            index += 1
        else:
            paragraph.append(stripped)
            index += 1
    flush()
    return "\n".join(out)
