"""Issue 12, letters and sending: each test performs the outside review's attack and checks it fails safely.

3. letter templates that would hang a worker are refused by an allow-list (save, preview, apply to all);
4. a one-off reply answers its own message only;
5. line breaks never reach a mail header, and a letter that cannot be built fails alone;
15. WeasyPrint fetches no URL and reads no file.
"""

from __future__ import annotations

import io
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from config import Settings
from config.settings import SettingsError
from correspondence.errors import PermissionDenied, ValidationFailed
from correspondence.models import (
    ApplyRun,
    Batch,
    Channel,
    FormLetter,
    LetterVersion,
    Response,
    ResponseState,
    VersionState,
)
from drafting import letters
from drafting.apply import execute_run, office_of, start_run
from drafting.headers import LINE_BREAKS, header_text
from drafting.printing import html_to_pdf, letters_pdf
from drafting.render import Budget, LetterError, context, render, validate
from drafting.send import send_responses

BODY = "{{ constituent.salutation }}\n\nThank you for writing.\n\n{{ office.signature }}"

# (template, what the refusal must say)
HOSTILE = [
    ("{{ 9**(9**8) }}", "line 1: arithmetic is not allowed in letters"),
    ('{{ "x" * 100000000 }}', "arithmetic is not allowed"),
    ("{{ range(10**9)|list }}", "the filter 'list' is not allowed"),
    ("{{ range(10**9) }}", "letters cannot call functions"),
    ("{{ cycler.__init__ }}", "'cycler' is not a merge field"),
    ("{{ cycler.__init__.__globals__.os }}", "'os' is not a merge field"),
    ("{{ lipsum(100000) }}", "letters cannot call functions"),
    ("{{ lipsum }}", "'lipsum' is not a merge field"),
    ("Dear friend,\n\n{% for i in message.subject %}{{ i }}{% endfor %}", "line 3: loops ({% for %}) are not allowed"),
    ("{% macro m() %}x{% endmacro %}", "macros are not allowed"),
    ("{% set x = 'a' %}", "{% set %} is not allowed"),
    ("{% include 'base.html' %}", "includes are not allowed"),
    ("{% import 'x' as y %}", "imports are not allowed"),
    ("{% block b %}{% endblock %}", "{% block %} is not allowed"),
    ("{{ constituent.first_name * 1000000 }}", "arithmetic is not allowed"),
    ("{{ constituent.first_name ~ constituent.first_name }}", "joining with ~ is not allowed"),
    ("{{ constituent.first_name|replace('a', 'aaaaaaaaaa') }}", "the filter 'replace' is not allowed"),
    ("{{ constituent.first_name|center(100000000) }}", "the filter 'center' is not allowed"),
    ("{{ constituent.first_name|default(lipsum(100)) }}", "default takes a text in quotes"),
    ("{{ constituent['first_name'] }}", "without [ ]"),
    ("{{ 1000000 }}", "numbers and other constants are not allowed"),
    ("{{ constituent.first_name is divisibleby 3 }}", "'is divisibleby' tests are not allowed"),
    ("{{ [message.subject] }}", "lists, tuples and dictionaries are not allowed"),
    ("{{ message.subject < 'b' }}", "only == and != comparisons"),
]


def _office():
    return office_of(Settings.from_env({"SECRET_KEY": "x" * 40}, instance_dir="/tmp/unused"))


# --- item 3: templates that could hang a worker -------------------------------------------------------------


@pytest.mark.parametrize(("template", "says"), HOSTILE)
def test_hostile_templates_are_refused_by_the_service(session, factory, template, says):
    author = factory.staffer()
    assert any(says in p for p in validate(template)), validate(template)
    with pytest.raises(ValidationFailed) as refused:
        letters.create_letter(session, title="Attack", body=template, actor_id=author.id)
    assert says in str(refused.value)
    with pytest.raises(ValidationFailed, match="subject: "):
        letters.create_letter(session, title="Attack", body=BODY, subject=template, actor_id=author.id)
    with pytest.raises(LetterError):  # and the renderer refuses it before compiling it
        render(template, context(None, None, _office()))


