"""A real Dovecot IMAP server on loopback for tests, configured from scratch in a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
ssl = no
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{base}/mail/%u
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
"""


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    def __init__(self, base: Path, user: str = "office", password: str = "office-secret") -> None:
        self.base = base
        self.user = user
        self.password = password
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Dovecot:
        import grp
        import pwd

        binary = find_dovecot()
        assert binary, "dovecot is not installed"
        for sub in ("run", "state", "mail", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        me = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        # Dovecot will not store mail as root: as root, the mailbox belongs to the dovecot user.
        mail_uid, mail_gid = os.getuid(), os.getgid()
        if os.getuid() == 0:
            owner = pwd.getpwnam("dovecot" if _user_exists("dovecot") else "nobody")
            mail_uid, mail_gid = owner.pw_uid, owner.pw_gid
            for sub in ("mail", "home"):
                os.chown(self.base / sub, mail_uid, mail_gid)
        login_user = "dovenull" if os.getuid() == 0 and _user_exists("dovenull") else me
        internal = "dovecot" if os.getuid() == 0 and _user_exists("dovecot") else me
        config = self.base / "dovecot.conf"
        config.write_text(CONFIG.format(base=self.base, port=self.port, uid=mail_uid, gid=mail_gid,
                                        user=internal, group=group if internal == me else "dovecot",
                                        login_user=login_user))
        (self.base / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        os.chmod(self.base, 0o755)
        self.proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise RuntimeError(f"dovecot exited: {out} {self.log()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen: {self.log()}")

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
