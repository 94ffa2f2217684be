"""A constituent's values read one way everywhere (constituents.values), and one "same person" rule
(constituents.identity) for intake, the phone log, the profile, the CSV import, the help form and duplicates."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import String, func, select

from casework import help_requests as helpdesk
from constituents import duplicates, identity, imports, records
from constituents.values import (
    LIMITS,
    STATES,
    Zip,
    email_key,
    fold_name,
    normalise_email,
    normalise_phone,
    parse_phone,
    parse_state,
    parse_zip,
    split_name,
    street_key,
)
from correspondence.errors import ValidationFailed
from correspondence.models import (
    CaseCategory,
    Constituent,
    ConstituentEmail,
    ConstituentImport,
    ConstituentPhone,
    HelpRequest,
    Message,
    utcnow,
)
from intake.phone import incoming_call
from intake.pipeline import Rules, process_message
from intake.receive import receive

# --- the parsers: a table of examples, then properties over generated input ---------------------------

EXAMPLES = [
    (normalise_phone, "614-555-0100 ext. 12", "+16145550100"),
    (normalise_phone, "(614) 555-0100", "+16145550100"),
    (normalise_phone, "+1 614 555 0100", "+16145550100"),
    (normalise_phone, "+44 20 7946 0958", "+442079460958"),
    (parse_zip, "43215", Zip("43215")),
    (parse_zip, "43215-1234", Zip("43215", "1234")),
    (parse_zip, "432151234", Zip("43215", "1234")),
    (parse_zip, "  ", None),
    (parse_state, "oh", "OH"),
    (parse_state, "Ohio", "OH"),
    (parse_state, "new  york", "NY"),
    (parse_state, "District of Columbia", "DC"),
    (parse_state, "", None),
    (normalise_email, " Ana.Lopez@Example.ORG ", "ana.lopez@example.org"),
    (normalise_email, "", None),
    (split_name, "Lopez, Ana", ("Ana", "Lopez")),
    (split_name, "Ana María Lopez", ("Ana María", "Lopez")),
    (split_name, "Cher", ("Cher", None)),
    (split_name, '"Ana Lopez"', ("Ana", "Lopez")),
]


@pytest.mark.parametrize(("parse", "text", "expected"), EXAMPLES)
def test_each_parser_reads_the_usual_spellings(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(("parse", "text"), [
    (normalise_phone, "12"), (normalise_phone, "call me"), (parse_zip, "4321"), (parse_zip, "ABCDE"),
    (parse_zip, "43215-12"), (parse_zip, "\u0664\u0663\u0662\u0661\u0665"),
    (parse_state, "Atlantis"), (parse_state, "XX"), (normalise_email, "not-an-email"),
    (normalise_email, "a" * 250 + "@example.org"),
])
def test_each_parser_refuses_what_it_cannot_read(parse, text):
    with pytest.raises(ValidationFailed):
        parse(text)


def test_field_limits_are_the_columns_and_the_profile_keeps_to_them(session, factory):
    columns = Constituent.__table__.c
    fields = ("first_name", "address1", "state", "zip5")
    assert {k: LIMITS[k] for k in fields} == {
        k: kind.length for k in fields if isinstance(kind := columns[k].type, String)}  # String columns only
    person, staffer = factory.constituent(), factory.staffer()
    with pytest.raises(ValidationFailed, match=f"longer than {LIMITS['city']}"):
        records.update_constituent(session, person.id, {"city": "x" * (LIMITS["city"] + 1)}, actor_id=staffer.id)
    records.update_constituent(session, person.id, {"city": "x" * LIMITS["city"]}, actor_id=staffer.id)
    assert len(person.city) == LIMITS["city"]


area = st.integers(200, 999).filter(lambda n: n % 100 != 11)  # NANP: no x11 service codes as area codes
exchange = st.integers(200, 999).filter(lambda n: n % 100 != 11)
line = st.integers(0, 9999)
SPELLINGS = ["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "{a} {e} {l}", "{a}{e}{l}", "+1 {a} {e} {l}",
             "1-{a}-{e}-{l}", "+1 ({a}) {e}-{l}", "{a}-{e}-{l} ext. 12", "({a}) {e}-{l} x345", "{a}/{e}-{l}"]


@hsettings(max_examples=150, deadline=None)
@given(a=area, e=exchange, n=line, spelling=st.sampled_from(SPELLINGS))
@example(a=614, e=555, n=100, spelling="{a}-{e}-{l} ext. 12")
def test_a_us_number_in_any_spelling_is_one_e164_number(a, e, n, spelling):
    text = spelling.format(a=a, e=e, l=f"{n:04d}")
    number = normalise_phone(text)
    assert number == f"+1{a}{e}{n:04d}"
    assert normalise_phone(number) == number  # idempotent


@given(st.text(max_size=40))
def test_phone_parsing_is_idempotent_or_refuses(text):
    try:
        phone = parse_phone(text)
    except ValidationFailed:
        return
    if phone is None:
        assert not text.strip()
    else:
        assert phone.number.startswith("+") and normalise_phone(phone.number) == phone.number


plus4s = st.none() | st.from_regex(r"[0-9]{4}", fullmatch=True)


@given(zip5=st.from_regex(r"[0-9]{5}", fullmatch=True), plus4=plus4s,
       dash=st.sampled_from(["-", " ", ""]))
def test_zip_with_and_without_plus4_reads_back_the_same(zip5, plus4, dash):
    text = zip5 + (dash + plus4 if plus4 else "")
    found = parse_zip(text)
    assert found == Zip(zip5, plus4)
    assert parse_zip(str(found)) == found  # idempotent
    assert parse_zip(text, spreadsheet=True) == found  # a whole ZIP is never changed


@given(rest=st.from_regex(r"[1-9][0-9]{3}", fullmatch=True), plus4=plus4s)
def test_a_zip_whose_leading_zero_a_spreadsheet_dropped_gets_it_back(rest, plus4):
    zip5 = "0" + rest
    as_number = str(int(zip5)) + (f"-{plus4}" if plus4 else "")  # what Excel shows for 02134(-1234)
    assert parse_zip(as_number, spreadsheet=True) == Zip(zip5, plus4)
    with pytest.raises(ValidationFailed, match="5 digits"):
        parse_zip(as_number)  # typed into a form, four digits are a typo to be corrected, not guessed


@given(code=st.sampled_from(sorted(STATES)), shout=st.booleans(), by_name=st.booleans())
def test_states_by_code_or_name_in_any_case(code, shout, by_name):
    text = STATES[code] if by_name else code
    text = text.upper() if shout else text.lower()
    assert parse_state(text) == code
    assert parse_state(parse_state(text)) == code


@given(st.text(max_size=30))
def test_state_is_a_code_none_or_refused(text):
    try:
        found = parse_state(text)
    except ValidationFailed:
        return
    assert found in STATES or (found is None and not text.strip())


local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
domain = st.from_regex(r"[a-z0-9]{1,12}\.(org|com|gov|net)", fullmatch=True)


@given(local=local, domain=domain, upper=st.booleans(), pad=st.sampled_from(["", " ", "\t"]))
def test_email_is_trimmed_lower_cased_and_idempotent(local, domain, upper, pad):
    text = pad + (f"{local}@{domain}".upper() if upper else f"{local}@{domain}") + pad
    address = normalise_email(text)
    assert address == f"{local}@{domain}" == email_key(text)
    assert normalise_email(address) == address


name_part = st.from_regex(r"[A-Z][a-z]{1,10}", fullmatch=True)


@given(first=name_part, last=name_part)
def test_a_name_written_either_way_splits_the_same(first, last):
    assert split_name(f"{first} {last}") == split_name(f"{last}, {first}") == (first, last)
    assert fold_name(f"  {first.upper()}   {last} ") == f"{first} {last}".lower()


def test_street_spellings_compare_equal():
    assert street_key("12 Oak Street,") == street_key("12 oak st.") == "12 oak st"


# --- one number everywhere: intake, the phone log and the profile --------------------------------------

def _log_call(session, staffer_id: int, **form: str) -> Message:
    item = incoming_call({"notes": "Called about the clinic.", **form}, nonce=uuid.uuid4().hex, staffer_id=staffer_id)
    result = receive(session, item, max_bytes=1_000_000)
    return process_message(session, result.message_id, rules=Rules())


def test_a_number_with_an_extension_is_one_number_at_intake_and_on_the_profile(session, factory):
    """The review's bug: "614-555-0100 ext. 12" was +614555010012 at intake and +16145550100 on the profile."""
    staffer = factory.staffer()
    # Typed on the profile first: the caller the phone log then meets is that person.
    ana = factory.constituent(first_name="Ana", last_name="Reyes", email=None)
    assert records.add_contact(session, ana.id, "phone", "614-555-0100 ext. 12", actor_id=staffer.id) == "+16145550100"
    session.flush()
    call = _log_call(session, staffer.id, phone="614-555-0100 ext. 12")
    assert (call.constituent_id, call.match_method) == (ana.id, "phone")
    # Met at intake first: the record it makes holds the same number, and the profile sees it is there.
    first = _log_call(session, staffer.id, first_name="Bo", last_name="Lind", phone="(937) 555-0123 x7")
    session.flush()
    bo = session.get(Constituent, first.constituent_id)
    assert [p.number for p in bo.phones] == ["+19375550123"] and first.match_method == "created"
    assert records.add_contact(session, bo.id, "phone", "937.555.0123 extension 7", actor_id=staffer.id) \
        == "+19375550123"
    assert len(bo.phones) == 1
    again = _log_call(session, staffer.id, phone="+1 937 555 0123")
    assert again.constituent_id == bo.id
    assert session.scalar(select(func.count()).select_from(Constituent)) == 2


