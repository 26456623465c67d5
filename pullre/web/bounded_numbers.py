"""Whole numbers from URLs and query strings, bounded before they reach the database.

An id or page number past what the database can hold (``?page=9223372036854775808``) makes the
driver raise, which would be a 500. Every number a person can type is read here instead: path
segments through the app's ``int`` converter (too big is an unknown page, 404), query strings
through :func:`query_int` (400) or :func:`lenient_query_int` (ignored, for pages whose filters
drop nonsense rather than refuse it), posted fields through :func:`form_int`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, Map

#: The largest id of a MySQL INT column; also keeps ``page * per_page`` well inside 64 bits.
MAX_NUMBER = 2**31 - 1


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` with an upper bound by default, so ``/pulls/1e30`` is a 404, not a 500."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_NUMBER)
        super().__init__(url_map, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntegerConverter


def _parse(raw: str, minimum: int) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_NUMBER)):
        return None
    number = int(raw)
    return number if minimum <= number <= MAX_NUMBER else None


def query_int(name: str, default: int | None = None, *, minimum: int = 1) -> int | None:
    """The query string's ``name`` as a whole number, or a 400 saying what it must be."""
    raw = request.args.get(name, "")
    if not raw:
        return default
    number = _parse(raw, minimum)
    if number is None:
        raise BadRequest(f"{name!r} must be a whole number from {minimum} to {MAX_NUMBER}")
    return number


def lenient_query_int(name: str, default: int | None = None, *, minimum: int = 1) -> int | None:
    """The query string's ``name`` as a whole number; ``default`` when missing or out of range."""
    number = _parse(request.args.get(name, ""), minimum)
    return default if number is None else number


def form_int(name: str, *, minimum: int = 1) -> int | None:
    """A posted field as a whole number; None when missing or out of range."""
    return _parse(request.form.get(name, ""), minimum)
