"""IMAP against a real Dovecot server: N delivered, a poll cut off mid-way, polled again: exactly N."""

import os
import socket
import tempfile
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from correspondence.models import Message
from intake.imap import STORED_FLAG, ImapAccount, accounts_from_json, check_connection, poll_account
from tests.conftest import need
from tests.dovecot import Dovecot, find_dovecot


@pytest.fixture
def dovecot():
    need(find_dovecot() is not None, "dovecot is not installed (apt-get install dovecot-imapd)")
    base = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-", dir="/tmp"))
    os.chmod(base, 0o755)
    server = Dovecot(base).start()
    yield server
    server.stop()


def _account(server, **kw):
    return ImapAccount(name="office", host="127.0.0.1", port=server.port, username=server.user,
                       password=server.password, ssl=False, **kw)


def _deliver(server, n, start=0):
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.login(server.user, server.password)
    for i in range(start, start + n):
        client.append("INBOX", (f"From: Person {i} <person{i}@example.org>\r\nTo: office@house.example\r\n"
                                f"Subject: Letter {i}\r\nMessage-ID: <letter-{i}@example.org>\r\n\r\n"
                                f"Please read letter number {i}.\r\n").encode())
    client.logout()


def _count(session):
    session.rollback()  # a fresh read: the poll committed in its own sessions
    return session.scalar(select(func.count(Message.id)))


def test_cut_connection_mid_poll_then_poll_again_gives_exactly_n(dovecot, database, session):
    n = 30
    _deliver(dovecot, n)
    account = _account(dovecot)
    cuts: list[int] = []

    def cut_after_first_commit(client):
        # The first batch is committed but not yet acknowledged on the server: drop the connection.
        if not cuts:
            cuts.append(1)
            client.socket().shutdown(socket.SHUT_RDWR)

    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises on a dead socket
        poll_account(database, account, max_bytes=1_000_000, batch=10, after_commit=cut_after_first_commit)
    assert _count(session) == 10
    second = poll_account(database, account, max_bytes=1_000_000, batch=10)
    assert second.summary.duplicates == 10 and second.summary.received == n - 10
    assert _count(session) == n
    session.rollback()
    keys = session.scalars(select(Message.idempotency_key)).all()
    assert len(set(keys)) == n
    third = poll_account(database, account, max_bytes=1_000_000)
    assert third.summary.received == 0 and third.folders["INBOX"] == 0

    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(dovecot.user, dovecot.password)
    client.select_folder("INBOX")
    assert len(client.search(["KEYWORD", STORED_FLAG.decode()])) == n
    client.logout()


def test_new_mail_after_a_poll_and_move_to_processed(dovecot, database, session):
    account = _account(dovecot, processed_folder="Processed")
    _deliver(dovecot, 3)
    assert poll_account(database, account, max_bytes=1_000_000).summary.received == 3
    _deliver(dovecot, 2, start=3)
    assert poll_account(database, account, max_bytes=1_000_000).summary.received == 2
    assert _count(session) == 5
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(dovecot.user, dovecot.password)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    assert client.select_folder("Processed")[b"EXISTS"] == 5
    client.logout()


def test_check_connection_and_account_config(dovecot):
    assert "INBOX" in check_connection(_account(dovecot))
    accounts = accounts_from_json('[{"name": "casework", "host": "imap.example.org", "username": "u", '
                                  '"password": "p", "folders": ["INBOX", "Web"]}]')
    assert accounts[0].folders == ("INBOX", "Web") and accounts[0].ssl is True
    with pytest.raises(ValueError, match="needs host"):
        accounts_from_json('[{"name": "x", "username": "u", "password": "p"}]')


def test_admin_adds_mailbox_checks_it_and_the_poll_job_uses_it(dovecot, client, auth, session, job_env):
    from correspondence.models import AuditEvent, MailboxAccount
    from workers.jobs import run_poll_imap

    auth.login("admin")
    form = {"csrf_token": auth.csrf("/admin/intake"), "name": "Office inbox", "host": "127.0.0.1",
            "port": str(dovecot.port), "security": "none", "username": dovecot.user, "password": dovecot.password,
            "folders": "INBOX"}
    assert client.post("/admin/intake/mailboxes", data=form).status_code == 303
    session.rollback()
    row = session.scalar(select(MailboxAccount))
    assert row.name == "Office inbox" and dovecot.password not in row.password_encrypted
    page = client.get("/admin/intake").get_data(as_text=True)
    assert "Office inbox" in page and dovecot.password not in page

    token = auth.csrf("/admin/intake")
    client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": token})
    session.rollback()
    session.expire_all()
    assert session.get(MailboxAccount, row.id).last_check_result.startswith("connected; folders: ")
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "mailbox.check")) is not None

    _deliver(dovecot, 4)
    assert run_poll_imap() == {"Office inbox": 4}
    assert _count(session) == 4
    assert run_poll_imap() == {"Office inbox": 0}

    client.post(f"/admin/intake/mailboxes/{row.id}/active", data={"csrf_token": token, "value": "off"})
    assert run_poll_imap() == {}


def test_check_connection_reports_a_wrong_password(dovecot, client, auth, session):
    from correspondence.models import MailboxAccount

    auth.login("admin")
    token = auth.csrf("/admin/intake")
    client.post("/admin/intake/mailboxes", data={
        "csrf_token": token, "name": "Bad", "host": "127.0.0.1", "port": str(dovecot.port), "security": "none",
        "username": dovecot.user, "password": "not-the-password", "folders": "INBOX, Missing"})
    session.rollback()
    row = session.scalar(select(MailboxAccount))
    page = client.post(f"/admin/intake/mailboxes/{row.id}/check", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "Bad: failed: could not connect or sign in; check host, port and credentials" in page
    assert "LoginError" not in page and "AUTHENTICATIONFAILED" not in page