def test_the_csv_import_finds_the_person_by_the_same_number(session, factory, settings):
    from correspondence.db import Database

    staffer = factory.staffer(role="supervisor")
    ana = factory.constituent(first_name="Ana", last_name="Reyes", email=None, zip5=None)
    records.add_contact(session, ana.id, "phone", "(614) 555-0100", actor_id=staffer.id)
    data = b"Name,Phone,Zip\nAna Reyes,614-555-0100 ext. 12,2134\nLee Park,614 555 0177,43215\n"
    imp = imports.upload(session, data, "people.csv", actor_id=staffer.id)
    assert imp.mapping is not None  # upload guessed the columns
    imports.start(session, imp.id, imp.mapping, "", actor_id=staffer.id)
    session.commit()
    imports.run_import(Database.from_settings(settings, immediate=True), imp.id)
    session.rollback()
    session.expire_all()
    imp = session.get(ConstituentImport, imp.id)
    assert (imp.created, imp.matched, imp.bad) == (1, 1, 0)
    ana = session.get(Constituent, ana.id)
    assert [p.number for p in ana.phones] == ["+16145550100"] and ana.zip5 == "02134"


# --- one rule for "same person" ------------------------------------------------------------------------

def test_the_strongest_fact_decides_and_a_weaker_one_only_suggests(session, factory):
    ana = factory.constituent(first_name="Ana", last_name="Reyes", email="ana@example.org",
                              address1="12 Oak Street", zip5="43215")
    ana.phones.append(ConstituentPhone(number="+16145550100"))
    session.flush()
    by_email = identity.find_or_create(session, identity.PersonFacts(email=" ANA@example.org "))
    assert (by_email.constituent_id, by_email.method, by_email.created) == (ana.id, "email", False)
    by_phone = identity.find_or_create(session, identity.PersonFacts(phone="614.555.0100", last_name="Other"))
    assert (by_phone.constituent_id, by_phone.method, by_phone.confidence) == (ana.id, "phone", 0.9)
    # A household shares a phone: a new address with Ana's number is someone new, with Ana suggested.
    housemate = identity.find_or_create(session, identity.PersonFacts(email="sam@example.org", phone="6145550100"))
    assert housemate.created and housemate.constituent is not ana
    assert (housemate.possible_id, housemate.possible_by) == (ana.id, "phone")
    by_name = identity.find_or_create(session, identity.PersonFacts(first_name="Ana", last_name="reyes",
                                                                    address1="12 oak st.", zip5="43215-0001"))
    assert (by_name.constituent_id, by_name.method) == (ana.id, "name+address")
    elsewhere = identity.find(session, identity.PersonFacts(first_name="Ana", last_name="Reyes",
                                                            address1="900 High Street", zip5="43215"))
    assert not elsewhere.found and elsewhere.method == "none"
    nothing = identity.find_or_create(session, identity.PersonFacts(first_name="Ana"))
    assert not nothing.found and not nothing.created


