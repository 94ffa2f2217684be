"""A private Postfix for tests: its own config and queue folders, listening on a loopback port only.

It relays what it is given to the real destination (a domain that does not exist, in the tests), so
Postfix itself writes the bounce (RFC 3464) and sends it to the envelope sender, which is one of
Mailroom's signed return paths under ``house.test``: a virtual domain whose every mailbox is the one
mbox file the test reads. Nothing of the machine's own Postfix (/etc/postfix, its queue) is used.
"""

from __future__ import annotations

import mailbox
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
BOUNCE_DOMAIN = "house.test"


def available() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not Path(POSTFIX).exists():
        return "postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "starting Postfix needs root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix user does not exist"
    return None


def _master_cf(port: int) -> str:
    """Debian's service table without chroot (no copies of /etc in the queue), smtpd on the test port only."""
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = line.split()
        if not line or line.startswith("#") or line[0].isspace() or len(fields) < 8:
            lines.append(line)
            continue
        if fields[:2] == ["smtp", "inet"]:
            fields[0] = f"127.0.0.1:{port}"
        fields[4] = "n"
        lines.append("  ".join(fields))
    return "\n".join(lines) + "\n"


class PrivatePostfix:
    def __init__(self, port: int) -> None:
        self.port = port
        # Postfix's daemons run as the postfix user and walk this path: not under pytest's private tmp.
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-postfix-"))
        self.root.chmod(0o755)
        self.mail = self.root / "mail"
        self.mailbox = self.mail / "bounces"
        nobody = pwd.getpwnam("nobody")
        self.mail.mkdir()
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        (self.root / "queue").mkdir(mode=0o755)  # postfix makes its subfolders with their owners
        owner = pwd.getpwnam("postfix")
        (self.root / "data").mkdir(mode=0o700)
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        (self.root / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {self.root}/maillog
maillog_file_prefixes = {self.root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.mailroom-test.localdomain
mydomain = mailroom-test.localdomain
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
recipient_delimiter = +
virtual_mailbox_domains = {BOUNCE_DOMAIN}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = static:bounces
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = 1
smtputf8_enable = no
biff = no
maximal_queue_lifetime = 1m
bounce_queue_lifetime = 1m
""")
        (self.root / "master.cf").write_text(_master_cf(port))

    def _postfix(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([POSTFIX, "-c", str(self.root), *args], capture_output=True, text=True, timeout=60,
                              check=False)

    def start(self) -> PrivatePostfix:
        done = self._postfix("start")
        if done.returncode != 0:
            raise RuntimeError(f"postfix would not start: {done.stdout}{done.stderr}{self.log()}")
        return self

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def wait_for_bounces(self, count: int, timeout: float = 90) -> list[bytes]:
        """The raw messages delivered to the bounce mailbox, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mailbox.exists():
                box = mailbox.mbox(str(self.mailbox))
                found = [box.get_bytes(key) for key in box.iterkeys()]
                if len(found) >= count:
                    return found
            time.sleep(0.5)
        raise AssertionError(f"no bounce reached {self.mailbox} in {timeout}s; Postfix's log:\n{self.log()[-4000:]}")
