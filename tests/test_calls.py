import re

from sqlalchemy import select

from correspondence.models import Channel, ConstituentPhone, Message, Stance, Topic


def test_log_a_call_once_even_if_submitted_twice(client, auth, session, factory):
    staffer = auth.login()
    known = factory.constituent(first_name="Ann", last_name="Berg")
    known.phones.append(ConstituentPhone(number="+16145550111"))
    session.commit()
    page = client.get("/calls/new").get_data(as_text=True)
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', page).group(1)
    topic = session.scalar(select(Topic.id).where(Topic.name == "Health"))
    data = {"csrf_token": auth.csrf("/calls/new"), "nonce": nonce, "phone": "(614) 555-0111",
            "notes": "Worried the clinic will close.", "stance": "oppose", "topic_id": str(topic)}
    first = client.post("/calls/new", data=data)
    assert first.status_code == 303
    again = client.post("/calls/new", data=data, follow_redirects=True)
    assert "already logged" in again.get_data(as_text=True)
    session.rollback()  # end the read snapshot taken before the posts
    m = session.scalars(select(Message)).one()
    assert m.channel == Channel.PHONE and m.stance == Stance.OPPOSE and m.topic_id == topic
    assert m.constituent_id == known.id and m.match_method == "phone"
    assert m.facts["logged_by"] == staffer.id


def test_call_form_errors(client, auth):
    auth.login()
    response = client.post("/calls/new", data={"csrf_token": auth.csrf("/calls/new"), "nonce": "x" * 32,
                                               "zip5": "12", "stance": "maybe"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    for problem in ("caller:", "notes:", "zip5:", "stance:", "form:"):
        assert problem in html
