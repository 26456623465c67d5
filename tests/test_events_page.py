"""The audit log page: newest first, filterable by kind, repository, PR and server, paged by id."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from pullre import events
from pullre.models import Server
from pullre.web.events import PAGE_SIZE
from tests.page_seeds import add_pull, add_repository, add_server


def messages(client: FlaskClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200
    return re.findall(r'<td class="message">(.*?)</td>', response.get_data(as_text=True))


def test_events_are_listed_newest_first_escaped_and_filtered(
    member_client: FlaskClient, session: Session
) -> None:
    shop, blog = add_repository(session, "acme", "shop"), add_repository(session, "acme", "blog")
    server = add_server(session, 1)
    gone = add_server(session, 2)
    gone.in_pool = False  # removed servers stay filterable: their events remain
    pull = add_pull(session, shop, 1)
    events.record(session, "queued", "#1 queued", pull_request=pull)
    events.record(session, "assigned", "#1 <b>got</b> stage-1", pull_request=pull, server=server)
    events.record(session, "repository.saved", "acme/blog saved", repository_id=blog.id)
    events.record(session, "server.removed", "i-2 removed", server=gone)
    session.commit()

    assert messages(member_client, "/events/") == [
        "i-2 removed",
        "acme/blog saved",
        "#1 &lt;b&gt;got&lt;/b&gt; stage-1",
        "#1 queued",
    ]
    assert messages(member_client, "/events/?kind=queued") == ["#1 queued"]
    assert messages(member_client, f"/events/?repository={blog.id}") == ["acme/blog saved"]
    assert messages(member_client, f"/events/?pull={pull.id}") == [
        "#1 &lt;b&gt;got&lt;/b&gt; stage-1",
        "#1 queued",
    ]
    assert messages(member_client, f"/events/?server={gone.id}") == ["i-2 removed"]
    assert messages(member_client, f"/events/?server={server.id}&kind=queued") == []

    page = member_client.get(f"/events/?pull={pull.id}").get_data(as_text=True)
    assert "Events of acme/shop#1" in page
    assert f'href="/pulls/{pull.id}"' in page
    by_server = member_client.get(f"/events/?server={gone.id}").get_data(as_text=True)
    assert f'<option value="{gone.id}" selected>stage-2</option>' in by_server
    assert "No event matches these filters." in member_client.get("/events/?kind=nothing").get_data(
        as_text=True
    )


def test_pages_go_back_by_id_and_keep_the_filter(
    member_client: FlaskClient, session: Session
) -> None:
    server = session.merge(Server(instance_id="i-0123456789abcdef0", name="stage-9"))
    session.flush()
    for n in range(PAGE_SIZE + 7):
        events.record(session, "heartbeat", f"beat {n}", server=server)
        events.record(session, "other", f"other {n}")
    session.commit()

    first = member_client.get("/events/?kind=heartbeat").get_data(as_text=True)
    shown = re.findall(r"beat (\d+)<", first)
    assert shown == [str(n) for n in range(PAGE_SIZE + 6, 6, -1)]
    older = re.search(r'<a class="next" href="([^"]+)">Older', first)
    assert older, first
    link = older.group(1).replace("&amp;", "&")
    assert "kind=heartbeat" in link

    second = member_client.get(link).get_data(as_text=True)
    assert re.findall(r"beat (\d+)<", second) == [str(n) for n in range(6, -1, -1)]
    assert 'class="next"' not in second
    assert 'href="/events/?kind=heartbeat">Newest</a>' in second


def test_events_are_filtered_by_repository_and_pr_number(
    member_client: FlaskClient, session: Session
) -> None:
    shop, blog = add_repository(session, "acme", "shop"), add_repository(session, "acme", "blog")
    blog_one = add_pull(session, blog, 1)  # created first, so its id is not shop's #1 id
    shop_two = add_pull(session, shop, 2)
    shop_one = add_pull(session, shop, 1)
    for pull in (blog_one, shop_two, shop_one):
        events.record(
            session, "queued", f"{pull.repository.name} #{pull.number}", pull_request=pull
        )
    session.commit()

    assert messages(member_client, f"/events/?repository={shop.id}&number=1") == ["shop #1"]
    assert messages(member_client, "/events/?number=1") == ["shop #1", "blog #1"]
    page = member_client.get(f"/events/?repository={shop.id}&number=1").get_data(as_text=True)
    assert "Events of acme/shop#1" in page
    assert 'name="number" min="1" max="2147483647" value="1"' in page
    # Coming from a PR page (by id), the form shows that PR's repository and number.
    from_pull = member_client.get(f"/events/?pull={shop_one.id}").get_data(as_text=True)
    assert f'<option value="{shop.id}" selected>acme/shop</option>' in from_pull
    assert 'name="number" min="1" max="2147483647" value="1"' in from_pull
    assert messages(member_client, f"/events/?repository={blog.id}&number=2") == []
