"""CSV import of constituents: upload, map columns, preview, then a job that validates and de-duplicates.

Every row ends up somewhere a person can see: created, matched to an existing record (by its email;
a row without one by its phone; a row with neither by exact name + ZIP) and filled in, or reported
bad with its reason in a downloadable CSV.
The file itself is kept (as a blob) so the job can be re-run after a crash: chunks of rows commit with
the import's progress, and a re-run continues after the last committed chunk.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from constituents.identity import Known, PersonFacts, create_person, find
from constituents.records import clean_tag
from constituents.values import normalise_email, normalise_phone, parse_state, parse_zip, split_name, too_long
from correspondence.csvsafe import to_csv
from correspondence.db import Database
from correspondence.effects import Done, Effect
from correspondence.errors import NotFound, ValidationFailed
from correspondence.models import (
    Constituent,
    ConstituentEmail,
    ConstituentImport,
    ConstituentPhone,
    ConstituentTag,
    RunState,
    utcnow,
)
from correspondence.services.audit import record, record_many
from correspondence.services.blobs import load_blob, store_blob
from correspondence.states import IMPORTS

MAX_ROWS = 200_000
CHUNK = 1000
FIELDS = {
    "prefix": "Prefix (Mr., Dr.)", "first_name": "First name", "middle_name": "Middle name",
    "last_name": "Last name", "suffix": "Suffix", "full_name": "Full name (split into first and last)",
    "email": "Email", "phone": "Phone", "address1": "Street address", "address2": "Address line 2",
    "city": "City", "state": "State", "zip": "ZIP code", "tags": "Tags (comma separated)",
}
_GUESSES = {
    "prefix": {"prefix", "title", "salutation", "honorific"},
    "first_name": {"firstname", "first", "fname", "givenname", "forename"},
    "middle_name": {"middlename", "middle", "middleinitial", "mi"},
    "last_name": {"lastname", "last", "lname", "surname", "familyname"},
    "suffix": {"suffix"},
    "full_name": {"name", "fullname", "constituent", "contactname"},
    "email": {"email", "emailaddress", "email1", "mail", "e-mail"},
    "phone": {"phone", "phonenumber", "telephone", "tel", "mobile", "cell", "homephone"},
    "address1": {"address", "address1", "street", "streetaddress", "addressline1", "mailingaddress"},
    "address2": {"address2", "addressline2", "apt", "unit", "suite"},
    "city": {"city", "town", "municipality"},
    "state": {"state", "st", "province"},
    "zip": {"zip", "zipcode", "postalcode", "postcode", "zip5"},
    "tags": {"tags", "tag", "groups", "labels"},
}
_FORMULA = re.compile(r"^\s*[=]")


@dataclass
class Parsed:
    encoding: str
    delimiter: str
    columns: list[str]
    rows: int


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read in; binary files are refused with the reason."""
    if not data.strip():
        raise ValidationFailed("the file is empty")
    if b"\x00" in data[:65536]:
        raise ValidationFailed("this is not a CSV text file (it holds binary data, e.g. an Excel .xlsx or a "
                               "UTF-16 export); in the spreadsheet choose Save As → CSV UTF-8 and upload that")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        # Excel on Windows saves "CSV" in Windows-1252; read it as that rather than refuse it.
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        raise ValidationFailed(f"the file is not UTF-8 text (byte 0x{data[utf8_error.start]:02x} at position "
                               f"{utf8_error.start}); save it as CSV UTF-8 and upload again") from None