def test_hostile_templates_are_refused_through_the_editor(client, auth, session):
    me = auth.login("correspondent")
    token = auth.csrf("/letters/new")
    for template, says in HOSTILE:
        page = client.post("/letters/new", data={"csrf_token": token, "title": "Attack", "body": template})
        assert page.status_code == 400, template
        assert says.replace("'", "&#39;").replace("<", "&lt;") in page.get_data(as_text=True), template
    assert session.scalar(select(func.count(LetterVersion.id))) == 0

    # Editing a saved draft is checked the same way.
    made = client.post("/letters/new", data={"csrf_token": token, "title": "Water", "body": BODY})
    assert made.status_code == 303
    session.rollback()
    version = session.scalar(select(LetterVersion).where(LetterVersion.author_id == me.id))
    edited = client.post(f"/letters/versions/{version.id}/edit", follow_redirects=True,
                         data={"csrf_token": token, "subject": "Hi", "body": "Dear friend,\n{{ 9**(9**8) }}"})
    assert "line 2: arithmetic is not allowed in letters" in edited.get_data(as_text=True)
    session.rollback()
    assert session.get(LetterVersion, version.id).body == BODY


def test_the_letters_offices_write_still_render():
    demo = ("{{ constituent.salutation }}\n\nI read every letter from {{ constituent.city or 'our district' }}."
            "{% if constituent.state == 'OH' %} Ohio{% elif constituent.state != '' %} elsewhere{% else %} here"
            "{% endif %}\n{{ constituent.first_name|default('Friend', true)|upper }} {{ message.topic|title }}"
            " {{ today }}\n\n{{ office.signature }}")
    assert validate(demo) == []
    from correspondence.models import Constituent

    text = render(demo, context(None, Constituent(prefix="Ms", last_name="Lopez", state="OH"), _office()))
    assert text.startswith("Dear Ms. Lopez,") and "from our district. Ohio" in text and "\nFRIEND " in text


def _slipped_in(session, factory, body: str, subject: str = "Re: {{ message.subject }}"):
    """An approved letter written straight into the database, as if it predated the allow-list."""
    author = factory.staffer()
    letter = FormLetter(title="Old letter", created_by_id=author.id)
    session.add(letter)
    session.flush()
    version = LetterVersion(letter_id=letter.id, number=1, subject=subject, body=body, author_id=author.id,
                            state=VersionState.APPROVED)
    session.add(version)
    session.flush()
    letter.current_version_id = version.id
    return version, author


def test_a_template_that_slipped_into_the_database_fails_at_preview_and_apply(client, auth, session, factory,
                                                                              database, settings):
    version, author = _slipped_in(session, factory, "Dear friend,\n\n{{ 9**(9**8) }}")
    c = factory.constituent()
    message = factory.message(constituent_id=c.id, from_address="ana@example.org")
    session.commit()

    auth.login("correspondent")
    page = client.get(f"/letters/versions/{version.id}")
    assert page.status_code == 200 and "line 3: arithmetic is not allowed in letters" in page.get_data(as_text=True)

    with pytest.raises(ValidationFailed, match="cannot be sent: line 3: arithmetic"):
        start_run(session, version.id, message_ids=[message.id], actor_id=author.id)
    session.rollback()
    # A run recorded before the check existed: the job fails with the reason and answers nothing.
    run = ApplyRun(version_id=version.id, message_ids=[message.id], created_by_id=author.id, total=1, state="queued")
    session.add(run)
    session.commit()
    with pytest.raises(LetterError, match="arithmetic is not allowed"):
        execute_run(database, run.id, settings)
    session.expire_all()
    failed = session.get(ApplyRun, run.id)
    assert failed.state == "failed" and "arithmetic is not allowed" in failed.error
    assert session.scalar(select(func.count(Response.id))) == 0


def test_apply_to_all_stops_a_letter_over_the_size_budget(session, factory, database, settings):
    version, author = _slipped_in(session, factory, "{{ constituent.salutation }}\n\n" + "x" * 3000)
    c = factory.constituent()
    message = factory.message(constituent_id=c.id, from_address="ana@example.org")
    session.commit()
    run = start_run(session, version.id, message_ids=[message.id], actor_id=author.id)
    session.commit()
    small = Settings.from_env({}, **{**settings.__dict__, "letter_max_kb": 2})
    with pytest.raises(LetterError, match="longer than 2 KB when filled in"):
        execute_run(database, run.id, small)
    session.expire_all()
    assert session.get(ApplyRun, run.id).state == "failed"
    assert session.scalar(select(func.count(Response.id))) == 0


