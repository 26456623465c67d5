"""The ``.pullre/scenarios/*.md`` format: a scenario kept in the repository beside the code.

The format is deliberately small so a business owner can write it in GitHub's editor and a
mistake is reported with its line instead of silently dropping a step::

    # Pay by invoice
    Labels: checkout, invoices

    1. Put a book in the cart and choose "Invoice" at checkout
       Expected: The order page says "We will send the invoice by mail"
    2. Open the admin's order list
       Expected: The order is listed as "awaiting payment"

One ``#`` heading (the title) comes first; an optional ``Labels:`` line lists the PR labels
that attach the scenario (informational for repository files, which are attached to their own
PR anyway); then steps numbered from 1, each followed by its ``Expected:`` line. Other text
before the first step is a description and ignored; anything else is an error. The file comes
from a PR's branch, i.e. from anyone who can open a PR, so sizes are bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BYTES = 64 * 1024
MAX_STEPS = 100
MAX_TITLE = 200
MAX_TEXT = 1000

_HEADING = re.compile(r"#\s+(?P<title>\S.*)")
_STEP = re.compile(r"(?P<number>\d+)[.)]\s+(?P<action>\S.*)")
_EXPECTED = re.compile(r"expected:\s*(?P<expected>.*)", re.IGNORECASE)
_LABELS = re.compile(r"labels:\s*(?P<labels>.*)", re.IGNORECASE)


class ScenarioFormatError(ValueError):
    """What is wrong with a scenario file, naming the file and line so its author can fix it."""


@dataclass(frozen=True)
class Step:
    action: str
    expected: str

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "expected": self.expected}


@dataclass(frozen=True)
class ParsedScenario:
    title: str
    steps: tuple[Step, ...]
    labels: tuple[str, ...] = ()


def parse_labels(text: str) -> tuple[str, ...]:
    """Comma-separated label names, trimmed, without blanks or repeats, order kept."""
    seen: dict[str, None] = {}
    for label in text.split(","):
        if label.strip():
            seen.setdefault(label.strip()[:100], None)
    return tuple(seen)


def parse(text: str, name: str = "scenario") -> ParsedScenario:
    """The scenario in ``text``; raises ScenarioFormatError with ``name:line: problem``."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ScenarioFormatError(f"{name}: larger than {MAX_BYTES // 1024} KiB")
    parser = _Parser(name)
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            parser.line(number, raw.strip())
    return parser.result()


class _Parser:
    """One pass over the lines; ``action`` is a step still waiting for its Expected line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.title: str | None = None
        self.labels: tuple[str, ...] = ()
        self.steps: list[Step] = []
        self.action: str | None = None

    def fail(self, line: int, problem: str) -> ScenarioFormatError:
        return ScenarioFormatError(f"{self.name}:{line}: {problem}")

    def line(self, number: int, line: str) -> None:
        if self.title is None:
            heading = _HEADING.fullmatch(line)
            if heading is None:
                raise self.fail(number, "the file must start with a '# Title' heading")
            self.title = heading["title"].strip().rstrip("#").strip()
            if len(self.title) > MAX_TITLE:
                raise self.fail(number, f"the title is longer than {MAX_TITLE} characters")
            return
        next_step = len(self.steps) + 1
        step, expected = _STEP.fullmatch(line), _EXPECTED.fullmatch(line)
        if self.action is not None:
            if expected is None or not expected["expected"].strip():
                raise self.fail(number, f"step {next_step} needs an 'Expected: ...' line here")
            where = f"{self.name}:{number}"
            self.steps.append(Step(self.action, _bounded(expected["expected"], where)))
            self.action = None
        elif step is not None:
            if int(step["number"]) != next_step:
                raise self.fail(
                    number, f"step {step['number']} found where step {next_step} was expected"
                )
            if next_step > MAX_STEPS:
                raise self.fail(number, f"more than {MAX_STEPS} steps")
            self.action = _bounded(step["action"], f"{self.name}:{number}")
        elif expected is not None:
            raise self.fail(number, "an 'Expected:' line must follow a numbered step")
        elif line.startswith("#"):
            raise self.fail(number, "only one '#' heading (the title) is allowed")
        elif self.steps:
            raise self.fail(number, f"unexpected text after step {len(self.steps)}")
        elif (found := _LABELS.fullmatch(line)) is not None:
            self.labels = parse_labels(found["labels"])

    def result(self) -> ParsedScenario:
        if self.title is None:
            raise ScenarioFormatError(f"{self.name}: empty; it needs a '# Title' and steps")
        if self.action is not None:
            step = len(self.steps) + 1
            raise ScenarioFormatError(f"{self.name}: step {step} has no 'Expected:' line")
        if not self.steps:
            raise ScenarioFormatError(f"{self.name}: no numbered steps ('1. Do this')")
        return ParsedScenario(self.title, tuple(self.steps), self.labels)


def _bounded(text: str, where: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ScenarioFormatError(f"{where}: longer than {MAX_TEXT} characters")
    return text
