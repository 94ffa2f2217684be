"""The triage inbox: filters, counts, keyset pages, bulk actions, and bad input answered with 4xx."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from correspondence.models import Channel, MessageStatus, Role, Topic
from correspondence.services.inbox import Cursor, InboxFilter, list_inbox


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def test_keyset_pages_cover_everything_once(session, factory):
    now = datetime.now(UTC)
    made = [factory.message(received_at=now - timedelta(minutes=i % 3)) for i in range(23)]  # many ties
    seen, after = [], None
    while True:
        page = list_inbox(session, InboxFilter(), after=after, page_size=5, with_counts=False)
        seen += [m.id for m in page.messages]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(m.id for m in made)
    assert len(seen) == len(set(seen))


def test_filters_combine(session, factory):
    topic = session.query(Topic).filter_by(name="Health").one()
    lc = factory.staffer()
    hit = factory.message(channel=Channel.WEBFORM, topic_id=topic.id, assignee_id=lc.id,
                          status=MessageStatus.ASSIGNED, body_text="Medicare drug prices are too high")
    factory.message(channel=Channel.WEBFORM, topic_id=topic.id, body_text="unrelated")
    factory.message(channel=Channel.EMAIL, topic_id=topic.id, assignee_id=lc.id, status=MessageStatus.ASSIGNED,
                    body_text="Medicare drug prices are too high")
    flt = InboxFilter(channel=Channel.WEBFORM, topic_id=topic.id, assignee_id=lc.id, text="drug PRICES")
    page = list_inbox(session, flt)
    assert [m.id for m in page.messages] == [hit.id]
    assert page.counts["assigned"] == 1 and page.counts["open"] == 1


def test_like_wildcards_in_search_are_literal(session, factory):
    factory.message(body_text="100% agree")
    factory.message(body_text="100 agree")
    page = list_inbox(session, InboxFilter(text="100%"))
    assert len(page.messages) == 1


def test_inbox_page_lists_and_counts(client, auth, factory, session):
    auth.login(Role.CORRESPONDENT)
    for _ in range(3):
        factory.message()
    factory.message(status=MessageStatus.CLOSED, subject="Already done")
    session.commit()
    html = client.get("/inbox/").get_data(as_text=True)
    assert len(_ids(html)) == 3
    assert 'data-status="open">3<' in html and 'data-status="closed">1<' in html
    closed = client.get("/inbox/?status=closed").get_data(as_text=True)
    assert "Already done" in closed and len(_ids(closed)) == 1


def test_outside_text_is_escaped(client, auth, factory, session):
    auth.login()
    factory.message(subject="<script>alert(1)</script>", body_text="<img src=x onerror=alert(2)>")
    session.commit()
    html = client.get("/inbox/").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html


def test_pagination_links_follow(client, auth, factory, session, app):
    auth.login()
    size = app.extensions["mailroom.settings"].page_size
    for _ in range(size + 5):
        factory.message()
    session.commit()
    first = client.get("/inbox/").get_data(as_text=True)
    nxt = re.search(r'href="([^"]+)" id="next-page"', first).group(1).replace("&amp;", "&")
    second = client.get(nxt).get_data(as_text=True)
    assert len(_ids(first)) == size and len(_ids(second)) == 5
    assert not set(_ids(first)) & set(_ids(second))


@pytest.mark.parametrize("query", ["status=bogus", "channel=fax", "topic=abc", "assignee=someone",
                                   "from=2024-13-45", "sort=sideways", "after=!!notacursor!!",
                                   "after=" + Cursor(datetime.now(UTC), 1).encode()[:-3] + "zz", "q=" + "x" * 300])
def test_bad_filter_values_are_400(client, auth, query):
    auth.login()
    response = client.get(f"/inbox/?{query}")
    assert response.status_code == 400, query
    assert "could not be used" in response.get_data(as_text=True)


def test_cursor_beyond_the_end_is_an_empty_page(client, auth, factory, session):
    auth.login()
    factory.message()
    session.commit()
    old = Cursor(datetime(2000, 1, 1, tzinfo=UTC), 1).encode()
    response = client.get(f"/inbox/?after={old}")
    assert response.status_code == 200
    assert "No messages match" in response.get_data(as_text=True)


def test_bulk_assign_and_close(client, auth, factory, session):
    me = auth.login()
    other = factory.staffer(name="Other Person")
    a, b, c = factory.message(), factory.message(), factory.message()
    session.commit()
    token = auth.csrf()
    response = client.post("/inbox/bulk", data={"csrf_token": token, "action": "assign", "ids": [a.id, b.id],
                                                "assignee_id": other.id, "next": "/inbox/?status=open"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox/?status=open"
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert a.assignee_id == other.id and a.status == MessageStatus.ASSIGNED and c.assignee_id is None
    client.post("/inbox/bulk", data={"csrf_token": token, "action": "close", "ids": [c.id]})
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert c.status == MessageStatus.CLOSED
    html = client.get("/inbox/?assignee=" + str(other.id)).get_data(as_text=True)
    assert sorted(_ids(html)) == sorted([a.id, b.id])
    assert me.id != other.id


def test_bulk_without_csrf_or_with_junk_is_400(client, auth, factory, session):
    auth.login()
    m = factory.message()
    session.commit()
    assert client.post("/inbox/bulk", data={"action": "close", "ids": [m.id]}).status_code == 400
    token = auth.csrf()
    assert client.post("/inbox/bulk", data={"csrf_token": token, "action": "close",
                                            "ids": ["1; DROP TABLE messages"]}).status_code == 400
    response = client.post("/inbox/bulk", data={"csrf_token": token, "action": "explode", "ids": [m.id]},
                           follow_redirects=True)
    assert "unknown bulk action" in response.get_data(as_text=True)
    session.rollback()  # end the read snapshot, then see what other sessions committed
    session.expire_all()
    assert m.status == MessageStatus.NEW


def test_next_after_bulk_cannot_leave_the_inbox(client, auth, factory, session):
    auth.login()
    m = factory.message()
    session.commit()
    response = client.post("/inbox/bulk", data={"csrf_token": auth.csrf(), "action": "close", "ids": [m.id],
                                                "next": "https://evil.example/"})
    assert response.headers["Location"] == "/inbox/"