def test_a_near_tie_on_name_and_address_is_left_to_a_person(session, factory):
    one = factory.constituent(first_name="Rosa", last_name="Diaz", address1="5 Elm Street", zip5="43215", email=None)
    two = factory.constituent(first_name="Rosa", last_name="Diaz", address1="5 Elm St", zip5="43215", email=None)
    match = identity.find_or_create(session, identity.PersonFacts(first_name="Rosa", last_name="Diaz",
                                                                  address1="5 Elm Street", zip5="43215"))
    assert match.method == "ambiguous" and not match.created and set(match.candidates) == {one.id, two.id}


def test_a_merged_record_is_never_matched(session, factory):
    keep = factory.constituent(first_name="Ana", last_name="Reyes", email="ana@example.org")
    gone = factory.constituent(first_name="Ana", last_name="Reyes", email="ana.old@example.org")
    duplicates.merge(session, keep.id, gone.id, actor_id=factory.staffer().id)
    # An address added to the merged record afterwards still leads to the record it lives in.
    session.add(ConstituentEmail(constituent_id=gone.id, address="late@example.org"))
    session.flush()
    match = identity.find(session, identity.PersonFacts(email="late@example.org"))
    assert match.constituent_id == keep.id


def test_duplicates_offer_exactly_the_pairs_the_matcher_would_join(session, factory):
    base = {"last_name": "Gonzalez", "zip5": "43215", "email": None}
    a = factory.constituent(first_name="Maria", address1="12 Oak Street", **base)
    twin = factory.constituent(first_name="María", address1="12 Oak St.", **base)
    near = factory.constituent(first_name="Marco", address1="12 Oak Street", **base)  # another person
    no_street = factory.constituent(first_name="Maria", address1=None, **base)
    session.flush()
    offered = {c.person.id for c in duplicates.candidates_for(session, a.id)}
    joined = {p.id for p in (twin, near, no_street) if identity.name_address_score(a, p) is not None}
    assert offered == joined == {twin.id}
    match = identity.find(session, identity.PersonFacts(first_name="María", last_name="Gonzalez",
                                                        address1="12 Oak St.", zip5="43215"))
    assert match.method == "ambiguous"  # Maria and María are one person twice: a person merges them


