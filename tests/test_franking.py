"""The mass-communication (franking) guard and the blackout calendar (outbound/franking.py).

Real parts: SQLite/PostgreSQL, the apply-to-all dry run and start (drafting.apply), segment follow-ups
(constituents.segments), the Flask app. A small threshold (a setting) keeps the runs small; the rules
are the same at 499.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from config import Settings
from constituents import segments
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import ApplyRun, AuditEvent, Election, Response
from drafting import letters
from drafting.apply import execute_run, plan, start_run
from outbound import franking
from tests.conftest import TEST_SECRET_KEY

BODY = ("{{ constituent.salutation }}\n\nThe water bill passed the House today. It protects the river, funds "
        "new treatment plants and keeps rates low for families across the district.\n\n{{ office.signature }}")
OTHER = ("{{ constituent.salutation }}\n\nOur office hours change in the spring: we open at eight on Mondays "
         "and the mobile office visits the county fair.\n\n{{ office.signature }}")
TODAY = date(2026, 6, 1)
RULES = franking.Rules(threshold=3, blackout_days=90, timezone="UTC")


def _letter(session, factory, title: str, body: str = BODY):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title=title, body=body, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _follow_up(session, factory, version, author, zip5: str, people: int) -> list[int]:
    for i in range(people):
        factory.constituent(email=f"p{zip5}-{i}@example.org", zip5=zip5)
    segment = segments.save_segment(session, f"ZIP {zip5}", segments.parse_filter({"zips": zip5}), actor_id=author.id)
    return segments.follow_up_messages(session, segment, version.id, "Follow-up: water", actor_id=author.id)


def _writers(factory, zip5: str, people: int) -> list[int]:
    """People who wrote to the office themselves: one inbound message each."""
    ids = []
    for i in range(people):
        c = factory.constituent(email=f"w{zip5}-{i}@example.org", zip5=zip5)
        ids.append(factory.message(constituent_id=c.id, from_address=c.primary_email).id)
    return ids


def test_the_legislative_year_runs_from_3_january_to_2_january():
    assert franking.legislative_year(date(2027, 1, 2)) == (date(2026, 1, 3), date(2027, 1, 2))
    assert franking.legislative_year(date(2027, 1, 3)) == (date(2027, 1, 3), date(2028, 1, 2))
    assert franking.legislative_year(date(2026, 12, 31)) == (date(2026, 1, 3), date(2027, 1, 2))


def test_a_follow_up_over_the_threshold_is_refused_without_an_approval_and_starts_with_one(session, factory):
    version, author = _letter(session, factory, "Water bill passed")
    follow = _follow_up(session, factory, version, author, "99801", 4)
    dry = plan(session, follow, version_id=version.id, rules=RULES, today=TODAY)
    verdict = dry.franking
    assert (dry.letters, dry.unsolicited) == (4, 4)
    assert verdict.kind == franking.UNSOLICITED and verdict.total == 4 and verdict.needs_approval
    assert verdict.year == (date(2026, 1, 3), date(2027, 1, 2))
    with pytest.raises(PermissionDenied, match="advisory opinion"):
        start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)
    assert session.scalar(select(ApplyRun.id)) is None  # nothing was started

    admin = factory.staffer(role="admin")
    with pytest.raises(ValidationFailed, match="number"):
        franking.record_approval(session, version.letter_id, opinion_number="  ", opinion_date=TODAY,
                                 actor_id=admin.id, rules=RULES, today=TODAY)
    franking.record_approval(session, version.letter_id, opinion_number="AO 2026-17", opinion_date=date(2026, 5, 20),
                             actor_id=admin.id, rules=RULES, today=TODAY)
    dry = plan(session, follow, version_id=version.id, rules=RULES, today=TODAY)
    assert dry.franking.over and not dry.franking.needs_approval
    assert dry.franking.approval.opinion_number == "AO 2026-17"
    run = start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "apply_run.start",
                                                    AuditEvent.object_id == str(run.id)))
    assert event.after["franking"] == "unsolicited" and event.after["approval"] == "AO 2026-17"
    recorded = session.scalar(select(AuditEvent).where(AuditEvent.action == "mass_mail_approval.record"))
    assert recorded.actor_id == admin.id and recorded.after["legislative_year"] == "2026-01-03"
    # The approval is for its legislative year only: the next year needs its own.
    with pytest.raises(PermissionDenied, match="advisory opinion"):
        start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=date(2027, 1, 3))


def test_at_the_threshold_no_approval_is_needed(session, factory):
    version, author = _letter(session, factory, "Water bill passed")
    follow = _follow_up(session, factory, version, author, "99802", 3)
    assert not plan(session, follow, version_id=version.id, rules=RULES, today=TODAY).franking.over
    start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)


def test_answers_to_peoples_own_mail_are_exempt_above_the_threshold_and_in_a_blackout(session, factory):
    version, author = _letter(session, factory, "Water bill passed")
    mine = _writers(factory, "99803", 5)
    franking.add_election(session, kind="primary", election_date=TODAY + timedelta(days=10), actor_id=author.id)
    dry = plan(session, mine, version_id=version.id, rules=RULES, today=TODAY)
    assert dry.letters == 5 and dry.unsolicited == 0
    assert dry.franking.kind == franking.SOLICITED and not dry.franking.blocked and not dry.franking.over
    assert [w.ends for w in dry.franking.upcoming] == [TODAY + timedelta(days=10)]  # shown, not applied
    run = start_run(session, version.id, message_ids=mine, actor_id=author.id, rules=RULES, today=TODAY)
    assert run.total == 5


def test_an_unsolicited_run_cannot_start_in_a_blackout(session, factory):
    version, author = _letter(session, factory, "Water bill passed")
    follow = _follow_up(session, factory, version, author, "99804", 2)
    general = TODAY + timedelta(days=90)  # the window opens today: 90 days before, election day included
    franking.add_election(session, kind="general", election_date=general, note="November", actor_id=author.id)
    with pytest.raises(ValidationFailed, match="already entered"):
        franking.add_election(session, kind="general", election_date=general, actor_id=author.id)
    with pytest.raises(ValidationFailed, match="primary, general"):
        franking.add_election(session, kind="mayoral", election_date=general, actor_id=author.id)
    dry = plan(session, follow, version_id=version.id, rules=RULES, today=TODAY)
    assert dry.franking.blocked and dry.franking.blocked_by[0].starts == TODAY
    assert not dry.franking.over  # two pieces: only the blackout stops it
    with pytest.raises(PermissionDenied, match="blackout"):
        start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)
    with pytest.raises(PermissionDenied, match="blackout"):  # election day itself
        start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=general)
    day_before_window = TODAY - timedelta(days=1)
    assert not plan(session, follow, version_id=version.id, rules=RULES, today=day_before_window).franking.blocked
    assert plan(session, follow, version_id=version.id, rules=RULES, today=day_before_window).franking.upcoming
    start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES,
              today=general + timedelta(days=1))  # the day after the election: open again
    # A Senate office's 60 days: the same election does not close today.
    senate = dataclasses.replace(RULES, blackout_days=60)
    assert not plan(session, follow, version_id=version.id, rules=senate, today=TODAY).franking.blocked
    election = session.scalar(select(Election))
    franking.remove_election(session, election.id, actor_id=author.id)
    assert not plan(session, follow, version_id=version.id, rules=RULES, today=TODAY).franking.blocked
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "election")))
    assert actions == {"election.add", "election.remove"}


def test_versions_and_near_identical_letters_count_together_in_the_legislative_year(
        session, factory, database, settings):
    version, author = _letter(session, factory, "Water bill passed")
    first = _follow_up(session, factory, version, author, "99805", 2)
    run = start_run(session, version.id, message_ids=first, actor_id=author.id, rules=RULES, today=TODAY)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    # Made on 2 January 2027: the last day of the legislative year that began on 3 January 2026.
    session.execute(update(Response).values(created_at=datetime(2027, 1, 2, 15, 0, tzinfo=UTC)))
    day = date(2027, 1, 2)

    # The same text with one word changed, as another letter: substantially identical (≥ 0.9).
    near, _a = _letter(session, factory, "Water bill passed (again)", BODY.replace("today", "this week"))
    assert franking.similar(BODY, near.body) >= franking.SIMILAR
    second = _follow_up(session, factory, near, author, "99806", 2)
    dry = plan(session, second, version_id=near.id, rules=RULES, today=day)
    assert (dry.franking.earlier, dry.franking.total) == (2, 4) and dry.franking.needs_approval
    assert [n for _i, _t, n in dry.franking.family] == [0, 2]
    with pytest.raises(PermissionDenied, match="advisory opinion"):
        start_run(session, near.id, message_ids=second, actor_id=author.id, rules=RULES, today=day)
    # A different letter is its own family.
    other, _b = _letter(session, factory, "Office hours", OTHER)
    assert franking.similar(BODY, other.body) < franking.SIMILAR
    third = _follow_up(session, factory, other, author, "99807", 2)
    assert plan(session, third, version_id=other.id, rules=RULES, today=day).franking.earlier == 0
    # A new legislative year starts the count again.
    assert plan(session, second, version_id=near.id, rules=RULES, today=date(2027, 1, 3)).franking.earlier == 0
    start_run(session, near.id, message_ids=second, actor_id=author.id, rules=RULES, today=date(2027, 1, 3))


def test_settings_default_to_the_house_rules_and_are_checked(tmp_path):
    base = Settings.from_env({}, instance_dir=tmp_path, database_url="sqlite://", secret_key=TEST_SECRET_KEY,
                             redis_url=None)
    assert (base.mass_mail_threshold, base.blackout_days) == (499, 90)
    assert franking.Rules.of(base) == franking.Rules(threshold=499, blackout_days=90, timezone=base.timezone)
    senate = Settings.from_env({"MAILROOM_BLACKOUT_DAYS": "60", "MAILROOM_MASS_MAIL_THRESHOLD": "200"},
                               instance_dir=tmp_path, database_url="sqlite://", secret_key=TEST_SECRET_KEY,
                               redis_url=None)
    assert (senate.mass_mail_threshold, senate.blackout_days) == (200, 60)
    from config.settings import SettingsError

    with pytest.raises(SettingsError, match="MAILROOM_BLACKOUT_DAYS"):
        Settings.from_env({"MAILROOM_BLACKOUT_DAYS": "-1"}, instance_dir=tmp_path, database_url="sqlite://",
                          secret_key=TEST_SECRET_KEY, redis_url=None)


def test_admins_keep_the_calendar_and_the_follow_up_page_shows_and_enforces_it(session, factory, settings):
    from web import create_app

    app = create_app(dataclasses.replace(settings, mass_mail_threshold=3))
    try:
        client = app.test_client()
        from tests.conftest import Auth

        auth = Auth(client, factory, session)
        version, author = _letter(session, factory, "Water bill passed")
        for i in range(4):
            factory.constituent(email=f"web{i}@example.org", zip5="99808")
        segment = segments.save_segment(session, "ZIP 99808", segments.parse_filter({"zips": "99808"}),
                                        actor_id=author.id)
        session.commit()
        auth.login("admin")
        token = auth.csrf("/admin/franking")
        election_day = datetime.now(UTC).date() + timedelta(days=30)
        added = client.post("/admin/franking/elections", data={"csrf_token": token, "kind": "special",
                                                              "election_date": election_day.isoformat()})
        assert added.status_code == 303
        page = client.get("/admin/franking").get_data(as_text=True)
        assert election_day.isoformat() in page and 'id="blackout-now"' in page
        bad = client.post("/admin/franking/elections", data={"csrf_token": token, "kind": "special",
                                                            "election_date": "soon"}, follow_redirects=True)
        assert "must be a date" in bad.get_data(as_text=True)

        dry = client.get(f"/constituents/segments/{segment.id}/follow-up").get_data(as_text=True)
        assert 'id="franking-blackout"' in dry and 'id="franking-needs-approval"' in dry
        assert 'id="franking-pieces">4<' in dry
        sent = client.post(f"/constituents/segments/{segment.id}/follow-up",
                           data={"csrf_token": token, "version_id": version.id}, follow_redirects=True)
        assert "blackout" in sent.get_data(as_text=True)
        session.rollback()
        assert session.scalar(select(ApplyRun.id)) is None

        recorded = client.post("/admin/franking/approvals",
                               data={"csrf_token": token, "letter_id": version.letter_id,
                                     "opinion_number": "AO-9",
                                     # The office's today: from midnight UTC until the office's midnight, the
                                     # UTC date is still in the office's future and would be refused.
                                     "opinion_date": franking.Rules.of(settings).today().isoformat()})
        assert recorded.status_code == 303
        assert "AO-9" in client.get("/admin/franking").get_data(as_text=True)
        dry = client.get(f"/constituents/segments/{segment.id}/follow-up").get_data(as_text=True)
        assert 'id="franking-approved"' in dry and 'id="franking-needs-approval"' not in dry
    finally:
        app.extensions["mailroom.db"].dispose()
        app.extensions["mailroom.db_write"].dispose()


def test_a_follow_up_asked_for_again_that_makes_nothing_is_not_refused(session, factory, database, settings):
    version, author = _letter(session, factory, "Water bill passed")
    follow = _follow_up(session, factory, version, author, "99809", 2)
    run = start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    franking.add_election(session, kind="runoff", election_date=TODAY + timedelta(days=5), actor_id=author.id)
    again = plan(session, follow, version_id=version.id, rules=RULES, today=TODAY)
    assert again.letters == 0 and again.franking.kind == franking.SOLICITED  # nothing unsolicited to send
    start_run(session, version.id, message_ids=follow, actor_id=author.id, rules=RULES, today=TODAY)
    # A new person in the segment would get a letter: that is refused in the blackout.
    factory.constituent(email="newcomer@example.org", zip5="99809")
    segment = segments.list_segments(session)[0]
    more = segments.follow_up_messages(session, segment, version.id, "Follow-up: water", actor_id=author.id)
    assert len(more) == 3 and set(follow) < set(more)
    with pytest.raises(PermissionDenied, match="blackout"):
        start_run(session, version.id, message_ids=more, actor_id=author.id, rules=RULES, today=TODAY)
