"""The archive's encoding of a table: which tables and columns, in which order, as which JSON values.

One JSON object per row, keys sorted, no spaces; rows in primary-key order (byte order for text keys, on
every database); datetimes ISO 8601 in UTC, bytes base64, enums as their stored value, JSON columns as JSON.
The same bytes are written by export and recomputed by verify, so a table's checksum is the SHA-256 of its
file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Enum, LargeBinary, String, Table, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from correspondence.models import Base
from correspondence.models.base import UTCDateTime

FORMAT = "mailroom-archive"
FORMAT_VERSION = 1

# Secrets never leave the database. Whole tables of second factors and recovery codes, and these columns;
# a restore fills each left-out column with the value in RESTORED_AS (None when not listed): restored staff
# have no usable password (`mailroom staff reset-password EMAIL`) and no second factor (they set one up again),
# intake tokens are unusable (issue new ones), mailboxes need their password entered again, and a help form's
# pending email confirmation link no longer works.
LEFT_OUT_TABLES: tuple[str, ...] = ("recovery_codes", "webauthn_credentials")
LEFT_OUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "staffers": ("password_hash", "totp_secret", "totp_confirmed_at", "totp_last_step"),
    "intake_tokens": ("token_sha256",),
    "mailbox_accounts": ("password_encrypted", "oauth_client_secret_encrypted", "refresh_token_encrypted"),
    "staff_api_tokens": ("token_sha256",),
    "help_requests": ("email_token_hash",),
    "webhook_subscriptions": ("secret_encrypted",),
}
# Not an argon2 hash: verify_password() treats it as invalid, so nobody signs in until a reset.
NO_PASSWORD = "!restored-without-password"  # noqa: S105 - not a password: no hash matches it

# Rows the migrations themselves insert; a restore replaces them with the archive's.
SEEDED_TABLES: tuple[str, ...] = ("topics", "case_categories")

LINE_SEPARATORS = (",", ":")


def archived_tables() -> list[Table]:
    """Every model table but the left-out ones, parents before children (foreign-key order)."""
    return [t for t in Base.metadata.sorted_tables if t.name not in LEFT_OUT_TABLES]


def archived_columns(table: Table) -> list[Column[Any]]:
    left_out = LEFT_OUT_COLUMNS.get(table.name, ())
    return [c for c in table.columns if c.name not in left_out]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _sqlite_iso(value: str) -> str:
    """The same text as _iso, straight from SQLite's stored text (UTC, naive: "2026-12-03 17:28:06.122874").

    A third of an export's time went to parsing that text into datetimes only to print them again.
    Text of any other shape is parsed the slow way.
    """
    if len(value) == 26 and value[10] == " " and value[19] == ".":
        if value.endswith(".000000"):  # isoformat() leaves out zero microseconds
            value = value[:19]
        return value.replace(" ", "T", 1) + "+00:00"
    if len(value) == 19 and value[10] == " ":
        return value.replace(" ", "T", 1) + "+00:00"
    parsed = datetime.fromisoformat(value)
    return _iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _raw_datetime(column: Column[Any], dialect: str) -> bool:
    return dialect == "sqlite" and isinstance(column.type, UTCDateTime)


def _encoder(column: Column[Any], dialect: str) -> Callable[[Any], Any] | None:
    if isinstance(column.type, UTCDateTime):
        return _sqlite_iso if dialect == "sqlite" else _iso
    if isinstance(column.type, LargeBinary):
        return _b64
    if isinstance(column.type, Date):  # a calendar day (an election): "2026-11-03"
        return date.isoformat
    return None


def _order_key(column: Column[Any], dialect: str) -> ColumnElement[Any]:
    # Text keys sort by byte (code point) order on both databases, not by the server's locale.
    if dialect == "postgresql" and isinstance(column.type, String):
        return column.collate("C")
    return column


def table_query(table: Table, dialect: str):  # type: ignore[no-untyped-def]
    """SELECT the archived columns (enums as their stored text) in primary-key order."""
    cols = [type_coerce(c, String()).label(c.name) if isinstance(c.type, Enum) or _raw_datetime(c, dialect) else c
            for c in archived_columns(table)]
    return select(*cols).order_by(*(_order_key(c, dialect) for c in table.primary_key.columns))


def encode_lines(conn: Connection, table: Table, *, chunk: int = 5000) -> Iterator[bytes]:
    """The table's archive file, line by line, streamed from the database (constant memory)."""
    columns = archived_columns(table)
    names = [c.name for c in columns]
    dialect = conn.dialect.name
    converters = [(i, enc) for i, c in enumerate(columns) if (enc := _encoder(c, dialect)) is not None]
    dumps = json.JSONEncoder(sort_keys=True, separators=LINE_SEPARATORS, ensure_ascii=False).encode
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(
        table_query(table, conn.dialect.name))
    for partition in result.partitions():
        out = []
        for row in partition:
            values = list(row)
            for i, enc in converters:
                if values[i] is not None:
                    values[i] = enc(values[i])
            out.append(dumps(dict(zip(names, values, strict=True))).encode("utf-8") + b"\n")
        yield b"".join(out)


@dataclass(frozen=True)
class TableSum:
    rows: int
    sha256: str


def table_sum(conn: Connection, table: Table) -> TableSum:
    """Rows and the SHA-256 of the table's archive file, computed without writing it."""
    digest = hashlib.sha256()
    rows = 0
    for block in encode_lines(conn, table):
        digest.update(block)
        rows += block.count(b"\n")
    return TableSum(rows, digest.hexdigest())


def _decoder(column: Column[Any]) -> Callable[[Any], Any] | None:
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat
    if isinstance(column.type, LargeBinary):
        return base64.b64decode
    if isinstance(column.type, Date):
        return date.fromisoformat
    return None


def decoders(table: Table) -> dict[str, Callable[[Any], Any]]:
    return {c.name: dec for c in table.columns if (dec := _decoder(c)) is not None}


def is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON)
