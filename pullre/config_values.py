"""What one setting's text may be: each parser turns it into a typed value or says what it expects.

``config`` names one of these per key in its sections; a parser raises ``ValueError`` with the
words that finish "expected ...", and ``config`` adds the key, the value (unless secret) and the
file it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pullre.identifiers import SCHEMA_PREFIX

Parser = Callable[[str], Any]


def text(value: str) -> str:
    return value


def integer(minimum: int, maximum: int | None = None) -> Parser:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("a whole number") from None
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"a whole number of at least {minimum}{upper}")
        return number

    return parse


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("true or false")


def url(*schemes: str, optional: bool = False) -> Parser:
    def parse(value: str) -> str:
        if not value:
            if optional:
                return ""
            raise ValueError(f"a URL ({'/'.join(schemes)})")
        parts = urlsplit(value)
        scheme = parts.scheme.split("+")[0]
        if scheme not in schemes:
            raise ValueError(f"a URL starting with one of {', '.join(schemes)}")
        if scheme in {"http", "https", "mysql"} and not parts.hostname:
            raise ValueError("a URL with a host name")
        return value.rstrip("/") if scheme in {"http", "https"} else value

    return parse


def database_url(value: str) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in {"sqlite", "mysql+pymysql"}:
        raise ValueError(
            f"sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST/DB, not a {scheme!r} URL"
        )
    return value


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("a number of seconds") from None
    if not 0 <= number <= 60:
        raise ValueError("a number of seconds between 0 and 60")
    return number


def choice(*choices: str) -> Parser:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(" or ".join(choices))
        return value

    return parse


def optional_int(value: str) -> int | None:
    return None if value == "" else integer(1)(value)


def prices(value: str) -> dict[str, Decimal]:
    """``t3.medium=0.0416, t3.large=0.0832``: hourly prices by EC2 instance type."""
    prices: dict[str, Decimal] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        kind, _, price = item.partition("=")
        try:
            amount = Decimal(price.strip())
        except InvalidOperation:
            amount = Decimal(-1)
        if not kind.strip() or not amount.is_finite() or amount < 0:
            raise ValueError("INSTANCE_TYPE=PRICE pairs separated by commas, e.g. t3.small=0.0208")
        prices[kind.strip()] = amount
    return prices


def existing_file_or_blank(value: str) -> str:
    if value and not Path(value).is_file():
        raise ValueError("a readable file (it does not exist)")
    return value


def schema_prefix(value: str) -> str:
    if not SCHEMA_PREFIX.fullmatch(value):
        raise ValueError(
            "a schema name prefix: a letter, then letters, digits or _, at most 16 characters"
        )
    return value
