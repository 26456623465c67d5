"""Scenario pages answer a GET while the PR's environment is up, and count as activity.

A GET reads through a session that refuses writes (see pullre.web.db_session); the pages that
store something on the way (the PR's repository scenarios, an activity touch) must do it in a
write transaction of their own.
"""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullre.models import (
    EnvironmentStatus,
    Scenario,
    ScenarioAttachment,
    ScenarioFetch,
    ScenarioRun,
    User,
)
from tests.clock import MovingClock
from tests.page_seeds import add_pull, add_repository, add_server


def test_the_scenarios_page_and_a_run_step_answer_a_get_on_a_live_environment(
    member_client: FlaskClient, session: Session, clock: MovingClock
) -> None:
    pull = add_pull(
        session, add_repository(session), 12, status=EnvironmentStatus.READY,
        server=add_server(session, 1),
    )  # fmt: skip
    member = session.scalars(select(User).where(User.username == "member")).one()
    scenario = Scenario(title="Pay", steps=[{"action": "Pay", "expected": "Paid"}])
    session.add(scenario)
    session.flush()
    session.add(
        ScenarioAttachment(pull_request_id=pull.id, scenario_id=scenario.id, attached_by="x")
    )
    run = ScenarioRun(
        pull_request_id=pull.id, scenario_id=scenario.id, head_sha=pull.head_sha,
        runner_id=member.id, runner_name="member", steps=scenario.steps, results=[{}],
    )  # fmt: skip
    session.add(run)
    session.commit()

    page = member_client.get(f"/pulls/{pull.id}/scenarios")
    assert page.status_code == 200
    fetched = session.get(ScenarioFetch, pull.id)
    assert fetched is not None  # what was read (here: that GitHub is not configured) is kept
    assert fetched.head_sha == pull.head_sha

    clock.advance(minutes=5)
    step = member_client.get(f"/scenario-runs/{run.id}/steps/1")
    assert step.status_code == 200
    environment = pull.environments[-1]
    session.refresh(environment)
    assert environment.last_activity_at == clock.now
    assert clock.now - timedelta(minutes=5) < environment.last_activity_at


def test_a_step_page_names_the_scenario_and_pr_and_shows_earlier_verdicts(
    member_client: FlaskClient, session: Session
) -> None:
    pull = add_pull(session, add_repository(session), 14, status=EnvironmentStatus.READY)
    pull.title = "Checkout <b>v2</b>"
    member = session.scalars(select(User).where(User.username == "member")).one()
    steps = [{"action": f"Do {n}", "expected": f"Done {n}"} for n in (1, 2, 3)]
    scenario = Scenario(title="Pay by card", steps=steps)
    session.add(scenario)
    session.flush()
    run = ScenarioRun(
        pull_request_id=pull.id, scenario_id=scenario.id, head_sha=pull.head_sha,
        runner_id=member.id, runner_name="member", steps=steps,
        results=[{"status": "pass", "note": ""}, {"status": "fail", "note": "no"}, {}],
    )  # fmt: skip
    session.add(run)
    session.commit()

    page = member_client.get(f"/scenario-runs/{run.id}/steps/3").get_data(as_text=True)

    assert "Pay by card" in page
    assert "Checkout &lt;b&gt;v2&lt;/b&gt;" in page
    assert "<b>v2</b>" not in page
    assert f'href="/pulls/{pull.id}/visit"' in page  # Open staging, through the visit link
    earlier = page[page.index('id="earlier-steps"') :]
    assert earlier.index("Do 1") < earlier.index(">pass<") < earlier.index("Do 2")
    assert ">fail<" in earlier
    assert "Do 3" not in earlier  # the step at hand is not an earlier one
    first = member_client.get(f"/scenario-runs/{run.id}/steps/1").get_data(as_text=True)
    assert 'id="earlier-steps"' not in first


def test_the_scenarios_list_shows_where_each_gates_and_its_latest_run(
    member_client: FlaskClient, session: Session
) -> None:
    pull = add_pull(session, add_repository(session), 15)
    member = session.scalars(select(User).where(User.username == "member")).one()
    steps = [{"action": "Pay", "expected": "Paid"}]
    gating, idle = Scenario(title="Gating", steps=steps), Scenario(title="Idle", steps=steps)
    session.add_all([gating, idle])
    session.flush()
    session.add(ScenarioAttachment(pull_request_id=pull.id, scenario_id=gating.id, attached_by="x"))
    for results in ([{"status": "fail", "note": ""}], [{"status": "pass", "note": ""}]):
        session.add(
            ScenarioRun(
                pull_request_id=pull.id,
                scenario_id=gating.id,
                head_sha=pull.head_sha,
                runner_id=member.id,
                runner_name="member",
                steps=steps,
                results=results,
            )
        )
        session.flush()
    session.commit()

    page = member_client.get("/scenarios").get_data(as_text=True)

    gating_row = page[page.index(">Gating<") :].split("</tr>")[0]
    idle_row = page[page.index(">Idle<") :].split("</tr>")[0]
    assert f"#{pull.number}</a>" in gating_row
    assert ">passed</a>" in gating_row  # the newest run, not the failed one before it
    assert "not run" in idle_row
