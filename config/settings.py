"""One typed, frozen settings object built from the environment; nothing connects here."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from correspondence.network import plain_text_refused
from correspondence.services.mailbox_oauth import Provider, microsoft_endpoints

_TRUE = {"1", "true", "yes", "on"}
# Sessions, CSRF tokens and stored mailbox passwords are keyed by SECRET_KEY: a short one can be guessed.
SECRET_KEY_MIN_LENGTH = 32
# Rate limits on the public endpoints (web/ratelimit.py), per client address (per token on the API) and
# for everyone together. MAILROOM_RATE_LIMITS overrides any of them: "help.client=5/minute login.global=off".
DEFAULT_RATE_LIMITS = (
    ("help.client", "10/minute"), ("help.global", "300/minute"),
    ("login.client", "20/minute"), ("login.global", "600/minute"),
    # The intake API is fed by advocacy vendors, who deliver a campaign in bursts (200 posts a second for a
    # minute is usual): a token is a known sender, so its budget is set above such a burst and below what
    # would fill the disk; 600/minute turned most of a burst away with 429s (bench/load.py).
    ("api.token", "15000/minute"), ("api.global", "30000/minute"),
    ("api.client", "15000/minute"),
    ("public.client", "120/minute"), ("public.global", "6000/minute"),
    # One-click unsubscribe (RFC 8058) has its own budget: a big mail provider POSTs for many of its users
    # from a few addresses, and those POSTs must neither be refused for sign-in traffic nor spend its budget.
    ("unsubscribe.client", "600/minute"), ("unsubscribe.global", "6000/minute"),
    # A newsletter sign-up (POST /subscribe/<list>) makes Mailroom email whatever address was typed: it has
    # a small budget per client, and one address gets only a few confirmation emails a day however often it
    # is typed in (the page answers the same either way).
    ("signup.client", "20/hour"), ("signup.global", "1000/hour"), ("signup.address", "3/day"),
)


class SettingsError(ValueError):
    """A setting in the environment has a value Mailroom cannot use."""


def _secret_key(instance_dir: Path) -> str:
    """Read the instance's secret key, creating it once with mode 0600."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    # O_EXCL so two processes starting together cannot write different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@dataclass(frozen=True)
