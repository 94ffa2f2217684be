"""Every page of the site, for every role: the list the layout and accessibility tests walk.

The list is built from the app's url_map and each view's access rule (web/access.py), so a new page is
visited without anyone remembering to add it; a new GET route that is not a page (a file, JSON) must be
named in NOT_PAGES, and a new id in a URL must be given a seeded object in `seed_office`, or the tests fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from correspondence.db import Database
from correspondence.models import Role
from web.access import API_TOKEN, PUBLIC, SIGNED_IN

# GET routes that answer with something other than an HTML page (files, JSON, images, a health check).
NOT_PAGES = {
    "static", "auth.health", "inbox.export_csv", "cases.export_csv", "cases.document", "cases.release_pdf",
    "constituents.export_csv", "constituents.count_json", "constituents.import_bad_rows",
    "constituents.import_progress", "dashboard.analytics_csv", "letters.run_pdf", "letters.run_csv",
    "letters.run_progress", "reports.download", "reports.progress", "messages.page_image",
    "constituents.follow_up_packet", "admin.franking_quarterly_csv",
    "admin_data.export_progress", "admin.mailbox_oauth_callback",
    "api.openapi",
}
# Query strings that make a page show what it exists to show.
QUERIES = {"letters.answer_selection": "?status=new", "search.index": "?q=water",
           "cases.new": "?message_id={message_id}",
           "letters.preview": "?version_id={version_id}&batch_id={batch_id}"}
# A staffer who signed in with a password only is sent from the second-factor page to sign in again.
SIGNED_OUT_ONLY = {"auth.second_factor"}

# A long unbroken line (a pasted URL) and a very long title must wrap, never widen the page.
LONG_WORD = "https://example.org/" + "averyveryverylongpathsegment" * 30
LONG_TITLE = ("Keep public lands public " * 120).strip()


@dataclass(frozen=True)
class Page:
    endpoint: str
    path: str


def _kind(app: Flask, endpoint: str) -> object:
    return getattr(app.view_functions[endpoint], "_mailroom_access", None)


def pages_for(app: Flask, role: Role | None, ids: dict[str, int | str]) -> list[Page]:
    """The pages `role` may open (None: a visitor who is not signed in), with ids filled from `ids`."""
    found = []
    with app.test_request_context():
        from flask import url_for

        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
                continue
            access = _kind(app, rule.endpoint)
            if access == API_TOKEN:
                continue
            if role is None:
                if access != PUBLIC:
                    continue
            elif access == PUBLIC:
                if rule.endpoint in SIGNED_OUT_ONLY or rule.endpoint.startswith("cases.help"):
                    continue  # the public help form is checked once, signed out
            elif access != SIGNED_IN and role not in access:  # type: ignore[operator]
                continue
            # An id for one endpoint ("reports.view:run_id") wins over the shared one ("run_id").
            values: dict[str, Any] = {a: ids.get(f"{rule.endpoint}:{a}", ids.get(a)) for a in rule.arguments}
            missing = [a for a, v in values.items() if v is None]
            assert not missing, f"{rule.endpoint} needs a seeded {missing} in tests/site_pages.py"
            path = url_for(rule.endpoint, **values)
            found.append(Page(rule.endpoint, path + QUERIES.get(rule.endpoint, "").format(**ids)))
    return found


def seed_office(db: Database, instance_dir: Path, settings) -> dict[str, int | str]:
    """A small demo office plus one of every object a page shows: returns the ids a URL needs."""
    from casework import cases
    from constituents import imports, segments
    from correspondence.models import Batch, CaseCategory, Constituent, LetterVersion, Message, Staffer
    from demo.office import build_demo_office
    from drafting import apply, letters
    from insight import reports

    build_demo_office(db, instance_dir, messages=240, constituents=80, seed=7)
    with db.unit_of_work() as s:
        writer = s.scalar(select(Staffer).where(Staffer.email == "devon.carter@mailroom.local"))
        boss = s.scalar(select(Staffer).where(Staffer.email == "maria.alvarez@mailroom.local"))
        people = list(s.scalars(select(Constituent).order_by(Constituent.id).limit(2)))
        person = people[0]
        person.address1 = LONG_WORD[:200]
        batch = s.scalar(select(Batch).order_by(Batch.member_count.desc()))
        _near_miss(s, batch)  # the batch page shows "Possibly part of this campaign" with its evidence
        version = s.scalar(select(LetterVersion).order_by(LetterVersion.id))
        if version.state.value != "approved":
            letters.approve(s, version.id, actor_id=boss.id)
        message = s.scalar(select(Message).where(Message.constituent_id.is_not(None)).order_by(Message.id))
        message.subject = LONG_TITLE[:500]  # the longest subject the record holds
        message.body_text = f"Please read {LONG_WORD} before the vote.\n\n" + message.body_text
        category = s.scalar(select(CaseCategory).order_by(CaseCategory.id))
        case = cases.open_case(s, constituent_id=person.id, category_id=category.id, subject=LONG_TITLE[:300],
                               actor_id=writer.id, source_message_id=message.id)
        cases.add_note(s, case.id, "Called the agency. " + LONG_WORD, actor_id=boss.id)
        cases.add_note(s, case.id, "x" * 10000, actor_id=boss.id)  # the longest note, one unbroken word
        flt = segments.parse_filter({"zips": person.zip5 or ""})
        segment = segments.save_segment(s, "Writers from " + (person.zip5 or "the district"), flt, actor_id=boss.id)
        today = date.today()
        report = reports.start_report(s, {"start": (today - timedelta(days=90)).isoformat(),
                                          "end": today.isoformat(), "segment_id": None}, actor_id=boss.id)
        upload = imports.upload(s, b"first_name,last_name,email,zip\nAna,Lopez,ana@example.org,43215\n"
                                   b"Bo,Ng,not-an-email,4321\n", "people.csv", actor_id=boss.id)
        run = apply.start_run(s, version.id, actor_id=writer.id, batch_id=batch.id)
        from outbound import franking

        # The elections page shows an election (its blackout window) and a recorded approval.
        franking.add_election(s, kind="general", election_date=today + timedelta(days=400), note=LONG_TITLE[:200],
                              actor_id=boss.id)
        franking.record_approval(s, version.letter_id, opinion_number="AO-" + LONG_WORD[:90], opinion_date=today,
                                 actor_id=boss.id, rules=franking.Rules(), today=today)
        from drafting import paragraphs

        paragraph_id = paragraphs.propose_paragraph(s, title="Thanks " + LONG_WORD[:200], actor_id=writer.id,
                                                    text="Thank you for writing. " + LONG_WORD).paragraph_id
        from outbound import newsletters, subscriptions

        # The newsletters page, a public sign-up, its confirmation link and a sent newsletter's web version.
        chosen = subscriptions.create_list(s, "District update " + LONG_TITLE[:150], description=LONG_WORD[:900],
                                           actor_id=boss.id)
        subscriptions.subscribe(s, chosen.id, "ana.reader@example.org", source=subscriptions.SubscriptionSource.STAFF,
                                legal_basis="asked at the town hall " + LONG_WORD[:300], actor_id=boss.id,
                                constituent_id=person.id)
        pending = subscriptions.sign_up(s, chosen.id, "bo.reader@example.org", where="/subscribe")
        sent = newsletters.start_newsletter(s, version.id, newsletters.Audience(list_id=chosen.id), actor_id=boss.id,
                                            secret_key=settings.secret_key, office=apply.office_of(settings),
                                            budget=apply.budget_of(settings)).value
        newsletters.prepare(s, sent.id)

        from archive import holds, retention

        # A legal hold with a long reason (constituent, erase pages) and a dry run of the retention rules.
        holds.place_hold(s, "constituent", person.id, actor_id=boss.id, reason="Records request " + LONG_WORD[:300])
        retention.set_rule(s, "campaign_mail", actor_id=None, years=6, active=True)
        dry_run_id = retention.start_run(s, actor_id=None, dry_run=True).value.id

        from correspondence.services import webhooks

        # A webhook with a long name and one delivery waiting (the webhooks and deliveries pages).
        hook, _secret = webhooks.create_subscription(s, actor_id=boss.id, name=LONG_TITLE[:120],
                                                     url="http://127.0.0.1:9/hook", events=["case.opened"],
                                                     secret_key=settings.secret_key)
        webhooks.send_test_event(s, hook.id, actor_id=boss.id)
        report_id, run_id = report.id, run.id
        ids: dict[str, int | str] = {
            "message_id": message.id, "batch_id": batch.id, "letter_id": version.letter_id,
            "version_id": version.id, "case_id": case.id, "constituent_id": person.id,
            "keep_id": people[0].id, "other_id": people[1].id, "segment_id": segment.id,
            "run_id": run_id, "import_id": upload.id, "token": "not-a-real-link", "number": 1,
            "reports.view:run_id": report_id, "paragraph_id": paragraph_id, "list_id": chosen.id,
            "subscriptions.web_version:token": sent.web_token,
            "subscriptions.confirm:token": subscriptions.confirm_token(pending.id, secret_key=settings.secret_key),
            "privacy.retention_run_view:run_id": dry_run_id, "subscription_id": hook.id}
    reports.execute(db, report_id)
    retention.execute(db, dry_run_id)
    apply.execute_run(db, run_id, settings)  # no email queue, no print file: the run page still shows it
    from correspondence.models import Response
    from outbound.tokens import unsubscribe_token

    with db.unit_of_work() as s:  # a real one-click unsubscribe link of a letter the run made
        emailed = s.scalar(select(Response.id).where(Response.to_address.is_not(None)).order_by(Response.id))
    assert emailed is not None, "the seeded run made no email letter to unsubscribe from"
    ids["unsubscribe.one_click:token"] = unsubscribe_token(emailed, secret_key=settings.secret_key)
    from archive import export_runs

    with db.unit_of_work() as s:  # a finished "Export all data": its page offers the download
        export_id = export_runs.queue_export(s, actor_id=boss.id).value.id
    export_runs.execute_export(db, export_id, settings.instance_dir / "exports")
    ids["admin_data.export_view:run_id"] = export_id
    return ids


def _near_miss(session, batch) -> None:
    """A letter holding half of the batch's template and a long unbroken word of its own, proposed for it."""
    from batching.batches import propose
    from batching.normalise import sentences
    from correspondence.models import Channel, Message, utcnow

    half = " ".join(sentences(batch.template_text)[:2])
    near = Message(idempotency_key="seed:near-miss", channel=Channel.EMAIL, received_at=utcnow(),
                   processed_at=utcnow(), subject="A letter that nearly matches", from_name=LONG_TITLE[:200],
                   from_address="near.miss@example.org",
                   body_text=f"Dear Representative,\n\n{half} My own story: {LONG_WORD}\n\nSincerely,\nNear Miss")
    session.add(near)
    session.flush()
    propose(session, near, [(batch.id, 0.45)])


def sign_in(context, base: str, email: str, password: str):
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main [type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, f"{email} could not sign in"
    return page
