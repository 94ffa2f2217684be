"""CWC 2.0 deliveries: parsed leniently where real senders differ, strictly where it matters."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from correspondence.models import Channel, Message, MessageStatus, Stance, Topic
from intake.cwc import CwcError, normalise_bill_type, parse_cwc
from intake.importer import import_items
from intake.pipeline import Rules
from intake.registry import file_adapter
from tests.conftest import cli_env
from workers.cli import cli

FULL = (Path(__file__).parent / "data" / "cwc" / "full.xml").read_bytes()


def _import(database, blobs, rules=None):
    reader, adapter = file_adapter("cwc")
    return import_items(database, [(f"item{i}", b) for i, b in enumerate(blobs)], adapter, source="test",
                        max_bytes=1_000_000, rules=rules)


def test_parse_full_delivery():
    d = parse_cwc(FULL)
    assert d["delivery_id"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert d["campaign_id"] == "hands-off-ss-2026" and d["organization"] == "Retirees United"
    assert d["recipient_office"] == "HOH03"
    assert d["stance"] == Stance.OPPOSE
    assert d["bills"] == [{"congress": "119", "type": "hr", "number": "1234"}]
    assert d["topics"] == ["Social Welfare"]
    c = d["constituent"]
    assert (c["zip5"], c["zip4"], c["email"], c["address2"]) == ("43215", "1234", "rosa.martinez@example.net", "Apt 4")


def test_sender_variations_are_accepted():
    no_wrapper = FULL.replace(b"<Bills>", b"").replace(b"</Bills>", b"")
    assert parse_cwc(no_wrapper)["bills"][0]["type"] == "hr"
    org = FULL.replace(b"<ConstituentOrganization></ConstituentOrganization>",
                       b"<Organization>Local 12</Organization>")
    assert parse_cwc(org)["constituent"]["organization"] == "Local 12"
    namespaced = FULL.replace(b"<CWC>", b'<CWC xmlns="http://www.house.gov/cwc">')
    assert parse_cwc(namespaced)["delivery_id"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert parse_cwc(FULL.replace(b"<ProOrCon>Con", b"<ProOrCon>Pro"))["stance"] == Stance.SUPPORT


@pytest.mark.parametrize(("given", "expected"), [("H.R.", "hr"), ("hr", "hr"), ("S.", "s"),
                                                 ("H.J.Res.", "hjres"), ("", None)])
def test_bill_types(given, expected):
    assert normalise_bill_type(given) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    (b"<CWC><Delivery>", "not well-formed"),
    (b"<Letter/>", "root element is <Letter>"),
    (b"<CWC><Delivery/></CWC>", "no DeliveryId"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><CWC>&b;</CWC>',
     "forbidden constructs"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><CWC>&e;</CWC>',
     "forbidden constructs"),
])
def test_unreadable_deliveries_raise_with_reason(raw, reason):
    with pytest.raises(CwcError, match=reason):
        parse_cwc(raw)


def test_import_creates_message_constituent_topic_and_stance(database, session):
    summary = _import(database, [FULL])
    assert (summary.received, summary.quarantined, summary.failed) == (1, 0, 0)
    m = session.scalars(select(Message)).one()
    assert m.channel == Channel.CWC and m.status == MessageStatus.NEW
    assert m.idempotency_key == "cwc:a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert (m.campaign_id, m.organization, m.delivery_agent) == ("hands-off-ss-2026", "Retirees United",
                                                                 "Advocacy Vendor Inc.")
    assert m.organization_statement.startswith("Retirees United opposes")
    assert m.body_text.startswith("I paid into Social Security")
    assert m.stance == Stance.OPPOSE
    assert m.topic_id == session.scalar(select(Topic.id).where(Topic.name == "Social Welfare"))
    assert m.received_at.date().isoformat() == "2026-11-15"
    c = m.constituent
    assert (c.first_name, c.last_name, c.zip5, c.state) == ("Rosa", "Martinez", "43215", "OH")
    assert [p.number for p in c.phones] == ["+16145550142"]
    assert m.match_method == "created"


def test_same_delivery_twice_is_one_message(database, session):
    first = _import(database, [FULL, FULL])
    second = _import(database, [FULL])
    assert (first.received, first.duplicates, second.duplicates) == (1, 1, 1)
    assert len(session.scalars(select(Message)).all()) == 1


def test_second_delivery_from_same_person_matches_by_email(database, session):
    other = FULL.replace(b"a1b2c3d4e5f60718293a4b5c6d7e8f90", b"ffff0000")
    _import(database, [FULL, other])
    messages = session.scalars(select(Message).order_by(Message.id)).all()
    assert messages[1].constituent_id == messages[0].constituent_id
    assert messages[1].match_method == "email"


@pytest.mark.parametrize(("change", "reason"), [
    ((b"<MemberOffice>HOH03", b"<MemberOffice>HCA12"), "another office (HCA12)"),
    ((b"<Zip>43215-1234", b"<Zip>4321"), "ZIP code '4321'"),
    ((b"<City>Columbus</City>", b"<City></City>"), "bad address: no city"),
    ((b"<StateAbbreviation>OH", b"<StateAbbreviation>Atlantis"), "not a two-letter"),
])
def test_wrong_office_or_bad_address_is_quarantined(database, session, change, reason):
    summary = _import(database, [FULL.replace(*change)], Rules(cwc_offices=frozenset({"HOH03"})))
    assert (summary.received, summary.quarantined) == (1, 1)
    m = session.scalars(select(Message)).one()
    assert m.status == MessageStatus.QUARANTINED and reason in m.status_reason
    assert m.raw_sha256  # the delivery itself is kept for a person to look at


def test_cli_import_prints_summary(settings, tmp_path):
    (tmp_path / "good.xml").write_bytes(FULL)
    (tmp_path / "broken.xml").write_bytes(b"<CWC><oops>")
    env = cli_env(settings)
    result = CliRunner().invoke(cli, ["import", "cwc", str(tmp_path)], env=env)
    assert result.exit_code == 1, result.output  # one delivery was quarantined: not a clean import
    summary = json.loads(result.stdout)
    assert summary["received"] == 2 and summary["quarantined"] == 1 and summary["failed"] == 0
    assert any("not well-formed" in reason for reason in summary["reasons"])


def test_fuzzy_name_and_address_match_and_ambiguity(database, session, factory):
    known = factory.constituent(first_name="Rosa", last_name="Martinez", zip5="43215", address1="123 Main Street",
                                email=None)
    session.commit()
    no_email = FULL.replace(b"<Email>Rosa.Martinez@example.net</Email>", b"<Email></Email>").replace(
        b"<Phone>(614) 555-0142</Phone>", b"<Phone></Phone>")
    _import(database, [no_email])
    m = session.scalars(select(Message)).one()
    assert (m.constituent_id, m.match_method) == (known.id, "name+address")
    assert 0.9 <= m.match_confidence <= 1.0
    factory.constituent(first_name="Rosa", last_name="Martinez", zip5="43215", address1="123 Main St", email=None)
    session.commit()
    _import(database, [no_email.replace(b"a1b2c3d4e5f60718293a4b5c6d7e8f90", b"second-delivery")])
    second = session.scalars(select(Message).where(Message.external_id == "second-delivery")).one()
    assert second.constituent_id is None and second.match_method == "ambiguous"
    assert len(second.facts["match_candidates"]) == 2