def test_render_budget_caps_size_and_time():
    values = context(None, None, _office())
    with pytest.raises(LetterError, match="longer than 1 KB"):
        render("{{ office.signature }}" + "y" * 2000, values, Budget(max_bytes=1024, seconds=60))
    # Time is checked between output chunks; a zero budget is spent before the first chunk is kept.
    with pytest.raises(LetterError, match="took longer than 0 seconds"):
        render(BODY, values, Budget(max_bytes=1024, seconds=0))
    assert render(BODY, values).startswith("Dear Friend,")


@pytest.mark.parametrize(("name", "value"), [("MAILROOM_LETTER_MAX_KB", "0"), ("MAILROOM_LETTER_MAX_KB", "lots"),
                                             ("MAILROOM_LETTER_RENDER_SECONDS", "-1"),
                                             ("MAILROOM_LETTER_RENDER_SECONDS", "nan")])
def test_render_budget_settings_are_checked(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({"SECRET_KEY": "x" * 40, name: value}, instance_dir="/tmp/unused")
    ok = Settings.from_env({"SECRET_KEY": "x" * 40, "MAILROOM_LETTER_MAX_KB": "64",
                            "MAILROOM_LETTER_RENDER_SECONDS": "0.5"}, instance_dir="/tmp/unused")
    assert (ok.letter_max_kb, ok.letter_render_seconds) == (64, 0.5)


# --- item 4: a one-off reply answers exactly its own message -------------------------------------------------


def _approved_reply(session, factory):
    writer, boss = factory.staffer(), factory.staffer(role="supervisor")
    own = factory.message(constituent_id=factory.constituent().id, from_address="own@example.org")
    others = [factory.message(constituent_id=factory.constituent().id, from_address=f"other{i}@example.org")
              for i in range(2)]
    reply = letters.start_reply(session, own.id, subject="Re: {{ message.subject }}",
                                body="Dear Ana,\n\nAbout your private case: the agency said yes.", actor_id=writer.id)
    letters.approve(session, reply.id, actor_id=boss.id)
    return reply, own, others, writer


def test_the_service_refuses_a_one_off_reply_for_other_messages(session, factory, database, settings):
    reply, own, others, writer = _approved_reply(session, factory)
    batch = Batch(title="Others", template_text="x")
    session.add(batch)
    session.flush()
    for m in others:
        m.batch_id = batch.id
    for ids in ([others[0].id], [own.id, others[0].id], [m.id for m in others]):
        with pytest.raises(PermissionDenied, match=f"one-off reply to message {own.id}"):
            start_run(session, reply.id, message_ids=ids, actor_id=writer.id)
    with pytest.raises(PermissionDenied, match="answers that message only"):
        start_run(session, reply.id, batch_id=batch.id, actor_id=writer.id)
    assert start_run(session, reply.id, message_ids=[own.id], actor_id=writer.id).message_ids == [own.id]

    # A run recorded before the service checked: the job refuses it and sends nothing.
    old = ApplyRun(version_id=reply.id, message_ids=[others[1].id], created_by_id=writer.id, total=1, state="queued")
    session.add(old)
    session.commit()
    with pytest.raises(PermissionDenied, match="answers that message only"):
        execute_run(database, old.id, settings)
    session.expire_all()
    assert session.get(ApplyRun, old.id).state == "failed"
    assert session.scalar(select(Response).where(Response.message_id == others[1].id)) is None


def test_a_one_off_reply_cannot_be_applied_to_other_messages_through_the_app(client, auth, session, factory):
    reply, own, others, _writer = _approved_reply(session, factory)
    batch = Batch(title="Others", template_text="x")
    session.add(batch)
    session.flush()
    others[0].batch_id = batch.id
    session.commit()
    auth.login("correspondent")
    token = auth.csrf("/inbox/")
    selection = client.post("/letters/answer", follow_redirects=True, data={
        "csrf_token": token, "ids": [str(m.id) for m in others], "confirm": "1", "version_id": str(reply.id)})
    assert f"one-off reply to message {own.id}" in selection.get_data(as_text=True)
    whole = client.post(f"/batches/{batch.id}/answer", follow_redirects=True,
                        data={"csrf_token": token, "version_id": str(reply.id)})
    assert f"one-off reply to message {own.id}" in whole.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(func.count(ApplyRun.id))) == 0