class Settings:
    """Everything Mailroom reads from its environment."""

    instance_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    # A PostgreSQL streaming replica for the pages that only read and may show data a moment old (the
    # dashboard, analytics, search, CSV exports); None: every page reads the primary (DATABASE_URL).
    database_read_url: str | None = None
    office_name: str = "Office of Representative Jane Doe"
    timezone: str = "America/New_York"
    bind: str = "127.0.0.1:5000"
    secure_cookies: bool = False
    login_attempts: int = 5
    login_window_minutes: int = 15
    # Failed sign-ins from one client address (any accounts) within the window before it is refused.
    login_address_attempts: int = 20
    # An account's back-off after login_attempts failures doubles per failure up to this many minutes.
    login_backoff_max_minutes: int = 15
    # Roles that must sign in with a second factor (TOTP or a security key) as well as a password.
    require_2fa: frozenset[str] = frozenset({"admin", "supervisor"})
    page_size: int = 50
    sweep_after_minutes: int = 10
    max_message_bytes: int = 25 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024
    # The office's ZIP codes (5-digit) and ZIP+4 ranges decide in/out of district; empty = unknown.
    district_zips: frozenset[str] = frozenset()
    # CWC MemberOffice codes this office accepts (e.g. "HOH03"); empty accepts any office.
    cwc_offices: frozenset[str] = frozenset()
    # IMAP mailboxes to poll: a JSON list of {name, host, port, username, password, ssl, folders, ...}.
    imap_accounts_json: str = ""
    testing: bool = False
    # Outbound email (drafting): the SMTP server letters are sent through, and who they come from.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: str = "starttls"  # "starttls", "ssl" or "none" (loopback only)
    smtp_username: str = ""
    smtp_password: str = ""
    # Sign in to the SMTP server with OAuth2 (AUTH XOAUTH2) as this mailbox, connected in the intake page or
    # with `mailroom mailbox connect`, instead of with MAILROOM_SMTP_PASSWORD (Microsoft 365, Google).
    smtp_oauth_mailbox: str = ""
    mail_from: str = "office@example.gov"
    reply_to: str = ""
    smtp_rate_per_second: float = 20.0
    # Deliverability (outbound/): the envelope sender bounces come back to, as bounces+r<id>-<hmac>@domain
    # (default: bounces@ the MAILROOM_MAIL_FROM domain); soft bounces (4.x.x) before an address is invalid.
    bounce_address: str = ""
    soft_bounce_limit: int = 3
    # The mass-communication (franking) guard (outbound/franking.py): unsolicited substantially identical
    # pieces per letter family and legislative year allowed without a recorded approval, and the days
    # before an election entered on the calendar in which none may start (House: 90; a Senate office: 60).
    mass_mail_threshold: int = 499
    blackout_days: int = 90
    # The scheduled clustering (every 15 minutes) groups unbatched letters received in the last this many
    # days (0: all of them). A campaign's copies arrive over weeks; re-clustering years of organic mail that
    # never formed a batch cost a worker minutes each time (bench/load.py at 200,000 messages).
    recluster_days: int = 90
    # What one mass-mail piece costs, in dollars, for the quarterly report (outbound/quarterly.py): email
    # nothing; a printed letter its postage and printing (a first-class stamp is $0.78 in 2025).
    mass_mail_cost_email: Decimal = Decimal("0")
    mass_mail_cost_print: Decimal = Decimal("0.78")
    # DKIM signing (dkimpy) when a key file is given: the selector's public key is in DNS at
    # <selector>._domainkey.<domain> (domain default: the MAILROOM_MAIL_FROM domain).
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_path: Path | None = None
    # One-off replies to a single message go through a supervisor's approval (off: the writer sends).
    one_off_approval: bool = True
    # Office policy: answer a person on the same topic or campaign at most once per this many days (0 = off).
    frequent_writer_days: int = 0
    # A writer may approve their own letter or reply when it is built only from approved standard
    # paragraphs (drafting.paragraphs); off: every version waits for a supervisor.
    approved_paragraphs_skip_review: bool = False
    # Topic suggestions at or above this confidence are applied automatically (0 = never).
    autocode_confidence: float = 0.95
    # How long a web process shows the same backlog count before counting again (0 = every time).
    dashboard_cache_seconds: int = 30
    # What letters say about the office.
    member_name: str = "Representative Jane Doe"
    signature: str = "Sincerely,\n\nJane Doe\nMember of Congress"
    letterhead: str = "Office of Representative Jane Doe · 1 Capitol Street · Washington, DC 20515"
    # The budget of one filled-in letter (preview, apply to all, print): output size and wall-clock time.
    letter_max_kb: int = 256
    letter_render_seconds: float = 5.0
    # Where raw input and attachments are kept as files (default: the instance folder's blobs/).
    blob_dir_override: Path | None = None
    # What one scanned upload may cost before it is quarantined with the reason (intake.scans.ScanLimits).
    scan_max_pages: int = 50
    scan_max_page_points: int = 2000
    scan_max_pixels: int = 50_000_000
    scan_ocr_seconds: int = 90
    # The address the public reaches Mailroom at, for links in emails (default: http://<bind>).
    public_url: str = ""
    # The public help form refuses a submission sent sooner than this after the form was served (bots).
    help_min_fill_seconds: int = 3
    # (rule, limit) pairs for web/ratelimit.py; a limit is `limits` syntax ("10/minute;100/hour") or "off".
    rate_limits: tuple[tuple[str, str], ...] = DEFAULT_RATE_LIMITS
    # `mailroom backup` and the daily backup job: where snapshots go (None: no scheduled backup) and how many
    # daily and weekly snapshots to keep.
    backup_dir: Path | None = None
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4
    # The webhook outbox: a delivered notice is deleted this many days after it was delivered, and one given
    # up on this many days after it failed (the daily "prune-webhooks" job; each subscription keeps its latest).
    webhook_keep_delivered_days: int = 30
    webhook_keep_failed_days: int = 90
    # The office's app registrations for connecting mailboxes with OAuth2, one per provider that has
    # MAILROOM_OAUTH_<MICROSOFT|GOOGLE|GENERIC>_CLIENT_ID set (correspondence.services.mailbox_oauth).
    oauth_apps: tuple[Provider, ...] = ()
    # How many reverse proxies in front of Mailroom set X-Forwarded-For/-Proto (0: trust no such header).
    trusted_proxies: int = 0

    def __post_init__(self) -> None:
        # Clear-text mail connections only to this machine (a local relay or a test server): anywhere
        # else the password and every letter would cross the network readable.
        if self.smtp_security == "none" and self.smtp_host and (refused := plain_text_refused("SMTP", self.smtp_host)):
            raise SettingsError(f"MAILROOM_SMTP_SECURITY=none with MAILROOM_SMTP_HOST={self.smtp_host!r}: {refused}")
        if (refused := _imap_plain_text(self.imap_accounts_json)) is not None:
            raise SettingsError(f"MAILROOM_IMAP_ACCOUNTS: {refused}")
        if self.bounce_address and (self.bounce_address.count("@") != 1 or "+" in self.bounce_address
                                    or any(c.isspace() or c in "<>,;:" for c in self.bounce_address)):
            raise SettingsError(f"MAILROOM_BOUNCE_ADDRESS={self.bounce_address!r} must be one plain address "
                                "without '+' (Mailroom adds +r<id>-<check> to it), e.g. bounces@example.gov")
        if self.dkim_key_path is not None and not self.dkim_key_path.is_file():
            raise SettingsError(f"MAILROOM_DKIM_KEY={str(self.dkim_key_path)!r} is not a readable key file")
        if self.database_read_url is not None and (self.is_sqlite or self.database_read_url.startswith("sqlite")):
            # A second SQLite file would be a different database, not a copy that follows the first: refuse
            # rather than ignore, so an office that set it does not believe its pages read a replica.
            raise SettingsError("DATABASE_READ_URL needs PostgreSQL for both DATABASE_URL and DATABASE_READ_URL "
                                "(a streaming replica of the primary); unset it with SQLite")
        if self.dkim_key_path is not None and not self.dkim_selector:
            raise SettingsError("MAILROOM_DKIM_KEY is set but MAILROOM_DKIM_SELECTOR is not: both are needed to sign")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        instance_dir = Path(env.get("MAILROOM_INSTANCE_DIR", "instance")).resolve()
        database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'mailroom.db'}"
        tz = env.get("MAILROOM_TIMEZONE", cls.timezone)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"MAILROOM_TIMEZONE={tz!r} is not a known time zone") from exc
        values: dict[str, object] = {
            "instance_dir": instance_dir,
            "database_url": _normalise_db_url(database_url),
            "redis_url": env.get("REDIS_URL") or None,
            "database_read_url": _normalise_db_url(env["DATABASE_READ_URL"]) if env.get("DATABASE_READ_URL") else None,
            "secret_key": _checked_secret_key(env.get("SECRET_KEY") or _secret_key(instance_dir)),
            "office_name": env.get("MAILROOM_OFFICE_NAME", cls.office_name),
            "timezone": tz,
            "bind": env.get("MAILROOM_BIND", cls.bind),
            "secure_cookies": env.get("MAILROOM_SECURE_COOKIES", "").lower() in _TRUE,
            "login_attempts": _int(env, "MAILROOM_LOGIN_ATTEMPTS", cls.login_attempts),
            "login_address_attempts": _int(env, "MAILROOM_LOGIN_ADDRESS_ATTEMPTS", cls.login_address_attempts),
            "login_backoff_max_minutes": _int(env, "MAILROOM_LOGIN_BACKOFF_MAX_MINUTES",
                                              cls.login_backoff_max_minutes),
            "require_2fa": _roles(env.get("MAILROOM_REQUIRE_2FA", "admin,supervisor")),
            "page_size": _int(env, "MAILROOM_PAGE_SIZE", cls.page_size),
            "sweep_after_minutes": _int(env, "MAILROOM_SWEEP_AFTER_MINUTES", cls.sweep_after_minutes),
            "max_message_bytes": _int(env, "MAILROOM_MAX_MESSAGE_BYTES", cls.max_message_bytes),
            "max_attachment_bytes": _int(env, "MAILROOM_MAX_ATTACHMENT_BYTES", cls.max_attachment_bytes),
            "district_zips": _zip_list(env.get("MAILROOM_DISTRICT_ZIPS", "")),
            "imap_accounts_json": env.get("MAILROOM_IMAP_ACCOUNTS", ""),
            "smtp_host": env.get("MAILROOM_SMTP_HOST", ""),
            "smtp_port": _int(env, "MAILROOM_SMTP_PORT", cls.smtp_port),
            "smtp_security": _choice(env, "MAILROOM_SMTP_SECURITY", ("starttls", "ssl", "none"), cls.smtp_security),
            "smtp_username": env.get("MAILROOM_SMTP_USERNAME", ""),
            "smtp_password": env.get("MAILROOM_SMTP_PASSWORD", ""),
            "smtp_oauth_mailbox": env.get("MAILROOM_SMTP_OAUTH_MAILBOX", "").strip(),
            "oauth_apps": _oauth_apps(env),
            "mail_from": env.get("MAILROOM_MAIL_FROM", cls.mail_from),
            "reply_to": env.get("MAILROOM_REPLY_TO", ""),
            "smtp_rate_per_second": float(env.get("MAILROOM_SMTP_RATE") or cls.smtp_rate_per_second),
            "bounce_address": env.get("MAILROOM_BOUNCE_ADDRESS", "").strip(),
            "soft_bounce_limit": _positive(env, "MAILROOM_SOFT_BOUNCE_LIMIT", cls.soft_bounce_limit),
            "mass_mail_threshold": _count(env, "MAILROOM_MASS_MAIL_THRESHOLD", cls.mass_mail_threshold),
            "blackout_days": _count(env, "MAILROOM_BLACKOUT_DAYS", cls.blackout_days),
            "recluster_days": _count(env, "MAILROOM_RECLUSTER_DAYS", cls.recluster_days),
            "mass_mail_cost_email": _dollars(env, "MAILROOM_MASS_MAIL_COST_EMAIL", cls.mass_mail_cost_email),
            "mass_mail_cost_print": _dollars(env, "MAILROOM_MASS_MAIL_COST_PRINT", cls.mass_mail_cost_print),
            "dkim_selector": env.get("MAILROOM_DKIM_SELECTOR", "").strip(),
            "dkim_domain": env.get("MAILROOM_DKIM_DOMAIN", "").strip().lower(),
            "dkim_key_path": Path(env["MAILROOM_DKIM_KEY"]).resolve() if env.get("MAILROOM_DKIM_KEY") else None,
            "one_off_approval": env.get("MAILROOM_ONE_OFF_APPROVAL", "1").lower() in _TRUE,
            "frequent_writer_days": _count(env, "MAILROOM_FREQUENT_WRITER_DAYS", cls.frequent_writer_days),
            "approved_paragraphs_skip_review":
                env.get("MAILROOM_APPROVED_PARAGRAPHS_SKIP_REVIEW", "").lower() in _TRUE,
            "autocode_confidence": _confidence(env.get("MAILROOM_AUTOCODE_CONFIDENCE", "0.95")),
            "dashboard_cache_seconds": _int(env, "MAILROOM_DASHBOARD_CACHE_SECONDS", 30),
            "member_name": env.get("MAILROOM_MEMBER_NAME", cls.member_name),
            "signature": env.get("MAILROOM_SIGNATURE", cls.signature).replace("\\n", "\n"),
            "letterhead": env.get("MAILROOM_LETTERHEAD", cls.letterhead),
            "letter_max_kb": _positive(env, "MAILROOM_LETTER_MAX_KB", cls.letter_max_kb),
            "letter_render_seconds": _positive(env, "MAILROOM_LETTER_RENDER_SECONDS", cls.letter_render_seconds),
            "blob_dir_override": Path(env["MAILROOM_BLOB_DIR"]).resolve() if env.get("MAILROOM_BLOB_DIR") else None,
            "scan_max_pages": _positive(env, "MAILROOM_SCAN_MAX_PAGES", cls.scan_max_pages),
            "scan_max_page_points": _positive(env, "MAILROOM_SCAN_MAX_PAGE_POINTS", cls.scan_max_page_points),
            "scan_max_pixels": _positive(env, "MAILROOM_SCAN_MAX_PIXELS", cls.scan_max_pixels),
            "scan_ocr_seconds": _positive(env, "MAILROOM_SCAN_OCR_SECONDS", cls.scan_ocr_seconds),
            "rate_limits": _rate_limits(env.get("MAILROOM_RATE_LIMITS", "")),
            "trusted_proxies": _count(env, "MAILROOM_TRUSTED_PROXIES", cls.trusted_proxies),
            "cwc_offices": frozenset(o.strip().upper() for o in env.get("MAILROOM_CWC_OFFICES", "").split(",")
                                     if o.strip()),
            "public_url": _public_url(env.get("MAILROOM_PUBLIC_URL", "")),
            "help_min_fill_seconds": _int(env, "MAILROOM_HELP_MIN_FILL_SECONDS", cls.help_min_fill_seconds),
            "backup_dir": Path(env["MAILROOM_BACKUP_DIR"]).resolve() if env.get("MAILROOM_BACKUP_DIR") else None,
            "backup_keep_daily": _positive(env, "MAILROOM_BACKUP_KEEP_DAILY", cls.backup_keep_daily),
            "backup_keep_weekly": _count(env, "MAILROOM_BACKUP_KEEP_WEEKLY", cls.backup_keep_weekly),
            "webhook_keep_delivered_days": _positive(env, "MAILROOM_WEBHOOK_KEEP_DELIVERED_DAYS",
                                                     cls.webhook_keep_delivered_days),
            "webhook_keep_failed_days": _positive(env, "MAILROOM_WEBHOOK_KEEP_FAILED_DAYS",
                                                  cls.webhook_keep_failed_days),
        }
        values.update(overrides)
        if values.get("testing") and "help_min_fill_seconds" not in overrides:
            values["help_min_fill_seconds"] = 0  # tests post the form right after loading it
        if values.get("testing") and "dashboard_cache_seconds" not in overrides:
            values["dashboard_cache_seconds"] = 0  # tests look at the dashboard right after changing things
        return cls(**values)  # type: ignore[arg-type]  # keys match the fields above

    def oauth_app(self, kind: str) -> Provider | None:
        """The office's app registration at this provider, or None when it has not been set up."""
        return next((app for app in self.oauth_apps if app.kind == kind), None)

    @property
    def rate_limit_map(self) -> dict[str, str]:
        return dict(self.rate_limits)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def blob_dir(self) -> Path:
        return self.blob_dir_override or self.instance_dir / "blobs"

    @property
    def redis_db_path(self) -> Path:
        return self.instance_dir / "redis.rdb"

    @property
    def redis_socket_path(self) -> Path:
        return self.instance_dir / "redis.sock"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.bind}"

    @property
    def mail_domain(self) -> str:
        """The domain of MAILROOM_MAIL_FROM (what bounce and DKIM domains default to)."""
        return (self.mail_from.rsplit("@", 1)[-1] or "mailroom.local").strip("> ").lower()

    @property
    def bounce_mailbox(self) -> str:
        return self.bounce_address or f"bounces@{self.mail_domain}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _checked_secret_key(key: str) -> str:
    """SECRET_KEY (from the environment or the instance's secret_key file) must be long enough to resist guessing."""
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise SettingsError(f"SECRET_KEY is {len(key)} characters; it must be at least {SECRET_KEY_MIN_LENGTH} "
                            "(unset it to use the instance's generated key, or use e.g. "
                            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    return key


# Each provider's settings by name, spelled out so the README's settings table can be held to them.
_OAUTH_ENV: dict[str, dict[str, str]] = {
    "microsoft": {"client_id": "MAILROOM_OAUTH_MICROSOFT_CLIENT_ID",
                  "client_secret": "MAILROOM_OAUTH_MICROSOFT_CLIENT_SECRET",
                  "tenant": "MAILROOM_OAUTH_MICROSOFT_TENANT"},
    "google": {"client_id": "MAILROOM_OAUTH_GOOGLE_CLIENT_ID",
               "client_secret": "MAILROOM_OAUTH_GOOGLE_CLIENT_SECRET"},
    "generic": {"client_id": "MAILROOM_OAUTH_GENERIC_CLIENT_ID",
                "client_secret": "MAILROOM_OAUTH_GENERIC_CLIENT_SECRET",
                "authorize_url": "MAILROOM_OAUTH_GENERIC_AUTHORIZE_URL",
                "token_url": "MAILROOM_OAUTH_GENERIC_TOKEN_URL",
                "device_url": "MAILROOM_OAUTH_GENERIC_DEVICE_URL",
                "scopes": "MAILROOM_OAUTH_GENERIC_SCOPES"},
}


def _oauth_apps(env: Mapping[str, str]) -> tuple[Provider, ...]:
    """The office's app registration at each provider whose client id is set. Microsoft's and Google's
    addresses and scopes are built in (Microsoft's for the directory MAILROOM_OAUTH_MICROSOFT_TENANT names);
    any other provider gives its own."""
    apps = []
    for kind, names in _OAUTH_ENV.items():
        client_id = env.get(names["client_id"], "").strip()
        if not client_id:
            continue
        values = {field: env.get(name, "").strip() for field, name in names.items()}
        urls = microsoft_endpoints(values["tenant"]) if kind == "microsoft" else {}
        for field in ("authorize_url", "token_url", "device_url"):
            urls[field] = values.get(field) or urls.get(field, "")
            if values.get(field) and (refused := _not_https(urls[field])):
                raise SettingsError(f"{names[field]}={urls[field]!r}: {refused}")
        try:
            app = Provider.of(kind, client_id, client_secret=values["client_secret"],
                              scopes=values.get("scopes", ""), **urls)
        except ValueError as exc:
            raise SettingsError(f"{names['client_id']} is set but {names.get('token_url')} is not: {exc}") from exc
        if not app.scopes:
            raise SettingsError(f"{names.get('scopes')} must name the scopes that allow IMAP and SMTP at this provider")
        apps.append(app)
    return tuple(apps)


def _not_https(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return None  # a provider on this machine (the tests' own)
    return "must be an https address"


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _roles(raw: str) -> frozenset[str]:
    """Role names from a comma-separated list (MAILROOM_REQUIRE_2FA); empty means no role must enrol."""
    known = ("admin", "supervisor", "correspondent", "caseworker")
    names = frozenset(r.strip().lower() for r in raw.split(",") if r.strip())
    bad = sorted(names - set(known))
    if bad:
        raise SettingsError(f"MAILROOM_REQUIRE_2FA has unknown roles {', '.join(bad)}; use {', '.join(known)}")
    return names


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from exc


def _imap_plain_text(raw: str) -> str | None:
    """Why an account in MAILROOM_IMAP_ACCOUNTS may not be used (no TLS to another machine), or None.
    Other mistakes in the list are reported where it is read (intake.imap.accounts_from_json)."""
    try:
        accounts = json.loads(raw) if raw.strip() else []
    except ValueError:
        return None
    for account in accounts if isinstance(accounts, list) else []:
        if isinstance(account, dict) and not account.get("ssl", True) and not account.get("starttls", False):
            refused = plain_text_refused("IMAP", str(account.get("host") or ""))
            if refused:
                return f"account {account.get('name')!r}: {refused}"
    return None


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A number above zero (a whole number when the default is one)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw) if isinstance(default, int) else float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be a number above 0") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a number above 0")
    return value


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if url and not (url.startswith(("https://", "http://")) and len(url) > 8 and not any(c.isspace() for c in url)):
        raise SettingsError(f"MAILROOM_PUBLIC_URL={raw!r} must be an http(s) address, e.g. https://help.example.gov")
    return url


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise SettingsError(f"{name}={value} must be 0 or more")
    return value


