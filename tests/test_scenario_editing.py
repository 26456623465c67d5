"""Editing and deleting scenarios written in the UI: who may, what runs keep, what goes."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.clock import system_clock
from pullre.models import (
    Event,
    PullRequest,
    Role,
    Scenario,
    ScenarioAttachment,
    ScenarioRun,
    User,
)
from pullre.scenarios import acceptance as scenarios
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository
from tests.web_fixtures import CLOCK_START, MakeUser, csrf_token, logged_in_client

STEPS_TEXT = "1. Open the cart\nExpected: It is empty\n2. Pay\nExpected: Paid"
NEW_STEPS_TEXT = "1. Open the <cart>\nExpected: It shows <b>0</b>\n"


def user_id(session: Session, username: str) -> int:
    found = session.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


def written_by(session: Session, username: str, title: str = "Checkout", **kw: object) -> int:
    row = Scenario(
        title=title,
        steps=[{"action": "Open the cart", "expected": "It is empty"}],
        labels=["billing"],
        owner_id=user_id(session, username),
        **kw,
    )
    session.add(row)
    session.commit()
    return row.id


def edit(client: FlaskClient, scenario_id: int, **fields: str) -> tuple[int, str]:
    path = f"/scenarios/{scenario_id}/edit"
    data = {"title": "Checkout v2", "labels": "billing, cart", "steps": NEW_STEPS_TEXT}
    data.update(fields)
    response = client.post(path, data={**data, "csrf_token": csrf_token(client, path)})
    return response.status_code, response.get_data(as_text=True)


def delete(client: FlaskClient, scenario_id: int) -> tuple[int, str]:
    token = csrf_token(client, "/scenarios/new")
    response = client.post(f"/scenarios/{scenario_id}/delete", data={"csrf_token": token})
    return response.status_code, response.location or ""


def flashes(client: FlaskClient, path: str) -> str:
    return client.get(path).get_data(as_text=True)


def kinds(session: Session) -> list[tuple[str, object]]:
    return [
        (event.kind, event.details.get("scenario_id"))
        for event in session.scalars(select(Event).order_by(Event.id))
        if event.kind.startswith("scenario.")
    ]


def test_the_owner_edits_with_the_new_form_filled_in_and_escaped(
    app: Flask, session: Session, make_user: MakeUser, clock: MovingClock
) -> None:
    ann = logged_in_client(app, make_user("ann"))
    token = csrf_token(ann, "/scenarios/new")
    ann.post(
        "/scenarios/new",
        data={"title": "Checkout", "labels": "billing", "steps": STEPS_TEXT, "csrf_token": token},
    )
    scenario = session.scalars(select(Scenario).where(Scenario.title == "Checkout")).one()
    form = ann.get(f"/scenarios/{scenario.id}/edit").get_data(as_text=True)
    assert "1. Open the cart\nExpected: It is empty\n2. Pay\nExpected: Paid" in form
    assert 'value="billing"' in form
    assert "never rewrites what was signed off" in form

    clock.advance(minutes=30)
    status, _ = edit(ann, scenario.id, title="Checkout <script>x</script>")
    assert status == 302
    session.expire_all()
    assert scenario.title == "Checkout <script>x</script>"
    assert scenario.labels == ["billing", "cart"]
    assert scenario.steps == [{"action": "Open the <cart>", "expected": "It shows <b>0</b>"}]
    assert scenario.updated_at.replace(tzinfo=None) == (
        CLOCK_START.replace(tzinfo=None) + (clock() - CLOCK_START)
    )
    assert kinds(session) == [("scenario.edited", scenario.id)]
    page = ann.get(f"/scenarios/{scenario.id}").get_data(as_text=True)
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "&lt;b&gt;0&lt;/b&gt;" in page
    assert "<b>0</b>" not in page
    assert "<script>x" not in ann.get("/scenarios").get_data(as_text=True)


def test_the_same_validation_as_new_and_nothing_saved_on_error(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    ann = logged_in_client(app, make_user("ann"))
    scenario_id = written_by(session, "ann")
    status, body = edit(ann, scenario_id, steps="1. Pay\n")
    assert status == 200
    assert "step 1 has no &#39;Expected:&#39; line" in body
    status, body = edit(ann, scenario_id, title="")
    assert status == 200
    session.expire_all()
    assert session.get(Scenario, scenario_id).title == "Checkout"  # type: ignore[union-attr]
    assert kinds(session) == []


def test_an_admin_edits_and_deletes_anyone_s_but_another_member_gets_403(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    make_user("ann")
    first, second = written_by(session, "ann", "One"), written_by(session, "ann", "Two")
    bob = logged_in_client(app, make_user("bob"))
    assert bob.get(f"/scenarios/{first}/edit").status_code == 403
    assert edit(bob, first)[0] == 403
    assert delete(bob, first)[0] == 403
    page = bob.get(f"/scenarios/{first}").get_data(as_text=True)
    assert "/edit" not in page
    assert "/delete" not in page
    session.expire_all()
    assert session.get(Scenario, first).title == "One"  # type: ignore[union-attr]

    admin = logged_in_client(app, make_user("boss", Role.ADMIN))
    assert edit(admin, first, title="One, by the admin")[0] == 302
    assert delete(admin, second) == (302, "/scenarios")
    session.expire_all()
    assert session.get(Scenario, first).title == "One, by the admin"  # type: ignore[union-attr]
    assert session.get(Scenario, first).owner_id == user_id(session, "ann")  # type: ignore[union-attr]
    assert session.get(Scenario, second) is None
    assert kinds(session) == [("scenario.edited", first), ("scenario.deleted", second)]


def test_a_repository_scenario_is_not_editable_in_the_ui(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    repo = add_repository(session, "acme", "shop")
    pull = add_pull(session, repo, 7)
    scenario_id = written_by(
        session, make_user("ann"), pull_request_id=pull.id, source_path=".pullre/scenarios/a.md"
    )
    for client in (
        logged_in_client(app, "ann"),
        logged_in_client(app, make_user("boss", Role.ADMIN)),
    ):
        assert client.get(f"/scenarios/{scenario_id}/edit").status_code == 403
        assert edit(client, scenario_id)[0] == 403
        assert delete(client, scenario_id)[0] == 403
        page = client.get(f"/scenarios/{scenario_id}").get_data(as_text=True)
        assert "changes in the pull request's branch" in page
        assert ".pullre/scenarios/a.md" in page
        assert "/edit" not in page
    session.expire_all()
    assert session.get(Scenario, scenario_id) is not None


def signed_off(session: Session, pull: PullRequest, scenario_id: int, statuses: list[str]) -> int:
    scenario = session.get(Scenario, scenario_id)
    assert scenario is not None
    runner = session.scalars(select(User).where(User.username == "carol")).one()
    run = scenarios.start_run(
        session, pull, scenario, runner_id=runner.id, runner_name=runner.username,
        allow_self_signoff=False, clock=system_clock,
    )  # fmt: skip
    for index, status in enumerate(statuses):
        scenarios.record_step(
            session, run, pull, index, status=status, note="", runner_id=runner.id,
            clock=system_clock,
        )  # fmt: skip
    session.commit()
    return run.id


def acceptance(session: Session, pull: PullRequest) -> str | None:
    session.expire_all()
    return scenarios.acceptance([s.result for s in scenarios.standings(session, pull)])


def test_an_edit_leaves_the_steps_a_run_copied_and_its_result(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    ann, _ = logged_in_client(app, make_user("ann")), make_user("carol")
    pull = add_pull(session, add_repository(session, "acme", "shop"), 7)
    pull.labels = ["billing"]
    scenario_id = written_by(session, "ann")
    run_id = signed_off(session, pull, scenario_id, ["pass"])
    assert acceptance(session, pull) == "success"
    assert edit(ann, scenario_id)[0] == 302
    session.expire_all()
    run = session.get(ScenarioRun, run_id)
    assert run is not None
    assert run.steps == [{"action": "Open the cart", "expected": "It is empty"}]
    assert run.results == [{"status": "pass", "note": ""}]
    assert acceptance(session, pull) == "success"  # what was signed off stands
    summary = ann.get(f"/scenario-runs/{run_id}").get_data(as_text=True)
    assert "Open the cart" in summary
    assert "&lt;cart&gt;" not in summary


def test_delete_takes_attachments_and_stops_gating_but_is_refused_once_run(
    app: Flask, session: Session, make_user: MakeUser
) -> None:
    ann, _ = logged_in_client(app, make_user("ann")), make_user("carol")
    repo = add_repository(session, "acme", "shop")
    pull, other = add_pull(session, repo, 7), add_pull(session, repo, 8)
    kept, unrun, failed = (written_by(session, "ann", t) for t in ("Kept", "Unrun", "Failed"))
    for scenario_id in (kept, unrun, failed):
        scenarios.attach(session, pull, session.get(Scenario, scenario_id), "ann")  # type: ignore[arg-type]
    scenarios.attach(session, other, session.get(Scenario, unrun), "ann")  # type: ignore[arg-type]
    session.commit()
    signed_off(session, pull, kept, ["pass"])
    failed_run = signed_off(session, pull, failed, ["fail"])
    assert acceptance(session, pull) == "failure"

    # The confirm prompt names the open PRs it stops gating.
    page = ann.get(f"/scenarios/{unrun}").get_data(as_text=True)
    assert "It stops gating acme/shop#7, acme/shop#8" in page
    assert delete(ann, unrun) == (302, "/scenarios")
    session.expire_all()
    assert session.get(Scenario, unrun) is None
    attachments = session.scalars(select(ScenarioAttachment.scenario_id)).all()
    assert unrun not in attachments
    assert sorted(attachments) == sorted([kept, failed])
    deleted = session.scalars(select(Event).where(Event.kind == "scenario.deleted")).one()
    assert deleted.details["pull_request_ids"] == [pull.id, other.id]

    # A run is a sign-off record: deleting it would turn #7's failure into success unseen.
    page = ann.get(f"/scenarios/{failed}").get_data(as_text=True)
    assert "cannot be deleted" in page
    assert "/delete" not in page
    assert delete(ann, failed) == (302, f"/scenarios/{failed}")
    assert "Not deleted: it has 1 run," in flashes(ann, f"/scenarios/{failed}")
    session.expire_all()
    assert session.get(Scenario, failed) is not None
    assert session.get(ScenarioRun, failed_run) is not None
    assert acceptance(session, pull) == "failure"
    # Each PR it stopped gating gets its own trace (pullre/acceptance then stays pending).
    assert [kind for kind, _ in kinds(session)] == ["scenario.detached"] * 2 + ["scenario.deleted"]
