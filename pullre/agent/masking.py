"""Replacing repository secrets' values with ``***`` in what the agent reports or logs.

PR code sees its secrets (they are its environment), so a build that prints them, or a
traceback that quotes them, would carry them into the controller's database and pages. Every
report goes through ``Controller.report_step``, which masks here before anything leaves the box.

Values shorter than ``MIN_MASKED`` characters are not masked: masking ``1`` or ``on`` would turn
every log into asterisks and say which short value the secret has; such a value is no secret.
Longer values go first, so a value containing another is masked whole. A log tail that begins
inside a value (the tail was cut there) has that piece masked too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_MASKED = 4


def masked_values(values: Iterable[str]) -> tuple[str, ...]:
    """The values worth masking, longest first."""
    return tuple(sorted({v for v in values if len(v) >= MIN_MASKED}, key=len, reverse=True))


def mask(text: str, values: tuple[str, ...]) -> str:
    """``text`` with every occurrence of each of ``values`` (from ``masked_values``) as ``***``."""
    for value in values:
        text = text.replace(value, MASK)
        # Multi-line values also show line by line (a printed PEM key, a YAML dump).
        for line in value.splitlines():
            if len(line.strip()) >= MIN_MASKED and line != value:
                text = text.replace(line, MASK)
    return _mask_cut_start(text, values)


def _mask_cut_start(text: str, values: tuple[str, ...]) -> str:
    """A tail cut inside a value starts with that value's end: mask the longest such piece."""
    head = text[:MIN_MASKED]
    if len(head) < MIN_MASKED:
        return text
    for value in values:
        start = value.find(head, 1)  # only where the text's first characters occur in it
        while start != -1:
            if text.startswith(value[start:]):
                return MASK + text[len(value) - start :]
            start = value.find(head, start + 1)
    return text


def mask_json(data: Any, values: tuple[str, ...]) -> Any:
    """``data`` (JSON-shaped: smoke results) with every string masked."""
    if not values:
        return data
    if isinstance(data, str):
        return mask(data, values)
    if isinstance(data, list):
        return [mask_json(item, values) for item in data]
    if isinstance(data, dict):
        return {key: mask_json(item, values) for key, item in data.items()}
    return data
