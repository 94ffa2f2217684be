"""Finding people and mail: one "find a person" box on the Constituents page (name, email, phone, street,
ZIP) with pages, and search results that page on past the first 50."""

import re

import pytest
from sqlalchemy import select

from constituents import segments
from correspondence.models import Constituent, ConstituentPhone, Role


def _find(session, text):
    flt = segments.parse_filter({"find": text})
    return {c.id for c in segments.members(session, flt, limit=500)}


@pytest.fixture
def people(session, factory):
    ana = factory.constituent(first_name="Ana", last_name="Lopez", address1="482 Maple Ave", city="Columbus",
                              zip5="43215", zip4="1234", email="ana.lopez@example.org")
    ana.phones.append(ConstituentPhone(number="+16145550100"))
    bea = factory.constituent(first_name="Beatriz", last_name="Lopez-Garcia", address1="17 Oak Street",
                              city="Dayton", zip5="45402", email="bea@example.net")
    cal = factory.constituent(first_name="Cal", last_name="Anderson", address1="90 Maple Ave", city="Columbus",
                              zip5="43201", email="cal@anderson.example")
    cal.phones.append(ConstituentPhone(number="+19375550199"))
    gone = factory.constituent(first_name="Ana", last_name="Lopez", zip5="43215", email="old.ana@example.org")
    gone.merged_into_id = ana.id
    session.flush()
    return {"ana": ana.id, "bea": bea.id, "cal": cal.id, "gone": gone.id}


@pytest.mark.parametrize(("text", "who"), [
    ("lopez", {"ana", "bea"}),  # the start of a last name, any case; the merged-away record never shows
    ("Ana Lopez", {"ana"}),
    ("lopez, ana", {"ana"}),
    ("beatriz", {"bea"}),
    ("ana.lopez@example.org", {"ana"}),
    ("ANA.LOPEZ@", {"ana"}),  # the start of an address
    ("(614) 555-0100", {"ana"}),
    ("614.555.0100", {"ana"}),
    ("+1 614 555 0100", {"ana"}),
    ("555-0199", {"cal"}),  # seven digits: the end of a number
    ("482 Maple", {"ana"}),
    ("maple ave", {"ana", "cal"}),
    ("43215", {"ana"}),
    ("43215-1234", {"ana"}),
    ("43215-9999", set()),
    ("columbus", {"ana", "cal"}),
    ("lopez 45402", {"bea"}),
    ("nobody-like-this", set()),
])
def test_one_box_finds_by_name_email_phone_street_or_zip(session, people, text, who):
    assert _find(session, text) == {people[w] for w in who}


def test_find_combines_with_the_segment_filters_and_counts(session, people):
    flt = segments.parse_filter({"find": "maple", "zips": "43201"})
    assert [c.id for c in segments.members(session, flt)] == [people["cal"]]
    assert segments.count(session, flt) == 1
    assert "matching “maple”" in flt.describe()
    assert segments.SegmentFilter.from_dict(flt.to_dict()) == flt  # a saved segment keeps its search


def test_the_constituents_page_finds_and_pages(client, auth, session, factory):
    for n in range(120):
        factory.constituent(first_name=f"Member{n:03d}", last_name="Okafor", email=f"okafor{n}@example.org")
    factory.constituent(first_name="Other", last_name="Person")
    session.commit()
    auth.login(Role.CORRESPONDENT)
    seen: list[str] = []
    url: str | None = "/constituents/?find=okafor"
    pages = 0
    while url:
        page = client.get(url).get_data(as_text=True)
        pages += 1
        assert ">120</b> people" in page.replace("\n", "")
        seen += re.findall(r">Member(\d{3}) Okafor<", page)
        assert "Other Person" not in page
        nxt = re.search(r'href="([^"]+)" id="people-next"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        if pages > 1:
            assert 'id="people-first"' in page
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120
    # The live count asks with the same field.
    assert client.get("/constituents/count.json?find=okafor").get_json() == {"count": 120}


def test_search_results_page_past_the_first_fifty(client, auth, session, factory):
    person = factory.constituent()
    ids = {factory.message(subject=f"Bridge repair {n}", body_text="Please repair the Elm Street bridge.",
                           constituent_id=person.id).id for n in range(120)}
    factory.message(subject="Potholes", body_text="Fix the potholes.")
    session.commit()
    auth.login(Role.CORRESPONDENT)
    for q in ("bridge", "status:new zip:43215"):  # ranked words, and filters alone
        found: list[int] = []
        url: str | None = f"/search/?q={q}"
        pages = 0
        while url:
            page = client.get(url).get_data(as_text=True)
            pages += 1
            found += [int(i) for i in re.findall(r'<li data-message="(\d+)">', page)]
            assert ('id="search-previous"' in page) is (pages > 1)
            nxt = re.search(r'href="([^"]+)" id="search-next"', page)
            url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert pages == 3, q
        assert len(found) == 120 and set(found) == ids, q  # every match once, none twice, none missing
    third = client.get("/search/?q=bridge&page=3").get_data(as_text=True)
    assert 'id="result-range">101–120' in third and 'start="101"' in third
    # Nonsense page numbers are read as the first page or as past the end, never an error.
    assert 'id="result-range">1–50' in client.get("/search/?q=bridge&page=abc").get_data(as_text=True)
    beyond = client.get("/search/?q=bridge&page=5000")
    assert beyond.status_code == 200 and "No more messages match." in beyond.get_data(as_text=True)
    assert 'id="result-range">1–50' in client.get("/search/?q=bridge&page=99999999999").get_data(as_text=True)


def test_merged_records_are_not_found(session, people):
    assert people["gone"] not in _find(session, "old.ana@example.org")
    assert session.scalar(select(Constituent.merged_into_id).where(Constituent.id == people["gone"])) == people["ana"]