def _reader(text: str, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def sniff(text: str) -> str:
    sample = text[:20000]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def parse(data: bytes) -> Parsed:
    text, encoding = decode(data)
    delimiter = sniff(text)
    rows = _reader(text, delimiter)
    try:
        header = next(rows)
    except (StopIteration, csv.Error) as exc:
        raise ValidationFailed(f"the first line is not a row of column names ({exc})") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise ValidationFailed("the first line must name the columns (First name, Last name, Email, …)")
    count = 0
    try:
        for count, _row in enumerate(rows, start=1):  # noqa: B007 - counted only
            if count > MAX_ROWS:
                raise ValidationFailed(f"the file has more than {MAX_ROWS:,} rows; split it into smaller files")
    except csv.Error as exc:
        raise ValidationFailed(f"row {count + 1} cannot be read as CSV: {exc}") from None
    if count == 0:
        raise ValidationFailed("the file has column names but no rows")
    return Parsed(encoding, delimiter, header, count)


def guess_mapping(columns: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for index, name in enumerate(columns):
        key = re.sub(r"[^a-z0-9-]", "", name.lower())
        for target, names in _GUESSES.items():
            if key in names and target not in taken:
                mapping[str(index)] = target
                taken.add(target)
                break
    return mapping


def check_mapping(mapping: dict[str, str], columns: list[str]) -> dict[str, str]:
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    for index, target in mapping.items():
        if not target:
            continue
        if target not in FIELDS:
            raise ValidationFailed(f"{target!r} is not a field Mailroom knows")
        if not index.isdigit() or int(index) >= len(columns):
            raise ValidationFailed("the mapping names a column the file does not have")
        if target in used:
            raise ValidationFailed(f"two columns ({used[target]!r} and {columns[int(index)]!r}) are both mapped to "
                                   f"{FIELDS[target]}")
        used[target] = columns[int(index)]
        clean[index] = target
    targets = set(clean.values())
    if not targets & {"first_name", "last_name", "full_name", "email"}:
        raise ValidationFailed("map at least one column to a name (first, last or full) or to email")
    return clean


def upload(session: Session, data: bytes, filename: str, *, actor_id: int) -> ConstituentImport:
    parsed = parse(data)
    digest = store_blob(session, data, "text/csv")
    imp = ConstituentImport(filename=(filename or "upload.csv")[:300], source_sha256=digest,
                            encoding=parsed.encoding, columns=parsed.columns, mapping=guess_mapping(parsed.columns),
                            total_rows=parsed.rows, created_by_id=actor_id)
    session.add(imp)
    session.flush()
    record(session, actor_id=actor_id, action="import.upload", object_type="constituent_import", object_id=imp.id,
           after={"filename": imp.filename, "rows": parsed.rows, "encoding": parsed.encoding})
    return imp


def get_import(session: Session, import_id: int) -> ConstituentImport:
    imp = session.get(ConstituentImport, import_id)
    if imp is None:
        raise NotFound(f"no import {import_id}")
    return imp


# --- one row --------------------------------------------------------------------------------------

@dataclass
class Row:
    number: int  # line in the file, the header being line 1
    cells: list[str]
    values: dict[str, str] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate_row(number: int, cells: list[str], mapping: dict[str, str], columns: list[str]) -> Row:
    row = Row(number, cells)
    raw = {target: (cells[int(i)].strip() if int(i) < len(cells) else "") for i, target in mapping.items()}
    for target, value in raw.items():
        if value and _FORMULA.match(value):
            row.problems.append(f"{FIELDS[target]} looks like a spreadsheet formula ({value[:40]!r})")
    if row.problems:
        return row
    values = {k: v for k, v in raw.items() if v}
    if "full_name" in values and not (values.get("first_name") or values.get("last_name")):
        first, last = split_name(values.pop("full_name"))
        values.update({k: v for k, v in (("first_name", first), ("last_name", last)) if v})
    values.pop("full_name", None)
    for part in re.split(r"[;,\s]+", values.pop("email", "")):
        try:
            address = normalise_email(part)
        except ValidationFailed as exc:
            row.problems.append(f"email {exc}")
        else:
            if address:
                row.emails.append(address)
    phone = values.pop("phone", "")
    if phone:
        try:
            row.phone = normalise_phone(phone)
        except ValidationFailed as exc:
            row.problems.append(f"phone {exc}")
    if values.get("state"):
        try:
            values["state"] = parse_state(values["state"]) or ""
        except ValidationFailed as exc:
            row.problems.append(str(exc))
    try:
        # A spreadsheet drops the leading zero of New England ZIPs: 02134 arrives as 2134.
        zip_code = parse_zip(values.pop("zip", ""), spreadsheet=True)
    except ValidationFailed as exc:
        row.problems.append(str(exc))
    else:
        if zip_code:
            values["zip5"] = zip_code.zip5
            if zip_code.zip4:
                values["zip4"] = zip_code.zip4
    row.problems += [f"{FIELDS[k]} {reason}" for k, reason in too_long(values).items()]
    for text in re.split(r"[,;]", values.pop("tags", "")):
        if text.strip():
            try:
                row.tags.append(clean_tag(text))
            except ValidationFailed:
                row.problems.append(f"tag {text.strip()[:60]!r} has characters a tag cannot hold")
    if not (values.get("first_name") or values.get("last_name") or row.emails):
        row.problems.append("no name and no email")
    elif not (values.get("last_name") or row.emails or row.phone):
        row.problems.append("no last name, email or phone to know the person by")
    row.values = values
    return row


def preview(session: Session, imp: ConstituentImport, mapping: dict[str, str], limit: int = 20) -> list[Row]:
    data = load_blob(session, imp.source_sha256)
    text, _ = decode(data or b"")
    rows = _reader(text, sniff(text))
    next(rows)
    out = []
    for number, cells in enumerate(rows, start=2):
        out.append(validate_row(number, cells, mapping, imp.columns))
        if len(out) >= limit:
            break
    return out


def start(session: Session, import_id: int, mapping: dict[str, str], tag: str, *, actor_id: int) -> ConstituentImport:
    imp = get_import(session, import_id)
    if imp.state != RunState.UPLOADED:
        raise ValidationFailed("this import has already been started")
    imp.mapping = check_mapping(mapping, imp.columns)
    imp.tag = clean_tag(tag) if tag.strip() else None
    return IMPORTS.move(session, imp, RunState.QUEUED, actor_id=actor_id, action="import.start",
                        after={"mapping": {imp.columns[int(i)]: t for i, t in imp.mapping.items()}, "tag": imp.tag})


# --- the job --------------------------------------------------------------------------------------

EDITABLE_FIELDS = ("prefix", "first_name", "middle_name", "last_name", "suffix", "address1", "address2", "city",
                   "state", "zip5", "zip4")


def _apply_chunk(session: Session, rows: list[Row], imp: ConstituentImport, known: Known) -> tuple[int, int]:
    """Create or fill in the records for one chunk of valid rows; returns (created, matched).

    Who each row is comes from the office's one rule (constituents.identity); the chunk's emails and
    phones are looked up in two queries, people earlier in the file are in `known`; one flush.
    A row whose name and address fit several people on file becomes a new record, for the
    duplicates page, rather than joining one of them at random.
    """
    known.preload(session, emails={e for r in rows for e in r.emails}, phones={r.phone for r in rows if r.phone})
    touched: list[tuple[Constituent, Row, bool, dict[str, str]]] = []
    created = matched = 0
    with session.no_autoflush:  # one flush for the chunk, not one per person looked up
        for row in rows:
            facts = PersonFacts(email=row.emails[0] if row.emails else None, more_emails=tuple(row.emails[1:]),
                                phone=row.phone, **{k: row.values.get(k) for k in EDITABLE_FIELDS})
            match = find(session, facts, known)
            filled: dict[str, str] = {}
            if not match.found:
                person = create_person(session, facts, known)
                is_new = True
                created += 1
            else:
                person = match.constituent or session.get_one(
                    Constituent, match.constituent_id, options=[selectinload(Constituent.emails),
                                                                selectinload(Constituent.phones),
                                                                selectinload(Constituent.tags)])
                for key, value in row.values.items():
                    if key in EDITABLE_FIELDS and getattr(person, key) is None:
                        setattr(person, key, value)
                        filled[key] = value
                is_new = False  # on file, or earlier in this file: filled in, counted as matched
                matched += 1
                # Its other addresses and number join the record, unless they are someone else's.
                have_emails = {e.address for e in person.emails}
                for e in row.emails:
                    if e not in have_emails and known.owner_of_email(e) is None:
                        person.emails.append(ConstituentEmail(address=e))
                        known.made[f"email:{e}"] = person
                if row.phone and row.phone not in {p.number for p in person.phones}:
                    person.phones.append(ConstituentPhone(number=row.phone))
                    if known.phones.get(row.phone) is None:
                        known.made.setdefault(f"phone:{row.phone}", person)
            have_tags = {t.tag for t in person.tags}
            for tag in dict.fromkeys(row.tags + ([imp.tag] if imp.tag else [])):
                if tag not in have_tags:
                    person.tags.append(ConstituentTag(tag=tag))
            touched.append((person, row, is_new, filled))
    session.flush()
    known.settle()
    record_many(session, actor_id=imp.created_by_id, action="constituent.import_create", object_type="constituent",
                events=[(p.id, {"import_id": imp.id, "row": r.number}) for p, r, new, _f in touched if new])
    record_many(session, actor_id=imp.created_by_id, action="constituent.import_match", object_type="constituent",
                events=[(p.id, {"import_id": imp.id, "row": r.number, "filled": f})
                        for p, r, new, f in touched if not new])
    return created, matched


def run_import(db: Database, import_id: int) -> ConstituentImport:
    """The job. Safe to run twice: a finished import is left alone, a broken-off one continues."""
    with db.unit_of_work() as s:
        imp = get_import(s, import_id)
        if imp.state == RunState.DONE:
            return imp
        if imp.state == RunState.UPLOADED:
            raise ValidationFailed("map the columns and start the import first")
        IMPORTS.move(s, imp, RunState.RUNNING, actor_id=None, action="import.run")
        data = load_blob(s, imp.source_sha256) or b""
        mapping, columns, resume_at = dict(imp.mapping or {}), list(imp.columns), imp.done_rows
    text, _ = decode(data)
    reader = _reader(text, sniff(text))
    next(reader)
    bad: list[Row] = []
    known = Known()  # who the rows so far were, across chunks
    chunk: list[Row] = []
    chunk_count = 0

    def flush(rows: list[Row], n: int) -> None:
        with db.unit_of_work() as s:
            imp_ = s.get_one(ConstituentImport, import_id)
            created, matched = _apply_chunk(s, rows, imp_, known)
            s.execute(update(ConstituentImport).where(ConstituentImport.id == import_id).values(
                done_rows=ConstituentImport.done_rows + n, created=ConstituentImport.created + created,
                matched=ConstituentImport.matched + matched))

    index = -1
    try:
        for index, cells in enumerate(reader):
            row = validate_row(index + 2, cells, mapping, columns)
            if row.problems:
                bad.append(row)
            if index < resume_at:
                continue  # committed by an earlier run; only its bad rows are gathered again
            if not row.problems:
                chunk.append(row)
            chunk_count += 1
            if chunk_count == CHUNK:
                flush(chunk, chunk_count)
                chunk, chunk_count = [], 0
        if chunk_count:
            flush(chunk, chunk_count)
    except csv.Error as exc:
        with db.unit_of_work() as s:
            imp = get_import(s, import_id)
            imp.error = f"the file stops being CSV near line {index + 3}: {exc}"[:500]
            return IMPORTS.move(s, imp, RunState.FAILED, actor_id=None, action="import.fail", detail=imp.error)
    with db.unit_of_work() as s:
        imp = s.get_one(ConstituentImport, import_id)
        imp.bad = len(bad)
        if bad:
            report = to_csv(["line", "problem", *columns],
                            ([r.number, "; ".join(r.problems), *r.cells] for r in bad))
            imp.bad_rows_sha256 = store_blob(s, report.encode("utf-8-sig"), "text/csv")
        imp.finished_at = utcnow()
        IMPORTS.move(s, imp, RunState.DONE, actor_id=imp.created_by_id, action="import.finish",
                     after={"created": imp.created, "matched": imp.matched, "bad": imp.bad})
    return imp


def recent_imports(session: Session, limit: int = 20) -> list[ConstituentImport]:
    return list(session.scalars(select(ConstituentImport).order_by(ConstituentImport.id.desc()).limit(limit)))


def queue_import(session: Session, import_id: int, mapping: dict[str, str], tag: str, *,
                 actor_id: int) -> Done[ConstituentImport]:
    """Start a mapped import and ask for its job, which runs after the commit."""
    imp = start(session, import_id, mapping, tag, actor_id=actor_id)
    return Done(imp, (Effect.of("import", imp.id),))


def restart_stalled_imports(session: Session, *, older_than: timedelta) -> Done[int]:
    """The sweep's part for imports queued or running longer than `older_than` (their job was lost);
    the job continues after the last chunk it committed."""
    cutoff = utcnow() - older_than
    ids = list(session.scalars(select(ConstituentImport.id).where(
        ConstituentImport.state.in_(("queued", "running")), ConstituentImport.created_at < cutoff)))
    return Done(len(ids), (Effect.of("import", *ids),) if ids else ())