# --- the help form keeps the phone it asks for ----------------------------------------------------------

def test_the_help_form_keeps_the_phone_normalised_on_the_record(session, factory):
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    done = helpdesk.submit_help_request(session, helpdesk.HelpValues(
        first_name="Lee", last_name="Park", email="Lee@Example.org", phone="614-555-0100 ext. 12",
        street="2 Main St", city="Dayton", state="Ohio", zip5="45402", category_id=str(category.id),
        description="Refund missing", consent=True, signature="Lee Park"),
        idempotency_key="p" * 32, ip="198.51.100.1", now=utcnow())
    request = done.value
    person = request.case.constituent
    assert [p.number for p in person.phones] == ["+16145550100"] and request.phone == "+16145550100"
    assert (person.state, person.zip5, request.email) == ("OH", "45402", "lee@example.org")
    assert [(e.job, e.ids, dict(e.options)) for e in done.effects] == [
        ("help_confirmation", (request.id,), {"by_staff": False})]
    # A second request with the same number and a new email: the first person is only a possible match.
    again = helpdesk.submit_help_request(session, helpdesk.HelpValues(
        first_name="Kim", last_name="Park", email="kim@example.org", phone="(614) 555-0100", street="2 Main St",
        city="Dayton", state="OH", zip5="45402", category_id=str(category.id), description="Passport",
        consent=True, signature="Kim Park"), idempotency_key="q" * 32, ip=None, now=utcnow()).value
    assert (again.possible_match_id, again.match_by) == (person.id, "phone")
    assert session.scalar(select(func.count()).select_from(HelpRequest)) == 2