def _dollars(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = Decimal(raw.lstrip("$"))
    except ArithmeticError:
        raise SettingsError(f"{name}={raw!r} must be an amount in dollars like 0.78") from None
    if not value.is_finite() or value < 0:
        raise SettingsError(f"{name}={raw!r} must be an amount in dollars like 0.78, not negative")
    return value


def _rate_limits(raw: str) -> tuple[tuple[str, str], ...]:
    """The default rate limits with MAILROOM_RATE_LIMITS ("rule=limit ...", whitespace separated) applied."""
    from limits import parse_many

    limits = dict(DEFAULT_RATE_LIMITS)
    for entry in raw.split():
        rule, sep, value = entry.partition("=")
        if not sep or rule not in limits:
            raise SettingsError(f"MAILROOM_RATE_LIMITS: {entry!r} is not rule=limit with a rule among "
                                f"{', '.join(limits)}")
        if value.lower() != "off":
            try:
                parse_many(value)
            except ValueError as exc:
                raise SettingsError(f"MAILROOM_RATE_LIMITS: {value!r} for {rule} is not a limit like "
                                    "10/minute (or off)") from exc
        limits[rule] = value.lower() if value.lower() == "off" else value
    return tuple(limits.items())


def _confidence(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"MAILROOM_AUTOCODE_CONFIDENCE={raw!r} must be a number from 0 (off) to 1") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"MAILROOM_AUTOCODE_CONFIDENCE={raw!r} must be from 0 (off) to 1")
    return value


def _zip_list(raw: str) -> frozenset[str]:
    """ZIP codes from a comma/space separated list, or from a file when given `@path`."""
    if raw.startswith("@"):
        raw = Path(raw[1:]).read_text()
    zips = frozenset(z.strip() for z in raw.replace(",", " ").split() if z.strip())
    bad = [z for z in zips if not (z.isdigit() and len(z) in (5, 9)) and not _is_zip4(z)]
    if bad:
        raise SettingsError(f"MAILROOM_DISTRICT_ZIPS has values that are not ZIP codes: {', '.join(sorted(bad)[:5])}")
    return frozenset(z.replace("-", "") for z in zips)


def _is_zip4(z: str) -> bool:
    head, _, tail = z.partition("-")
    return head.isdigit() and len(head) == 5 and tail.isdigit() and len(tail) == 4


def _normalise_db_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