# --- item 5: one-line headers; one letter that cannot be built fails alone -----------------------------------


def test_header_text_removes_every_line_break_python_knows():
    breaks = {chr(i) for i in range(sys.maxunicode + 1) if len(f"a{chr(i)}b".splitlines()) > 1}
    assert breaks == set(LINE_BREAKS)
    for ch in breaks:
        cleaned = header_text(f"Water{ch}Bcc: victim@evil.example{ch}{ch}")
        assert cleaned == "Water Bcc: victim@evil.example" and len(cleaned.splitlines()) == 1
    assert header_text("a\x00b\x1f\x7f\tc") == "ab\tc" and header_text(None) == ""


def test_a_chunk_sends_every_letter_that_can_be_built(session, factory, database, settings, smtp_server):
    author, boss = factory.staffer(), factory.staffer(role="supervisor")
    v = letters.create_letter(session, title="Water", body=BODY,
                              subject="{{ constituent.first_name }}, re: {{ message.subject }}", actor_id=author.id)
    letters.submit(session, v.id, actor_id=author.id)
    letters.approve(session, v.id, actor_id=boss.id)

    def write(first_name: str, address: str, subject: str = "Clean water"):
        c = factory.constituent(first_name=first_name, email=None)
        return factory.message(constituent_id=c.id, from_address=address, subject=subject, channel=Channel.EMAIL)

    good = write("Ana", "ana@example.org")
    broken_name = write("Bo\u2028Bcc: victim@evil.example", "bo@example.org", subject="Water\u2029\x85Bcc: x@evil")
    unparseable = write("Cy", "cy@[example.org")  # passes intake's pattern; Python's parser crashes on it
    two_people = write("Di", "di,victim@example.org")  # would become two recipients
    non_ascii = write("Jo", "jośe@example.org")  # fine: this server offers SMTPUTF8
    last = write("Ed", "ed@example.org")
    run = start_run(session, v.id, message_ids=[m.id for m in (good, broken_name, unparseable, two_people,
                                                               non_ascii, last)], actor_id=author.id)
    session.commit()
    queued: list[int] = []
    execute_run(database, run.id, settings, enqueue_email=queued.extend)
    # And a letter that reached the database with a line break in its subject (before this check existed).
    raw = factory.message(from_address="fy@example.org")
    slipped = Response(message_id=raw.id, method="email", subject="Old\r\nBcc: victim@evil.example",
                       body_text="Hello", to_address="fy@example.org", email_message_id="<slipped@x>",
                       state=ResponseState.QUEUED)
    session.add(slipped)
    session.commit()
    queued.append(slipped.id)

    cfg = Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port,
                                   "smtp_security": "none", "smtp_rate_per_second": 0.0,
                                   "mail_from": "Office of\u2028Jane Doe <office@example.gov>"})
    result = send_responses(database, queued, cfg)
    assert (result.sent, result.failed, result.uncertain) == (5, 2, 0)
    got = {m["To"]: m for m in smtp_server.inbox.messages}
    assert set(got) == {"ana@example.org", "bo@example.org", "jośe@example.org", "ed@example.org", "fy@example.org"}
    assert got["bo@example.org"]["Subject"] == "Bo Bcc: victim@evil.example, re: Water Bcc: x@evil"
    assert got["fy@example.org"]["Subject"] == "Old Bcc: victim@evil.example"
    for m in got.values():
        assert m["Bcc"] is None and m["From"] == "Office of Jane Doe <office@example.gov>"

    session.expire_all()
    states = {r.to_address: (r.state, r.last_error or "") for r in session.scalars(select(Response))}
    assert not [s for s, _ in states.values() if s == ResponseState.SENDING]
    assert states["cy@[example.org"][0] == ResponseState.FAILED
    assert "could not be built" in states["cy@[example.org"][1]
    assert states["di,victim@example.org"][0] == ResponseState.FAILED
    assert "could not be built" in states["di,victim@example.org"][1]
    assert states["jośe@example.org"][0] == ResponseState.SENT
    stored = session.scalar(select(Response).where(Response.message_id == broken_name.id))
    assert stored.subject == "Bo Bcc: victim@evil.example, re: Water Bcc: x@evil"  # cleaned when rendered


