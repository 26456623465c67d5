"""Repository secrets end to end: set with the CLI (real stdin), carried by the real controller's
assignment, in the app's environment on the box, and ``***`` in every log the controller keeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, text

from pullre.agent import masking
from pullre.models import DeployStep, Environment, Event
from tests.agent_fixtures import (
    Agent,
    AssignPr,
    FakeController,
    MakeAgent,
    OriginRepo,
    assign_on_controller,
    pullre_toml,
    same_user_settings,
)
from tests.web_fixtures import LiveServer

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Quotes, a dollar and a semicolon: it must arrive as typed, never be evaluated.
VALUE = 'sk_live "quoted" $HOME; it-is-secret'
SMOKE = """
[[smoke]]
name = "prints the secret"
type = "command"
command = 'printf "seen: %s\\n" "$SAMPLE_SECRET"; exit 3'
"""


def cli(live_server: LiveServer, tmp_path: Path, *args: str, stdin: str = "") -> str:
    """``python -m pullre`` on the live server's database and secret key, as an admin runs it."""
    ini = tmp_path / "app.ini"
    controller = live_server.settings.controller
    ini.write_text(
        f"[controller]\ndatabase_url = {controller.database_url}\n"
        f"secret_key = {controller.secret_key}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pullre", "--config", str(ini), *args],
        input=stdin,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_secret_set_with_the_cli_reaches_the_app_and_never_a_stored_log(
    live_server: LiveServer, git_origin: OriginRepo, tmp_path: Path, make_agent: MakeAgent
) -> None:
    build = ["sh", "-c", 'printf "building with %s\\n" "$SAMPLE_SECRET"']
    sha = git_origin.commit({".pullre.toml": pullre_toml(git_origin.port, build=build) + SMOKE})
    git_origin.open_pr(21, sha)
    assigned = assign_on_controller(
        live_server.session_factory, git_origin, 21, sha, instance_id="i-0000021a"
    )

    said = cli(
        live_server, tmp_path, "secret", "set", "acme/shop", "SAMPLE_SECRET", stdin=VALUE + "\n"
    )
    assert said == "set SAMPLE_SECRET for acme/shop\n"
    listed = cli(live_server, tmp_path, "secret", "list", "acme/shop")
    assert listed.startswith("SAMPLE_SECRET\tset ")
    assert VALUE not in listed

    agent = make_agent(same_user_settings(live_server.url, assigned.token, tmp_path / "agent"), {})
    agent.run()

    env = json.loads(agent.get(git_origin.port, "/env"))
    assert env["SAMPLE_SECRET"] == VALUE  # exactly as typed, the newline of stdin dropped
    with live_server.session_factory() as session:
        steps = session.scalars(
            select(DeployStep).where(DeployStep.environment_id == assigned.environment_id)
        ).all()
        logs = {(s.step, s.status.value): s.log_tail for s in steps}
        assert "building with ***" in logs[("build", "ok")]
        # The smoke check printed it too: masked in its log and its structured results.
        smoke = [s for s in steps if s.step == "smoke" and s.status.value == "failed"]
        assert "seen: ***" in json.dumps(smoke[0].details)
        environment = session.get_one(Environment, assigned.environment_id)
        stored = [s.log_tail for s in steps] + [json.dumps(s.details) for s in steps]
        stored += [environment.last_error or ""]
        stored += [f"{e.message} {e.details}" for e in session.scalars(select(Event))]
        assert all(VALUE not in piece for piece in stored)
        # At rest, the row holds no trace of the value either.
        raw = session.execute(text("SELECT ciphertext FROM repository_secrets")).scalar_one()
        assert VALUE.encode() not in raw
        assert b"it-is-secret" not in raw


def test_secrets_the_controller_cannot_decrypt_fail_checkout_naming_them(
    agent: Agent, fake_controller: FakeController, git_origin: OriginRepo, assign_pr: AssignPr
) -> None:
    sha = git_origin.commit({"README": "x\n"})
    git_origin.open_pr(8, sha)
    fake_controller.assignment = git_origin.assignment(
        8, sha, secrets={"FINE": "a-fine-value"}, unreadable_secrets=["STRIPE_KEY", "S3_KEY"]
    )

    agent.run()

    assert ("checkout", "failed") in fake_controller.steps()
    assert "secret(s) STRIPE_KEY, S3_KEY" in fake_controller.step_log("checkout", "failed")
    assert "secret_key changed" in fake_controller.step_log("checkout", "failed")
    assert ("start", "running") not in fake_controller.steps()


def test_masking_covers_whole_values_their_lines_and_a_tail_cut_inside_one() -> None:
    values = masking.masked_values(["abc", "token-1234", "token-1234-longer", "line-one\nline-two"])
    assert masking.mask("a token-1234-longer b token-1234 c abc", values) == "a *** b *** c abc"
    assert masking.mask("-1234-longer\nnext", values) == "***\nnext"  # the tail began inside it
    assert masking.mask("x line-two y", values) == "x *** y"
    assert masking.mask_json({"m": ["token-1234"], "n": 3}, values) == {"m": ["***"], "n": 3}
