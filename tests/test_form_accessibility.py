"""Form errors and hints are tied to their inputs, so a screen reader reads them together."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.web_fixtures import csrf_token


def input_tag(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found, name
    return found.group(0)


def test_an_error_is_described_by_and_marks_its_input(admin_client: FlaskClient) -> None:
    response = admin_client.post(
        "/users/new",
        data={"username": "newbie", "role": "member", "password": "",
              "csrf_token": csrf_token(admin_client, "/users/new")},
    )  # fmt: skip
    page = response.get_data(as_text=True)
    password = input_tag(page, "password")
    assert 'aria-invalid="true"' in password
    assert re.search(r'aria-describedby="[^"]*password-error', password)
    assert re.search(r'<div id="password-error"><p class="error">A new user needs a password', page)
    # An input without an error is not marked.
    assert "aria-invalid" not in input_tag(page, "username")


def test_a_hint_describes_its_input(admin_client: FlaskClient) -> None:
    page = admin_client.get("/servers/register").get_data(as_text=True)
    url = input_tag(page, "staging_url")
    assert 'aria-describedby="staging_url-hint"' in url
    assert '<small id="staging_url-hint">Where reviewers open' in page


def test_the_page_has_a_skip_link_and_marks_where_you_are(admin_client: FlaskClient) -> None:
    page = admin_client.get("/events/").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">Skip to content</a>' in page
    assert '<main id="main" tabindex="-1">' in page
    assert '<nav id="main-nav" aria-label="Main">' in page
    assert '<a href="/events/" aria-current="page">Events</a>' in page
    assert '<a href="/" aria-current' not in page


def test_errors_are_summed_up_first_each_linked_to_its_input(admin_client: FlaskClient) -> None:
    def summary(username: str) -> str:
        page = admin_client.post(
            "/users/new",
            data={"username": username, "role": "member", "password": "",
                  "csrf_token": csrf_token(admin_client, "/users/new")},
        ).get_data(as_text=True)  # fmt: skip
        assert page.index("error-summary") < page.index('<form method="post" class="card form"')
        return page[page.index('<div class="error-summary"') : page.index("</ul>")]

    empty = summary("")
    assert 'role="alert" tabindex="-1"' in empty  # app.js moves focus here
    assert "This needs fixing" in empty
    assert re.search(r'<a href="#username">Username: [^<]+</a>', empty)
    # An error the view adds after validation is summed up too.
    assert re.search(r'<a href="#password">Password: A new user needs a password', summary("ann"))
    assert "error-summary" not in admin_client.get("/users/new").get_data(as_text=True)
