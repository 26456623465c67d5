"""The ``.pullre/scenarios/*.md`` format: good files parse, and every mistake names its line."""

from __future__ import annotations

import pytest

from pullre.scenarios.markdown import MAX_BYTES, ScenarioFormatError, Step, parse

GOOD = """\
# Pay by invoice
Labels: checkout, invoices , checkout

Someone with an account buys a book and pays later.

1. Put a book in the cart and choose "Invoice" at checkout
   Expected: The order page says "We will send the invoice by mail"
2) Open the admin's order list
   expected:   The order is listed as "awaiting payment"
"""


def test_a_good_file_gives_title_labels_and_steps_in_order() -> None:
    scenario = parse(GOOD, "invoice.md")
    assert scenario.title == "Pay by invoice"
    assert scenario.labels == ("checkout", "invoices")
    assert scenario.steps == (
        Step(
            'Put a book in the cart and choose "Invoice" at checkout',
            'The order page says "We will send the invoice by mail"',
        ),
        Step("Open the admin's order list", 'The order is listed as "awaiting payment"'),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "x.md: empty; it needs a '# Title' and steps"),
        ("1. Do\n   Expected: done\n", "x.md:1: the file must start with a '# Title' heading"),
        ("# T\n\nJust prose.\n", "x.md: no numbered steps ('1. Do this')"),
        ("# T\n1. Do\n2. Again\n", "x.md:3: step 1 needs an 'Expected: ...' line here"),
        ("# T\n1. Do\n", "x.md: step 1 has no 'Expected:' line"),
        ("# T\n1. Do\nExpected:   \n", "x.md:3: step 1 needs an 'Expected: ...' line here"),
        ("# T\n2. Do\nExpected: ok\n", "x.md:2: step 2 found where step 1 was expected"),
        (
            "# T\n1. Do\nExpected: ok\n3. Skip\nExpected: ok\n",
            "x.md:4: step 3 found where step 2 was expected",
        ),
        ("# T\nExpected: ok\n", "x.md:2: an 'Expected:' line must follow a numbered step"),
        ("# T\n1. A\nExpected: ok\n# U\n", "x.md:4: only one '#' heading (the title) is allowed"),
        ("# T\n1. A\nExpected: ok\nstray\n", "x.md:4: unexpected text after step 1"),
        ("# " + "t" * 201 + "\n", "x.md:1: the title is longer than 200 characters"),
        ("# T\n1. " + "a" * 1001 + "\n", "x.md:2: longer than 1000 characters"),
    ],
)
def test_malformed_files_are_refused_with_their_line(text: str, message: str) -> None:
    with pytest.raises(ScenarioFormatError) as raised:
        parse(text, "x.md")
    assert str(raised.value) == message


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(ScenarioFormatError, match="larger than 64 KiB"):
        parse("# T\n" + "x" * MAX_BYTES, "big.md")
