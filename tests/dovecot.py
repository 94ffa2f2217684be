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
auth_mechanisms = {mechanisms}
mail_location = maildir:{base}/mail/%u
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
{passdb}
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


PASSWORD_PASSDB = """passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}"""

# OAuth2 mode: Dovecot checks bearer tokens itself, offline, against a local key (introspection_mode =
# local). HS256 keys are stored base64-encoded at <prefix>/<azp>/<alg>/<kid>; tokens without azp/kid use
# "default". `client_id` makes Dovecot refuse a token whose `aud` does not contain it.
OAUTH2_PASSDB = """passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/dovecot-oauth2.conf.ext
}}"""

OAUTH2_CONF = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={base}/keys/
username_attribute = {username_attribute}
issuers = {issuer}
client_id = {audience}
"""


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    def __init__(self, base: Path, user: str = "office", password: str = "office-secret", *,
                 oauth2: bool = False, key: bytes = b"", issuer: str = "", audience: str = "") -> None:
        self.base = base
        self.user = user
        self.password = password
        # With oauth2=True the server takes only OAUTHBEARER / XOAUTH2 with an HS256 JWT signed by `key`,
        # issued by `issuer` for `audience`, whose `sub` is the mailbox name (see tests/dovecot_oauth.py).
        self.oauth2 = oauth2
        self.key = key
        self.issuer = issuer
        self.audience = audience
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
        if self.oauth2:
            import base64

            passdb = OAUTH2_PASSDB.format(base=self.base)
            # Refusals are what the tests check: say why in the log, and answer them without the delay.
            mechanisms = "oauthbearer xoauth2\nauth_verbose = yes\nauth_failure_delay = 0\n" \
                         "login_trusted_networks = 127.0.0.1/32"
            (self.base / "dovecot-oauth2.conf.ext").write_text(OAUTH2_CONF.format(
                base=self.base, username_attribute="sub", issuer=self.issuer, audience=self.audience))
            key_dir = self.base / "keys" / "default" / "HS256"
            key_dir.mkdir(parents=True, exist_ok=True)
            (key_dir / "default").write_text(base64.b64encode(self.key).decode())
            os.chmod(self.base / "keys", 0o755)
        else:
            passdb = PASSWORD_PASSDB.format(base=self.base)
            mechanisms = "plain login"
        config.write_text(CONFIG.format(base=self.base, port=self.port, uid=mail_uid, gid=mail_gid,
                                        user=internal, group=group if internal == me else "dovecot",
                                        login_user=login_user, passdb=passdb, mechanisms=mechanisms))
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
