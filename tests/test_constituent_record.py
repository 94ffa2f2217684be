"""The constituent record: tags, segments (counts, CSV, follow-up), duplicates and merge, CSV import,
the activity report and "view as" — all through the real services, database and web app."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from config import Settings
from constituents import duplicates, imports, segments
from constituents import records as constituents
from correspondence.errors import ValidationFailed
from correspondence.models import (
    AuditEvent,
    Batch,
    Case,
    CaseCategory,
    Channel,
    Constituent,
    ConstituentImport,
    ConstituentPhone,
    Direction,
    DistrictStatus,
    Message,
    MessageStatus,
    ReportRun,
    Response,
    ResponseState,
    Segment,
    Stance,
    Topic,
)
from correspondence.services.inbox import InboxFilter, list_inbox
from drafting import letters
from drafting.apply import execute_run
from insight import reports

BODY = "{{ constituent.salutation }}\n\nThank you for standing with us on clean water.\n\n{{ office.signature }}"


def _topic(session, name: str) -> Topic:
    return session.scalar(select(Topic).where(Topic.name == name))


def _people(session, factory):
    """Five people: who wrote about what, where they live, how they are tagged."""
    water, health = _topic(session, "Environmental Protection"), _topic(session, "Health")
    old = datetime.now(UTC) - timedelta(days=200)
    a = factory.constituent(first_name="Ana", last_name="Alvarez", zip5="43215", city="Columbus")
    b = factory.constituent(first_name="Ben", last_name="Brown", zip5="43085", city="Worthington",
                            district_status=DistrictStatus.OUT_OF_DISTRICT, address1="1 Elm St", email=None)
    c = factory.constituent(first_name="Cy", last_name="Chen", zip5="43215", city="columbus")
    d = factory.constituent(first_name="Di", last_name="Diaz", zip5="43201", city="Columbus")
    e = factory.constituent(first_name="=HYPERLINK(\"http://evil.example/\",\"x\")", last_name="Evil", zip5="43215")
    batch = Batch(title="Clean water", template_text="x")
    session.add(batch)
    session.flush()
    factory.message(constituent_id=a.id, topic_id=water.id, stance=Stance.OPPOSE, batch_id=batch.id)
    factory.message(constituent_id=b.id, topic_id=water.id, stance=Stance.SUPPORT, channel=Channel.POSTAL)
    # Cy wrote about water (support) and, separately, opposed something on health: not "opposed water".
    factory.message(constituent_id=c.id, topic_id=water.id, stance=Stance.SUPPORT)
    factory.message(constituent_id=c.id, topic_id=health.id, stance=Stance.OPPOSE)
    factory.message(constituent_id=d.id, topic_id=water.id, stance=Stance.OPPOSE, received_at=old)
    factory.message(constituent_id=e.id, topic_id=health.id)
    constituents.add_tag(session, a.id, "Veteran", actor_id=None)
    constituents.add_tag(session, d.id, "veteran", actor_id=None)
    session.flush()
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "water": water, "health": health, "batch": batch}


def _ids(session, flt) -> set[int]:
    return set(segments.member_ids(session, flt))


def test_segment_filters_combine_on_the_same_letter(session, factory):
    p = _people(session, factory)
    F = segments.SegmentFilter
    assert _ids(session, F(topic_ids=(p["water"].id,))) == {p[k].id for k in "abcd"}
    assert _ids(session, F(topic_ids=(p["water"].id,), stance="oppose")) == {p["a"].id, p["d"].id}
    recent = F(topic_ids=(p["water"].id,), stance="oppose", active_from=date.today() - timedelta(days=30))
    assert _ids(session, recent) == {p["a"].id}
    assert _ids(session, F(zips=("43215",), city="COLUMBUS")) == {p["a"].id, p["c"].id, p["e"].id}
    assert _ids(session, F(district="out_of_district")) == {p["b"].id}
    assert _ids(session, F(batch_id=p["batch"].id)) == {p["a"].id}
    assert _ids(session, F(tags=("veteran",))) == {p["a"].id, p["d"].id}
    assert segments.count(session, F(tags=("veteran",), zips=("43201",))) == 1
    with pytest.raises(ValidationFailed, match="5 digits"):
        segments.parse_filter({"zips": "4321x"})
    with pytest.raises(ValidationFailed, match="ends before it starts"):
        segments.parse_filter({"active_from": "2026-05-01", "active_to": "2026-04-01"})
    flt = F(topic_ids=(p["water"].id,), stance="oppose", tags=("veteran",), active_to=date(2026, 1, 1))
    assert F.from_dict(flt.to_dict()) == flt


def test_segment_page_counts_saves_and_exports_a_formula_safe_csv(client, auth, session, factory):
    p = _people(session, factory)
    session.commit()
    auth.login("correspondent")
    page = client.get(f"/constituents/?zips=43215&topic_id={p['health'].id}").get_data(as_text=True)
    assert 'id="segment-count">2<' in page
    assert client.get("/constituents/count.json?zips=43215").get_json() == {"count": 3}
    bad = client.get("/constituents/count.json?zips=abc")
    assert bad.status_code == 400 and "5 digits" in bad.get_json()["error"]

    token = auth.csrf("/constituents/")
    saved = client.post("/constituents/segments", data={"csrf_token": token, "name": "Columbus 43215",
                                                         "filter": "zips=43215"}, follow_redirects=True)
    assert "Segment “Columbus 43215” saved." in saved.get_data(as_text=True)
    segment = session.scalar(select(Segment))
    assert segment.filters["zips"] == ["43215"]
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "segment.create")) is not None

    download = client.get(f"/constituents/export.csv?segment={segment.id}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert sorted(r["last_name"] for r in rows) == ["Alvarez", "Chen", "Evil"]
    evil = next(r for r in rows if r["last_name"] == "Evil")
    assert evil["first_name"].startswith("'=HYPERLINK(")  # shown as text by a spreadsheet, never run
    assert next(r for r in rows if r["last_name"] == "Alvarez")["tags"] == "veteran"


def test_follow_up_to_a_segment_goes_through_apply_to_all_once(client, auth, session, factory, settings):
    p = _people(session, factory)
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    version = letters.create_letter(session, title="Water update", body=BODY, actor_id=author.id)
    letters.submit(session, version.id, actor_id=author.id)
    letters.approve(session, version.id, actor_id=boss.id)
    flt = segments.SegmentFilter(topic_ids=(p["water"].id,))
    segment = segments.save_segment(session, "Wrote about water", flt, actor_id=author.id)
    session.commit()
    auth.login("correspondent")
    dry = client.get(f"/constituents/segments/{segment.id}/follow-up").get_data(as_text=True)
    assert 'id="will-email">3<' in dry and 'id="will-print">1<' in dry  # Ben has only a street address
    token = auth.csrf(f"/constituents/segments/{segment.id}/follow-up")
    sent = client.post(f"/constituents/segments/{segment.id}/follow-up",
                       data={"csrf_token": token, "version_id": version.id})
    assert sent.status_code == 303 and "/runs/" in sent.headers["Location"]
    run_id = int(sent.headers["Location"].rsplit("/", 1)[-1])
    execute_run(database_of(settings), run_id, settings)
    session.rollback()
    session.expire_all()
    answers = list(session.scalars(select(Response)))
    assert len(answers) == 4
    assert {r.constituent_id for r in answers} == {p[k].id for k in "abcd"}
    assert {r.method.value for r in answers} == {"email", "print"}
    assert "Thank you for standing with us" in answers[0].body_text
    follow_ups = list(session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)))
    # Rendered, not yet sent (no SMTP here) nor printed (no print file built): answer queued.
    assert len(follow_ups) == 4 and all(m.status == MessageStatus.ANSWER_QUEUED for m in follow_ups)
    # Outbound records are not mail to triage.
    inbox = list_inbox(session, InboxFilter(statuses=tuple(MessageStatus)), with_counts=False)
    assert not any(m.direction == Direction.OUTBOUND for m in inbox.messages)
    # Asking again with the same letter sends nothing twice.
    again = client.post(f"/constituents/segments/{segment.id}/follow-up",
                        data={"csrf_token": token, "version_id": version.id})
    execute_run(database_of(settings), int(again.headers["Location"].rsplit("/", 1)[-1]), settings)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Response)) == 4
    assert session.scalar(select(func.count()).select_from(Message)
                          .where(Message.direction == Direction.OUTBOUND)) == 4


def database_of(settings: Settings):
    from correspondence.db import Database

    return Database.from_settings(settings, immediate=True)


def test_duplicates_are_found_by_phone_mailbox_and_name_address(session, factory):
    a = factory.constituent(first_name="Maria", last_name="Gonzalez", address1="12 Oak Street", zip5="43215",
                            email="maria.gonzalez@gmail.com")
    phone_twin = factory.constituent(first_name="M", last_name="G", email=None)
    mailbox_twin = factory.constituent(first_name="Mary", last_name="Other", email="mariagonzalez+news@gmail.com")
    name_twin = factory.constituent(first_name="María", last_name="Gonzalez", address1="12 Oak St.", zip5="43215",
                                    email=None)
    stranger = factory.constituent(first_name="Marco", last_name="Gonzalez", address1="900 High Street",
                                   zip5="43215", email=None)
    for person in (a, phone_twin):
        session.add(ConstituentPhone(constituent_id=person.id, number="+16145550143"))
    session.flush()
    session.expire_all()
    found = {c.person.id: c.reasons for c in duplicates.candidates_for(session, a.id)}
    assert found.keys() == {phone_twin.id, mailbox_twin.id, name_twin.id}
    assert "same phone" in found[phone_twin.id] and "similar name and address" in found[name_twin.id]
    assert stranger.id not in found
    pairs = {(p.a.id, p.b.id) for p in duplicates.office_candidates(session)}
    assert (a.id, phone_twin.id) in pairs and (a.id, name_twin.id) in pairs and (a.id, mailbox_twin.id) in pairs


def test_merge_moves_everything_and_undo_puts_it_back(client, auth, session, factory):
    keep = factory.constituent(first_name="Ana", last_name="Lopez", address1=None, email="ana@example.org")
    gone = factory.constituent(first_name="Ana", last_name="Lopez", address1="5 Main St", email="ana.l@example.org")
    constituents.add_tag(session, gone.id, "veteran", actor_id=None)
    message = factory.message(constituent_id=gone.id)
    session.add(Response(message_id=message.id, constituent_id=gone.id, method="email", subject="Re",
                         body_text="x", email_message_id="<m1@x>", state=ResponseState.SENT))
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "IRS"))
    from casework import cases

    case = cases.open_case(session, constituent_id=gone.id, category_id=category.id, subject="Refund",
                           actor_id=None)
    cases.add_note(session, case.id, "Called the IRS liaison", actor_id=factory.staffer(role="supervisor").id)
    session.commit()
    auth.login("supervisor")  # case notes are need-to-know: a supervisor sees them in the timeline
    compare = client.get(f"/constituents/{keep.id}/merge/{gone.id}").get_data(as_text=True)
    assert "5 Main St" in compare and "ana.l@example.org" in compare
    token = auth.csrf(f"/constituents/{keep.id}/merge/{gone.id}")
    done = client.post(f"/constituents/{keep.id}/merge/{gone.id}", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert f"Merged record {gone.id}" in done
    session.rollback()
    session.expire_all()
    kept = session.get(Constituent, keep.id)
    assert session.get(Message, message.id).constituent_id == keep.id
    assert session.get(Case, case.id).constituent_id == keep.id
    assert session.scalar(select(Response.constituent_id)) == keep.id
    assert {e.address for e in kept.emails} == {"ana@example.org", "ana.l@example.org"}
    assert [t.tag for t in kept.tags] == ["veteran"] and kept.address1 == "5 Main St"
    assert session.get(Constituent, gone.id).merged_into_id == keep.id
    assert segments.count(session, segments.SegmentFilter(tags=("veteran",))) == 1  # only the kept record
    merged_page = client.get(f"/constituents/{gone.id}").get_data(as_text=True)
    assert "was merged into" in merged_page
    kept_page = client.get(f"/constituents/{keep.id}").get_data(as_text=True)
    # the timeline holds the activity, in words
    assert "merged a duplicate record into this one" in kept_page and "Refund" in kept_page
    assert "Called the IRS liaison" in kept_page  # and the case's notes

    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "constituent.merge"))
    undone = client.post(f"/constituents/merges/{event.id}/undo", data={"csrf_token": token},
                         follow_redirects=True).get_data(as_text=True)
    assert "Merge undone" in undone
    session.rollback()
    session.expire_all()
    assert session.get(Message, message.id).constituent_id == gone.id
    assert session.get(Case, case.id).constituent_id == gone.id
    assert {e.address for e in session.get(Constituent, gone.id).emails} == {"ana.l@example.org"}
    assert session.get(Constituent, keep.id).address1 is None
    assert session.get(Constituent, gone.id).merged_into_id is None
    twice = client.post(f"/constituents/merges/{event.id}/undo", data={"csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "already undone" in twice
    with pytest.raises(ValidationFailed, match="into itself"):
        duplicates.merge(session, keep.id, keep.id, actor_id=None)  # type: ignore[arg-type]  # refused before any actor is read


MESSY = (
    "First Name;Last Name;E-mail;Phone;Street;City;ST;Zip;Tags\r\n"
    "José;Núñez;JOSE@example.org;(614) 555-0100;1 High St;Columbus;oh;2134;veteran\r\n"  # ZIP lost its 0
    "=HYPERLINK(\"http://evil.example\",\"x\");Hacker;h@example.org;;;;;;\r\n"
    "Bad;Email;not-an-email;;;;;;\r\n"
    "Bad;Zip;bz@example.org;;;;;ABCDE;\r\n"
    ";;;;;;;;\r\n"
    "Existing;Person;known@example.org;;9 Known Rd;;;;donor\r\n"
    "Jose;Nunez;jose@example.org;;;;;;\r\n"  # the same mailbox as line 2: matched, not created twice
    "Sam;Lee;sam@example.org;614-555-0199;;;;43215-1234;\r\n"
)


def test_csv_import_maps_previews_reports_bad_rows_and_deduplicates(client, auth, session, factory, settings):
    existing = factory.constituent(first_name="Existing", last_name="Person", email="known@example.org",
                                   address1=None)
    session.commit()
    auth.login("supervisor")
    token = auth.csrf("/constituents/import")
    data = MESSY.encode("cp1252")  # what Excel on Windows saves
    uploaded = client.post("/constituents/import", data={"csrf_token": token,
                                                         "file": (io.BytesIO(data), "people.csv")})
    assert uploaded.status_code == 303, uploaded.get_data(as_text=True)
    imp = session.scalar(select(ConstituentImport))
    assert imp.encoding == "windows-1252" and imp.total_rows == 8
    assert {imp.columns[int(i)]: f for i, f in imp.mapping.items()} == {
        "First Name": "first_name", "Last Name": "last_name", "E-mail": "email", "Phone": "phone",
        "Street": "address1", "City": "city", "ST": "state", "Zip": "zip", "Tags": "tags"}
    preview = client.get(f"/constituents/import/{imp.id}").get_data(as_text=True)
    assert "Núñez" in preview and "looks like a spreadsheet formula" in preview and "02134" in preview
    # A mapping with no name and no email is refused before anything runs.
    refused = client.get(f"/constituents/import/{imp.id}?map_5=city").get_data(as_text=True)
    assert "map at least one column to a name" in refused

    start = client.post(f"/constituents/import/{imp.id}", data={
        "csrf_token": token, "tag": "Town Hall 2026", **{f"map_{i}": f for i, f in imp.mapping.items()}})
    assert start.status_code == 303
    imports.run_import(database_of(settings), imp.id)
    imports.run_import(database_of(settings), imp.id)  # a second run does nothing more
    session.rollback()
    session.expire_all()
    imp = session.get(ConstituentImport, imp.id)
    assert (imp.state, imp.created, imp.matched, imp.bad) == ("done", 2, 2, 4)
    jose = session.scalar(select(Constituent).where(Constituent.last_name == "Núñez"))
    assert (jose.zip5, jose.state, jose.phones[0].number) == ("02134", "OH", "+16145550100")
    assert {t.tag for t in jose.tags} == {"veteran", "town hall 2026"}
    sam = session.scalar(select(Constituent).where(Constituent.last_name == "Lee"))
    assert (sam.zip5, sam.zip4) == ("43215", "1234")
    known = session.get(Constituent, existing.id)
    assert known.address1 == "9 Known Rd" and {t.tag for t in known.tags} == {"donor", "town hall 2026"}
    assert session.scalar(select(func.count()).select_from(Constituent)) == 3

    report = client.get(f"/constituents/import/{imp.id}/bad-rows.csv").get_data(as_text=True)
    bad = list(csv.DictReader(io.StringIO(report.lstrip("\ufeff"))))
    reasons = {r["line"]: r["problem"] for r in bad}
    assert set(reasons) == {"3", "4", "5", "6"}
    assert "formula" in reasons["3"] and "not an email address" in reasons["4"] and "ZIP" in reasons["5"]
    assert reasons["6"] == "no name and no email"
    assert next(r for r in bad if r["line"] == "3")["First Name"].startswith("'=")  # neutralised on the way out
    page = client.get(f"/constituents/import/{imp.id}").get_data(as_text=True)
    assert 'id="import-created">2<' in page and 'id="import-bad">4<' in page


@pytest.mark.parametrize(("data", "reason"), [
    (b"PK\x03\x04\x00\x00binary", "not a CSV text file"),
    (b"", "empty"),
    (b"first,last\n", "no rows"),
    (b"\xff\xfe" + "name\r\nx\r\n".encode("utf-16-le"), "not a CSV text file"),
])
def test_unreadable_csv_files_are_refused_with_the_reason(client, auth, data, reason):
    auth.login("admin")
    token = auth.csrf("/constituents/import")
    answer = client.post("/constituents/import", data={"csrf_token": token, "file": (io.BytesIO(data), "x.csv")},
                         follow_redirects=True).get_data(as_text=True)
    assert reason in answer


def test_activity_report_counts_a_range_and_a_segment(client, auth, session, factory, settings):
    p = _people(session, factory)
    answered = session.scalar(select(Message).where(Message.constituent_id == p["a"].id))
    answered.received_at = datetime.now(UTC) - timedelta(days=3)
    session.add(Response(message_id=answered.id, constituent_id=p["a"].id, method="email", subject="Re",
                         body_text="x", email_message_id="<r@x>", state=ResponseState.SENT,
                         sent_at=datetime.now(UTC) - timedelta(days=1)))
    veterans = segments.save_segment(session, "Veterans", segments.SegmentFilter(tags=("veteran",)),
                                     actor_id=None)  # type: ignore[arg-type]  # seeded with no staffer behind it
    session.commit()
    auth.login("supervisor")
    token = auth.csrf("/reports/activity")
    today = date.today()
    made = client.post("/reports/activity", data={"csrf_token": token, "start": (today - timedelta(days=30))
                                                  .isoformat(), "end": today.isoformat()})
    waiting = client.get(made.headers["Location"]).get_data(as_text=True)
    assert 'id="job-progress"' in waiting  # a job counts it; the page follows its progress
    reports.execute(database_of(settings), int(made.headers["Location"].rsplit("/", 1)[-1]))
    page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert 'id="r-incoming">5<' in page and 'id="r-sent">1<' in page and 'id="r-median">2.0<' in page
    run = session.scalar(select(ReportRun))
    assert run.result["by_topic"] == {"Environmental Protection": 3, "Health": 2}
    assert run.result["by_stance"]["oppose"] == 2
    rows = list(csv.reader(io.StringIO(client.get(f"/reports/{run.id}.csv").get_data(as_text=True))))
    assert ["topic", "Health", "2"] in rows and ["response time (days)", "median", "2.0"] in rows

    # A long range for one segment: the same job, counted month by month with progress.
    long = client.post("/reports/activity", data={"csrf_token": token, "segment_id": veterans.id,
                                                  "start": (today - timedelta(days=365)).isoformat(),
                                                  "end": today.isoformat()})
    run_id = int(long.headers["Location"].rsplit("/", 1)[-1])
    assert client.get(f"/reports/{run_id}.json").get_json()["state"] == "queued"
    reports.execute(database_of(settings), run_id)
    session.rollback()
    session.expire_all()
    result = session.get(ReportRun, run_id).result
    assert result["incoming"] == 2 and result["by_stance"] == {"oppose": 2}  # Ana and Di, the veterans
    bad = client.post("/reports/activity", data={"csrf_token": token, "start": "2026-02-01", "end": "2026-01-01"},
                      follow_redirects=True).get_data(as_text=True)
    assert "ends before it starts" in bad


def test_admin_views_as_a_staffer_read_only_flagged_and_audited(client, auth, session, factory):
    target = factory.staffer(role="caseworker", name="Lena Novak")
    session.commit()
    admin = auth.login("admin")
    token = auth.csrf("/admin/staff")
    started = client.post(f"/admin/staff/{target.id}/view-as", data={"csrf_token": token}, follow_redirects=True)
    page = started.get_data(as_text=True)
    assert "Viewing as Lena Novak" in page and f"you are {admin.name}" in page
    assert client.get("/admin/staff").status_code == 403  # a caseworker's view: no staff page
    assert "Viewing as Lena Novak" in client.get("/cases/").get_data(as_text=True)
    refused = client.post("/constituents/segments", data={"csrf_token": token, "name": "x", "filter": ""})
    assert refused.status_code == 403 and "changes are turned off" in refused.get_data(as_text=True)
    stopped = client.post("/view-as/stop", data={"csrf_token": token}, follow_redirects=True)
    assert "Viewing as" not in stopped.get_data(as_text=True) and stopped.status_code == 200
    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object_type == "staffer")
                                                 .order_by(AuditEvent.id))]
    assert actions[-2:] == ["staff.view_as", "staff.view_as_stop"]
    assert client.get("/admin/staff").status_code == 200


def test_case_details_steps_and_reassignment_are_edited_and_audited(client, auth, session, factory):
    from casework import cases

    person = factory.constituent()
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Veterans Affairs"))
    case = cases.open_case(session, constituent_id=person.id, category_id=category.id, subject="Benefits",
                           actor_id=None)
    helper = factory.staffer(role="caseworker", name="Helper")
    session.commit()
    auth.login("caseworker")
    token = auth.csrf(f"/cases/{case.id}")
    saved = client.post(f"/cases/{case.id}/details", data={
        "csrf_token": token, "subject": "VA disability claim", "agency": "Veterans Affairs",
        "agency_contact": "J. Smith, congressional liaison, 202-555-0100", "priority": "urgent",
        "caseworker_id": helper.id, "due": "2027-01-15"}, follow_redirects=True).get_data(as_text=True)
    assert "Case details saved." in saved and "J. Smith, congressional liaison" in saved
    added = client.post(f"/cases/{case.id}/add-step", data={"csrf_token": token, "title": "Call the VA liaison",
                                                           "due": "2026-12-10"}, follow_redirects=True)
    assert "Step added: Call the VA liaison." in added.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    case = session.get(Case, case.id)
    assert (case.priority.value, case.caseworker_id, case.due_at.date()) == ("urgent", helper.id, date(2027, 1, 15))
    steps = cases.steps(session, case.id)
    assert steps[-1].title == "Call the VA liaison" and steps[-1].assignee_id == helper.id
    moved = client.post(f"/cases/{case.id}/reassign-step", data={"csrf_token": token, "step_id": steps[0].id,
                                                                "assignee_id": "", "due": "2026-12-24"},
                        follow_redirects=True)
    assert "Step updated" in moved.get_data(as_text=True)
    bad = client.post(f"/cases/{case.id}/details", data={"csrf_token": token, "priority": "whenever"},
                      follow_redirects=True).get_data(as_text=True)
    assert "choose a priority" in bad
    session.rollback()
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "case")))
    assert {"case.edit", "case.step_add", "case.step_reassign"} <= actions


def test_inbox_and_case_lists_download_as_formula_safe_csv(client, auth, session, factory):
    person = factory.constituent(last_name="@SUM(A1:A9)")
    factory.message(constituent_id=person.id, subject="=cmd|' /C calc'!A0", from_name="-2+3")
    factory.message(constituent_id=person.id, subject="Roads", status=MessageStatus.CLOSED)
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Housing"))
    from casework import cases

    cases.open_case(session, constituent_id=person.id, category_id=category.id, subject="+Rent help",
                    actor_id=None)
    session.commit()
    auth.login("caseworker")
    rows = list(csv.DictReader(io.StringIO(client.get("/inbox/export.csv").get_data(as_text=True))))
    assert [r["subject"] for r in rows] == ["'=cmd|' /C calc'!A0"]  # the open filter: the closed one is not in
    assert rows[0]["from_name"] == "'-2+3"
    everything = client.get("/inbox/export.csv?status=all").get_data(as_text=True)
    assert "Roads" in everything
    case_rows = list(csv.DictReader(io.StringIO(client.get("/cases/export.csv?who=all").get_data(as_text=True))))
    assert case_rows[0]["subject"] == "'+Rent help" and case_rows[0]["constituent"] == "Pat @SUM(A1:A9)"
    assert case_rows[0]["category"] == "Housing" and case_rows[0]["release_on_file"] == "no"


def test_the_office_keeps_its_case_categories_and_their_steps(client, auth, session, factory):
    auth.login("supervisor")
    token = auth.csrf("/admin/case-categories")
    refused = client.post("/admin/case-categories", data={"csrf_token": token, "name": "Tribal affairs",
                                                          "steps": "task | Call | soon"}, follow_redirects=True)
    assert "kind | title | days" in refused.get_data(as_text=True)
    added = client.post("/admin/case-categories", data={
        "csrf_token": token, "name": "Tribal affairs",
        "steps": "release | Signed release | 5\ninquiry | Ask the BIA | 1\nclose | Close | 10"}, follow_redirects=True)
    assert "Category Tribal affairs saved." in added.get_data(as_text=True)
    category = session.scalar(select(CaseCategory).where(CaseCategory.name == "Tribal affairs"))
    assert [s["kind"] for s in category.steps] == ["release", "inquiry", "close"]
    from casework import cases

    person = factory.constituent()
    case = cases.open_case(session, constituent_id=person.id, category_id=category.id, subject="Land title",
                           actor_id=None)
    assert [s.title for s in cases.steps(session, case.id)] == ["Signed release", "Ask the BIA", "Close"]
    session.commit()
    client.post("/admin/case-categories", data={"csrf_token": token, "category_id": category.id, "active": "0"})
    session.rollback()
    assert category.id not in {c.id for c in cases.categories(session)}
    dup = client.post("/admin/case-categories", data={"csrf_token": token, "name": "Passports",
                                                      "steps": "task | x | 1"}, follow_redirects=True)
    assert "already a category called" in dup.get_data(as_text=True)


def test_emails_and_phones_are_added_and_removed_with_an_audit_trail(client, auth, session, factory):
    person = factory.constituent(email="ana@example.org")
    other = factory.constituent(email="taken@example.org")
    session.commit()
    auth.login("correspondent")
    token = auth.csrf(f"/constituents/{person.id}")
    post = lambda **data: client.post(f"/constituents/{person.id}/contacts", data={"csrf_token": token, **data},  # noqa: E731
                                      follow_redirects=True).get_data(as_text=True)
    assert "Added +16145550143." in post(kind="phone", value="(614) 555-0143")
    assert "Added ana.work@example.org." in post(kind="email", value="Ana.Work@Example.org")
    assert "is not a phone number" in post(kind="phone", value="12")
    assert f"belongs to constituent {other.id}" in post(kind="email", value="taken@example.org")
    assert "Removed ana@example.org." in post(kind="email", remove="ana@example.org")
    session.rollback()
    session.expire_all()
    person = session.get(Constituent, person.id)
    assert [e.address for e in person.emails] == ["ana.work@example.org"]
    assert [p.number for p in person.phones] == ["+16145550143"]
    actions = [e.action for e in session.scalars(select(AuditEvent).where(
        AuditEvent.object_id == str(person.id), AuditEvent.object_type == "constituent").order_by(AuditEvent.id))]
    assert actions == ["constituent.add_phone", "constituent.add_email", "constituent.remove_email"]
    assert "added the phone +16145550143" in client.get(f"/constituents/{person.id}").get_data(as_text=True)
