"""Platform hardening (issue 12 item 15): HSTS, a long SECRET_KEY, and search highlights text cannot forge."""

from __future__ import annotations

import dataclasses
import re

import pytest

from config import Settings
from config.settings import SettingsError
from correspondence.models import Message
from insight import search
from tests.conftest import TEST_SECRET_KEY


def _snippet_of(page: str, message_id: int) -> str:
    match = re.search(rf'<li data-message="{message_id}">.*?<div class="snippet">(.*?)</div></li>', page, re.S)
    assert match, "the message is not among the results"
    return match.group(1)


@pytest.mark.parametrize("forgery", ["\x02", "<mark>"])
def test_message_text_cannot_forge_search_highlights_or_markup(client, auth, session, factory, forgery):
    # The old markers were \x02 / \x03 straight from snippet(): a body holding them became <mark> tags.
    opening, closing = ("\x02", "\x03") if forgery == "\x02" else ("<mark>", "</mark>")
    body = (f"Our {opening}forged{closing} street keeps flooding. {opening}<script>alert(1)</script>{closing} "
            "Please send help before winter.")
    message = factory.message(subject="Flooding", body_text=body)
    session.commit()
    auth.login("correspondent")
    page = client.get("/search/", query_string={"q": "flooding"}).get_data(as_text=True)
    snippet = _snippet_of(page, message.id)
    # Escaped (SQLite's snippet) or dropped as a tag (PostgreSQL's ts_headline): never markup.
    assert "<script" not in snippet and "alert(1)" in snippet
    assert re.findall(r"<mark>(.*?)</mark>", snippet) == ["flooding"]
    assert "\x02" not in snippet and "\x03" not in snippet
    # Filters alone show the start of the body: escaped, never highlighted.
    page = client.get("/search/", query_string={"q": f"from:{message.from_address}"}).get_data(as_text=True)
    snippet = _snippet_of(page, message.id)
    assert "<mark>" not in snippet and "<script>" not in snippet


def test_highlight_marks_only_this_searchs_markers_and_returns_plain_text():
    mine, other = search.Markers.new(), search.Markers.new()
    text = f"a {mine.start}match{mine.stop} b {other.start}forged{other.stop} <b>x</b> {mine.start}cut\x02"
    spans = search.highlight(text, mine)
    assert [s.text for s in spans if s.marked] == ["match"]  # a start without its stop marks nothing
    # Plain data from the domain (no Markup: escaping is the page's job), text kept as written.
    assert all(type(s.text) is str for s in spans)
    joined = "".join(s.text for s in spans)
    assert joined == f"a match b {other.start}forged{other.stop} <b>x</b> cut"  # control characters dropped
    assert search.highlight(None) == () and search.highlight("<i>", None) == (search.Span("<i>"),)


def test_the_search_page_escapes_every_span(app):
    from flask import render_template_string

    snippet = (search.Span("<b>x</b> & "), search.Span("<i>w</i>", marked=True))
    hit = search.MessageHit(message=Message(), snippet=snippet, rank=0.0)
    template = app.jinja_env.get_template("search.html")
    # Only the snippet part of the page: the same loop the template runs, from its own source.
    source = template.environment.loader.get_source(template.environment, "search.html")[0]
    loop = re.search(r'<div class="snippet">(.*?)</div>', source).group(1)
    with app.test_request_context():
        html = render_template_string(loop, hit=hit)
    assert html == "&lt;b&gt;x&lt;/b&gt; &amp; <mark>&lt;i&gt;w&lt;/i&gt;</mark>"


def test_hsts_only_when_cookies_are_secure(app, settings, client):
    from web import create_app

    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = create_app(dataclasses.replace(settings, secure_cookies=True))
    try:
        response = secure.test_client().get("/login", base_url="https://localhost")
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    finally:
        secure.extensions["mailroom.db"].dispose()
        secure.extensions["mailroom.db_write"].dispose()


@pytest.mark.parametrize("key", ["x", "changeme", "a" * 31])
def test_a_short_secret_key_is_refused_by_name(tmp_path, key):
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": key})
    # A hand-edited instance key file is held to the same rule.
    (tmp_path / "secret_key").write_text(key)
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path)})


def test_long_and_generated_secret_keys_are_accepted(tmp_path):
    assert Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": TEST_SECRET_KEY}).secret_key \
        == TEST_SECRET_KEY
    assert len(Settings.from_env({"MAILROOM_INSTANCE_DIR": str(tmp_path / "new")}).secret_key) >= 32
