"""Mass communications per quarter (outbound/quarterly.py): counts per letter family, pieces by email and
by post, costs from settings, calendar quarters and the legislative year; the page and the CSV.

Real parts: SQLite/PostgreSQL, the apply-to-all run making the letters, the Flask app.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update

from config import Settings
from config.settings import SettingsError
from constituents import segments
from correspondence.models import DeliveryMethod, Response, ResponseState
from drafting import letters
from drafting.apply import execute_run, start_run
from outbound.quarterly import Costs, quarterly_report, quarters, report_csv

BODY = ("{{ constituent.salutation }}\n\nThe water bill passed the House today. It protects the river, funds "
        "new treatment plants and keeps rates low for families across the district.\n\n{{ office.signature }}")
OTHER = ("{{ constituent.salutation }}\n\nOur office hours change in the spring: we open at eight on Mondays "
         "and the mobile office visits the county fair.\n\n{{ office.signature }}")
COSTS = Costs(email=Decimal("0"), printed=Decimal("0.78"))


def _letter(session, factory, title: str, body: str):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title=title, body=body, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _mailing(session, factory, database, settings, version, author, zip5: str, email: int, post: int,
             when: datetime) -> None:
    """A follow-up of ``version`` to ``email`` people by email and ``post`` by post, gone out on ``when``."""
    for i in range(email):
        factory.constituent(email=f"q{zip5}-{i}@example.org", zip5=zip5)
    for _i in range(post):
        factory.constituent(email=None, zip5=zip5, address1="1 Main St")
    segment = segments.save_segment(session, f"Q {zip5}", segments.parse_filter({"zips": zip5}), actor_id=author.id)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    session.execute(update(Response).where(Response.run_id == run.id, Response.method == DeliveryMethod.EMAIL)
                    .values(state=ResponseState.SENT, sent_at=when))
    session.execute(update(Response).where(Response.run_id == run.id, Response.method == DeliveryMethod.PRINT)
                    .values(created_at=when))
    session.commit()


def test_quarters_are_the_calendar_quarters():
    assert [(a.isoformat(), b.isoformat()) for _l, a, b in quarters(2026)] == [
        ("2026-01-01", "2026-03-31"), ("2026-04-01", "2026-06-30"), ("2026-07-01", "2026-09-30"),
        ("2026-10-01", "2026-12-31")]


def test_the_report_counts_families_pieces_and_costs_per_quarter_and_legislative_year(
        session, factory, database, settings):
    water, author = _letter(session, factory, "Water bill passed", BODY)
    near, _a = _letter(session, factory, "Water bill passed (again)", BODY.replace("today", "this week"))
    hours, _b = _letter(session, factory, "Office hours", OTHER)
    _mailing(session, factory, database, settings, water, author, "99871", 3, 2, datetime(2026, 2, 10, tzinfo=UTC))
    _mailing(session, factory, database, settings, near, author, "99872", 1, 0, datetime(2026, 3, 1, tzinfo=UTC))
    _mailing(session, factory, database, settings, hours, author, "99873", 2, 1, datetime(2026, 5, 5, tzinfo=UTC))
    # An answer to a person's own letter is not mass mail.
    writer = factory.constituent(email="writer@example.org", zip5="99874")
    own = factory.message(constituent_id=writer.id, from_address="writer@example.org")
    run = start_run(session, water.id, message_ids=[own.id], actor_id=author.id)
    session.commit()
    execute_run(database, run.id, settings)
    session.rollback()
    session.execute(update(Response).where(Response.run_id == run.id).values(
        state=ResponseState.SENT, sent_at=datetime(2026, 2, 11, tzinfo=UTC)))
    session.commit()

    q1, q2, q3, q4, year = quarterly_report(session, 2026, costs=COSTS, timezone="UTC")
    assert q1.pieces == 6 and len(q1.lines) == 1  # the two water letters are one family
    family = q1.lines[0]
    assert family.family == "Water bill passed" and family.letters == ["Water bill passed", "Water bill passed (again)"]
    assert (family.email, family.printed, family.cost) == (4, 2, Decimal("1.56"))
    assert q2.pieces == 3 and q2.lines[0].family == "Office hours" and q2.cost == Decimal("0.78")
    assert q3.pieces == q4.pieces == 0
    assert year.label.startswith("Legislative year January 3, 2026") and year.pieces == 9
    assert year.cost == Decimal("2.34")

    rows = list(csv.DictReader(io.StringIO(report_csv([q1, q2, q3, q4, year]))))
    assert [r["pieces"] for r in rows] == ["6", "3", "0", "0", "6", "3"]
    assert rows[0]["cost_usd"] == "1.56" and rows[2]["letter_family"] == "(none)"


def test_the_page_and_the_csv_for_supervisors_not_correspondents(client, auth, session, factory, database, settings):
    water, author = _letter(session, factory, "=Water bill passed", BODY)
    _mailing(session, factory, database, settings, water, author, "99875", 2, 1, datetime(2026, 8, 1, tzinfo=UTC))
    auth.login("correspondent")
    assert client.get("/admin/franking/quarterly?year=2026").status_code == 403
    client.post("/logout", data={"csrf_token": auth.csrf("/inbox/")})
    session.rollback()
    auth.login("supervisor")
    page = client.get("/admin/franking/quarterly?year=2026").get_data(as_text=True)
    assert "Q3 2026" in page and "=Water bill passed" in page and "$0.78" in page
    assert 'class="period-pieces">3<' in page
    got = client.get("/admin/franking/quarterly.csv?year=2026")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert "attachment" in got.headers["Content-Disposition"]
    assert "'=Water bill passed" in got.get_data(as_text=True)  # not a formula in a spreadsheet
    assert client.get("/admin/franking/quarterly?year=soon").status_code == 400
    assert client.get("/admin/franking/quarterly?year=1800").status_code == 400


def test_costs_come_from_settings_and_are_checked(tmp_path, settings):
    env = {"MAILROOM_INSTANCE_DIR": str(tmp_path)}
    base = Settings.from_env(env)
    assert Costs.of(base) == Costs(email=Decimal("0"), printed=Decimal("0.78"))
    chosen = Settings.from_env({**env, "MAILROOM_MASS_MAIL_COST_PRINT": "$1.10",
                                "MAILROOM_MASS_MAIL_COST_EMAIL": "0.002"})
    assert Costs.of(chosen) == Costs(email=Decimal("0.002"), printed=Decimal("1.10"))
    for bad in ("cheap", "-1", "NaN"):
        with pytest.raises(SettingsError, match="MAILROOM_MASS_MAIL_COST_PRINT"):
            Settings.from_env({**env, "MAILROOM_MASS_MAIL_COST_PRINT": bad})
    assert dataclasses.replace(settings, mass_mail_cost_print=Decimal("2")).mass_mail_cost_print == Decimal("2")