def test_from_and_reply_to_are_one_address_each(settings):
    from drafting.send import Outgoing, build_email

    letter = Outgoing("ana@example.org", "Hello", "Hello", "<a@x>", None)
    for field in ("mail_from", "reply_to"):
        cfg = Settings.from_env({}, **{**settings.__dict__, field: "Office: x@evil.example, <office@example.gov>"})
        with pytest.raises(ValueError, match="exactly one address"):
            build_email(letter, cfg)
    assert build_email(letter, settings)["To"] == "ana@example.org"


def test_a_letter_the_server_cannot_take_fails_and_the_chunk_goes_on(session, factory, database, settings):
    from aiosmtpd.controller import Controller

    from tests.smtp import Inbox, free_port

    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    server.start()
    try:
        made = []
        for address in ("ana@example.org", "jośe@example.org", "ed@example.org"):
            m = factory.message(from_address=address)
            made.append(Response(message_id=m.id, method="email", subject="Hello", body_text="Hello",
                                 to_address=address, email_message_id=f"<{m.id}@x>", state=ResponseState.QUEUED))
        session.add_all(made)
        session.commit()
        cfg = Settings.from_env({}, **{**settings.__dict__, "smtp_host": "127.0.0.1", "smtp_port": port,
                                       "smtp_security": "none", "smtp_rate_per_second": 0.0})
        result = send_responses(database, [r.id for r in made], cfg)
    finally:
        server.stop()
    # Refused before MAIL FROM, so it did not go out: failed with the reason, not "uncertain".
    assert (result.sent, result.failed, result.uncertain) == (2, 1, 0)
    assert sorted(m["To"] for m in inbox.messages) == ["ana@example.org", "ed@example.org"]
    session.expire_all()
    refused = session.get(Response, made[1].id)
    assert refused.state == ResponseState.FAILED and "SMTPUTF8" in refused.last_error


# --- item 15: WeasyPrint fetches no URL and reads no file ----------------------------------------------------


class _Listener:
    """A tiny HTTP server on loopback that counts the requests it receives."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                body = b"body::before { content: 'FETCHED-OVER-HTTP' }"
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pdf_facts(pdf: bytes) -> tuple[str, int, int]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() for page in reader.pages)
    images = sum(len(page.images) for page in reader.pages)
    return text, images, len(reader.attachments)


def test_printing_fetches_no_url_and_reads_no_file(tmp_path):
    from weasyprint import HTML

    from tests.letters import png_bytes
    from tests.letters import render as page_image

    secret_css = tmp_path / "secret.css"
    secret_css.write_text("body::after { content: 'LOCAL-FILE-LEAKED' }")
    picture = tmp_path / "picture.png"
    picture.write_bytes(png_bytes(page_image("x")))
    with _Listener() as web:
        html = f"""<!doctype html><html><head>
<link rel="stylesheet" href="{web.url}/style.css">
<link rel="stylesheet" href="file://{secret_css}">
<link rel="attachment" href="file:///etc/passwd">
<style>@import url("{web.url}/import.css"); body {{ background: url("{web.url}/bg.png") }}</style>
</head><body><p>Letter text</p>
<img src="{web.url}/pixel.png"><img src="file://{picture}"><img src="ftp://127.0.0.1/x.png">
</body></html>"""
        # The attack works on a plain WeasyPrint call (so the checks below can see it)...
        text, images, attachments = _pdf_facts(HTML(string=html).write_pdf())
        assert web.hits and "LOCAL-FILE-LEAKED" in text and images >= 1 and attachments == 1
        web.hits.clear()
        # ...and not through Mailroom's printing.
        text, images, attachments = _pdf_facts(html_to_pdf(html))
        assert web.hits == []
        assert "Letter text" in text and "LOCAL-FILE-LEAKED" not in text and "FETCHED-OVER-HTTP" not in text
        assert (images, attachments) == (0, 0)

        # A letter whose text holds such markup prints it as text, fetching nothing.
        response = Response(body_text=f'Dear Ana,\n<img src="{web.url}/letter.png"><img src="file://{picture}">',
                            subject="s", method="print", email_message_id="<p@x>")
        text, images, _ = _pdf_facts(letters_pdf([(response, None)], _office(), "November 28, 2026"))
        assert web.hits == [] and images == 0 and "letter.png" in text
