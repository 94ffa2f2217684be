"""The advisory-opinion packet (outbound/packet.py): the exact email and a PDF with counts and geography,
from the follow-up dry run (supervisor/admin) and `mailroom mail packet RUN_ID DIR`.

Real parts: SQLite/PostgreSQL, WeasyPrint (the PDF, read back with pypdf), dkimpy's verifier, the
send path's own email builder, the Flask app and the CLI.
"""

from __future__ import annotations

import dataclasses
import email
import io
import zipfile
from datetime import date
from email import policy

import dkim
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from constituents import segments
from drafting import letters
from drafting.apply import start_run
from outbound import franking
from outbound.packet import build_packet, geography, run_recipients
from tests.test_deliverability import _keypair

BODY = ("{{ constituent.salutation }}\n\nThe water bill passed the House today. Read it at "
        "https://house.example/water.\n\n{{ office.signature }}")
RULES = franking.Rules(threshold=3, blackout_days=90, timezone="UTC")
TODAY = date(2026, 6, 1)


def _letter(session, factory):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Water bill passed", body=BODY, actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)
    return v, author


def _people(factory, zip_prefix: str):
    made = [factory.constituent(first_name="Ana", last_name="Reyes", email="ana@example.org", zip5=f"{zip_prefix}01",
                                city="juneau", state="AK")]
    made += [factory.constituent(email=f"p{zip_prefix}{i}@example.org", zip5=f"{zip_prefix}{i:02d}", city="Sitka",
                                 state="AK") for i in range(2, 5)]
    made.append(factory.constituent(email=None, zip5="98101", city="Seattle", state="WA", address1="1 Pine St"))
    made.append(factory.constituent(email=None, zip5=None, city=None, state=None))
    return made


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_packet_holds_the_exact_email_and_a_pdf_with_counts_and_geography(session, factory, settings, tmp_path):
    version, _author = _letter(session, factory)
    people = _people(factory, "998")
    key_path, public = _keypair(tmp_path)
    signed = dataclasses.replace(settings, dkim_selector="mr2026", dkim_key_path=key_path,
                                 mail_from="office@house.example", public_url="https://mail.house.example")
    ids = [p.id for p in people]
    packet = build_packet(session, version.id, ids, pieces=5, settings=signed, rules=RULES, today=TODAY)
    sent = email.message_from_bytes(packet.eml, policy=policy.default)
    assert sent["To"] == "ana@example.org" and sent["Subject"]
    assert sent["List-Unsubscribe"].startswith("<https://mail.house.example/u/")
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = sent.get_body(("plain",)).get_content()
    assert "Ana" in text and "https://house.example/water" in text  # rendered for the sample, links as sent
    link = sent["List-Unsubscribe"].strip("<>")
    assert f"To get no more letters like it by email: {link}" in text  # the unsubscribe footer
    assert f'href="{link}"' in sent.get_body(("html",)).get_content()
    assert dkim.verify(packet.eml, dnsfunc=lambda name, timeout=5: public)  # signed exactly as sent

    pdf = _pdf_text(packet.pdf)
    assert "Request for an advisory opinion: Water bill passed" in pdf
    assert "Pieces in this mailing" in pdf and "Allowed without approval" in pdf
    assert "AK" in pdf and "WA" in pdf and "998" in pdf and "Juneau, AK" in pdf and "Seattle, WA" in pdf
    assert packet.filename.startswith("advisory-opinion-letter")

    where = geography(session, ids)
    assert where.people == 6 and dict(where.states) == {"AK": 4, "WA": 1} and where.unknown == 1
    assert dict(where.zip3) == {"998": 4, "981": 1} and where.zip3_other == 0


def test_a_mailing_across_many_zip_areas_lists_the_largest_and_sums_the_rest(session, factory):
    """The PDF stays a few pages however widely a mailing reaches (it was 9 s of WeasyPrint at 50,000 people)."""
    from outbound.packet import ZIP3_ROWS

    ids = [factory.constituent(zip5=f"{100 + i:03d}01", email=None).id for i in range(ZIP3_ROWS + 5)]
    ids += [factory.constituent(zip5="10001", email=None).id]  # ZIP3 100 has two people: listed first
    where = geography(session, ids)
    assert len(where.zip3) == ZIP3_ROWS and where.zip3[0] == ("100", 2)
    assert where.zip3_other == 5 and sum(n for _k, n in where.zip3) + where.zip3_other == where.people


def test_nobody_to_send_to_is_refused(session, factory, settings):
    from correspondence.errors import ValidationFailed

    version, _author = _letter(session, factory)
    with pytest.raises(ValidationFailed, match="nobody"):
        build_packet(session, version.id, [], pieces=0, settings=settings, rules=RULES, today=TODAY)


def test_supervisors_download_the_packet_from_the_dry_run_and_correspondents_cannot(
        client, auth, session, factory):
    version, author = _letter(session, factory)
    _people(factory, "997")
    segment = segments.save_segment(session, "ZIP 997", segments.parse_filter({"zips": "99701,99702,99703,99704"}),
                                    actor_id=author.id)
    session.commit()
    url = f"/constituents/segments/{segment.id}/follow-up/packet?version_id={version.id}"
    auth.login("correspondent")
    assert client.get(url).status_code == 403
    client.post("/logout", data={"csrf_token": auth.csrf("/inbox/")})
    session.rollback()
    auth.login("supervisor")
    got = client.get(url)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    assert "attachment" in got.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(got.data)) as archive:
        assert sorted(archive.namelist()) == ["message.eml", "packet.pdf"]
        assert b"List-Unsubscribe" in archive.read("message.eml")
        assert "Where the recipients live" in _pdf_text(archive.read("packet.pdf"))
    assert client.get(f"/constituents/segments/{segment.id}/follow-up/packet?version_id=999999").status_code == 404


def test_the_mail_packet_command_writes_both_files(session, factory, settings, database, tmp_path, monkeypatch):
    from tests.conftest import cli_env
    from workers.cli import cli

    version, author = _letter(session, factory)
    _people(factory, "996")
    segment = segments.save_segment(session, "ZIP 996", segments.parse_filter({"zips": "99601,99602"}),
                                    actor_id=author.id)
    ids = segments.follow_up_messages(session, segment, version.id, "Follow-up", actor_id=author.id)
    run = start_run(session, version.id, message_ids=ids, actor_id=author.id)
    session.commit()
    assert run_recipients(session, run.id)[2] == 2
    for name, value in cli_env(settings).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "packet"
    result = CliRunner().invoke(cli, ["mail", "packet", str(run.id), str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "message.eml").read_bytes().startswith(b"From:") or b"Subject:" in (out / "message.eml").read_bytes()
    assert "Pieces in this mailing" in _pdf_text((out / "packet.pdf").read_bytes())
    missing = CliRunner().invoke(cli, ["mail", "packet", "999999", str(out)])
    assert missing.exit_code != 0 and "no run 999999" in missing.output