@hsettings(max_examples=25, deadline=None)
@given(spelling=st.sampled_from(SPELLINGS))
def test_a_csv_cell_in_any_spelling_is_the_profile_number(spelling):
    row = imports.validate_row(2, ["Ana", "Reyes", spelling.format(a=614, e=555, l="0100")],
                               {"0": "first_name", "1": "last_name", "2": "phone"}, ["First", "Last", "Phone"])
    assert row.problems == [] and row.phone == normalise_phone("614-555-0100")


def test_import_rows_read_values_the_one_way():
    columns = ["Name", "State", "Zip", "Email"]
    mapping = {"0": "full_name", "1": "state", "2": "zip", "3": "email"}
    row = imports.validate_row(2, ["Reyes, Ana", "ohio", "2134-0001", "Ana@Example.org"], mapping, columns)
    assert row.problems == [] and row.emails == ["ana@example.org"]
    assert row.values == {"first_name": "Ana", "last_name": "Reyes", "state": "OH", "zip5": "02134", "zip4": "0001"}
    long = imports.validate_row(3, ["x" * (LIMITS["last_name"] + 1), "", "", ""], mapping, columns)
    assert any(f"longer than {LIMITS['first_name']}" in p for p in long.problems)


def test_the_import_joins_by_the_same_rule_as_intake(session, factory, settings):
    from correspondence.db import Database

    staffer = factory.staffer(role="supervisor")
    rosa = factory.constituent(first_name="Rosa", last_name="Diaz", address1="5 Elm St", zip5="43215",
                               email="rosa@example.org")
    rosa.phones.append(ConstituentPhone(number="+16145550142"))
    data = (b"First,Last,Email,Phone,Street,Zip\n"
            b"rosa,DIAZ,,,5 Elm Street,43215\n"  # no email or phone: her name and street in her ZIP
            b"Sam,Diaz,sam@example.org,614-555-0142,5 Elm Street,43215\n"  # a housemate: new email, shared phone
            b"Rosa,Diaz,,,77 Far Road,43215\n")  # the same name elsewhere: someone else
    imp = imports.upload(session, data, "people.csv", actor_id=staffer.id)
    assert imp.mapping is not None  # upload guessed the columns
    imports.start(session, imp.id, imp.mapping, "", actor_id=staffer.id)
    session.commit()
    imports.run_import(Database.from_settings(settings, immediate=True), imp.id)
    session.rollback()
    session.expire_all()
    imp = session.get(ConstituentImport, imp.id)
    assert (imp.created, imp.matched, imp.bad) == (2, 1, 0)
    sam = session.scalar(select(Constituent).join(ConstituentEmail)
                         .where(ConstituentEmail.address == "sam@example.org"))
    assert sam.id != rosa.id and [p.number for p in sam.phones] == ["+16145550142"]
    pairs = {(p.a.id, p.b.id, p.reason) for p in duplicates.office_candidates(session)}
    assert (rosa.id, sam.id, "same phone +16145550142") in pairs  # offered to a person to merge, never joined
