"""Issue 12 item 14: clear-text IMAP and SMTP only to this machine, and "Check connection" that cannot be
used to map which ports are open elsewhere."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import select

from config import Settings
from config.settings import SettingsError
from correspondence import secretbox
from correspondence.errors import ValidationFailed
from correspondence.models import MailboxAccount
from correspondence.network import is_loopback
from correspondence.services.intake_sources import add_mailbox
from intake.imap import ImapAccount, InsecureConnection, accounts_from_json, check_connection
from tests.conftest import TEST_SECRET_KEY

GENERIC = "could not connect or sign in; check host, port and credentials"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.5", False), ("192.168.1.1", False), ("imap.example.org", False), ("localhost.example.org", False),
    ("0.0.0.0", False), ("128.0.0.1", False), ("", False), (None, False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def _mailbox_form(auth, host, security="none", port="143"):
    return {"csrf_token": auth.csrf("/admin/intake"), "name": f"Box {host}", "host": host, "port": port,
            "security": security, "username": "office", "password": "hunter2-secret", "folders": "INBOX"}


def test_admin_cannot_save_a_clear_text_mailbox_on_another_machine(client, auth, session):
    auth.login("admin")
    for host in ("imap.example.org", "10.0.0.5"):
        page = client.post("/admin/intake/mailboxes", data=_mailbox_form(auth, host),
                           follow_redirects=True).get_data(as_text=True)
        assert "Mailbox not added" in page and "allowed only to this machine" in page
    session.rollback()
    assert session.scalars(select(MailboxAccount)).all() == []
    # TLS to another machine, and clear text to this one, are both fine.
    client.post("/admin/intake/mailboxes", data=_mailbox_form(auth, "imap.example.org", "ssl", "993"))
    client.post("/admin/intake/mailboxes", data=_mailbox_form(auth, "::1"))
    session.rollback()
    assert sorted(m.host for m in session.scalars(select(MailboxAccount))) == ["::1", "imap.example.org"]


def test_the_service_refuses_it_too(session):
    with pytest.raises(ValidationFailed, match="allowed only to this machine"):
        add_mailbox(session, secret_key="k", name="x", host="mail.example.org", port=143, security="none",
                    username="u", password="p", folders="INBOX", actor_id=None)


def test_settings_refuse_clear_text_smtp_and_imap_to_another_machine(tmp_path):
    base = {"MAILROOM_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x" * 40}
    with pytest.raises(SettingsError, match="MAILROOM_SMTP_SECURITY=none with MAILROOM_SMTP_HOST='smtp.example.org'"):
        Settings.from_env({**base, "MAILROOM_SMTP_HOST": "smtp.example.org", "MAILROOM_SMTP_SECURITY": "none"})
    assert Settings.from_env({**base, "MAILROOM_SMTP_HOST": "localhost", "MAILROOM_SMTP_SECURITY": "none"})
    assert Settings.from_env({**base, "MAILROOM_SMTP_HOST": "smtp.example.org", "MAILROOM_SMTP_SECURITY": "ssl"})
    plain = '[{"name": "casework", "host": "imap.example.org", "username": "u", "password": "p", "ssl": false}]'
    with pytest.raises(SettingsError, match="MAILROOM_IMAP_ACCOUNTS: account 'casework'"):
        Settings.from_env({**base, "MAILROOM_IMAP_ACCOUNTS": plain})
    with pytest.raises(ValueError, match="allowed only to this machine"):
        accounts_from_json(plain)
    starttls = plain.replace('"ssl": false', '"ssl": false, "starttls": true')
    assert accounts_from_json(starttls)[0].starttls
    assert Settings.from_env({**base, "MAILROOM_IMAP_ACCOUNTS": plain.replace("imap.example.org", "127.0.0.1")})


def test_a_clear_text_row_saved_before_the_rule_never_connects(client, auth, session):
    row = MailboxAccount(name="Old", host="imap.example.org", port=143, security="none", username="u",
                         password_encrypted=secretbox.encrypt(TEST_SECRET_KEY, "p"), folders=["INBOX"])
    session.add(row)
    session.commit()
    with pytest.raises(InsecureConnection):
        check_connection(ImapAccount(name="Old", host="imap.example.org", username="u", password="p", port=143,
                                     ssl=False))
    auth.login("admin")
    page = client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": auth.csrf("/admin/intake")},
                       follow_redirects=True).get_data(as_text=True)
    assert "allowed only to this machine" in page


class _NotImap:
    """A TCP service on loopback that is not IMAP: it answers one line and hangs up (bounded: it stops itself)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(4):
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_check_connection_does_not_tell_an_open_port_from_a_closed_one(client, auth, session, caplog):
    auth.login("admin")
    other = _NotImap()
    try:
        answers = {}
        for label, port in (("closed", _closed_port()), ("open", other.port)):
            client.post("/admin/intake/mailboxes", data={**_mailbox_form(auth, "127.0.0.1", "none", str(port)),
                                                         "name": label})
            session.rollback()
            row = session.scalar(select(MailboxAccount).where(MailboxAccount.name == label))
            page = client.post(f"/admin/intake/mailboxes/{row.id}/check",
                               data={"csrf_token": auth.csrf("/admin/intake")},
                               follow_redirects=True).get_data(as_text=True)
            session.rollback()
            session.expire_all()
            answers[label] = session.get(MailboxAccount, row.id).last_check_result
            assert f"{label}: failed: {GENERIC}" in page
            for leak in ("Connection refused", "Errno", "SSH", "ConnectionRefusedError", "IMAP4.error"):
                assert leak not in page
        assert answers == {"closed": f"failed: {GENERIC}", "open": f"failed: {GENERIC}"}
    finally:
        other.close()
    # The detail is for whoever runs the server, in the log.
    assert any("mailbox check failed" in r.getMessage() for r in caplog.records)
