"""How the agent hands git a fetch token: one header, scoped to the clone URL, after any config
the box's environment already passes, only over HTTP(S), and masked in what git prints."""

from __future__ import annotations

import base64

from pullre.agent import fetch_auth

TOKEN = "ghs_" + "t0k3n" * 7
URL = "https://github.com/acme/shop.git"


def test_the_header_follows_config_the_environment_already_holds() -> None:
    base = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.proxy", "GIT_CONFIG_VALUE_0": "p"}
    env = fetch_auth.environ(base, URL, TOKEN)
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert env["GIT_CONFIG_KEY_0"] == "http.proxy"
    assert env["GIT_CONFIG_KEY_1"] == f"http.{URL}.extraHeader"
    scheme, _, encoded = env["GIT_CONFIG_VALUE_1"].removeprefix("Authorization: ").partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", f"x-access-token:{TOKEN}")
    assert "GIT_CONFIG_KEY_1" not in base, "the caller's mapping is left alone"


def test_no_header_without_a_token_or_over_ssh_or_a_path() -> None:
    for url, token in ((URL, None), ("git@github.com:acme/shop.git", TOKEN), ("/srv/a.git", TOKEN)):
        assert fetch_auth.environ({"PATH": "/bin"}, url, token) == {"PATH": "/bin"}


def test_the_token_and_its_header_are_masked() -> None:
    said = f"fatal: {TOKEN} / Basic {fetch_auth.basic_credentials(TOKEN)}"
    masked = fetch_auth.mask(said, TOKEN)
    assert TOKEN not in masked
    assert fetch_auth.basic_credentials(TOKEN) not in masked
    assert masked == "fatal: *** / Basic ***"
