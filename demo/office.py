"""A believable demo office: a real district's ZIP codes, constituents, campaigns, organic mail, casework.

Every message's true campaign is written to `demo-truth.jsonl` so batching quality can be measured.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import zipcodes
from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from correspondence.db import Database
from correspondence.models import (
    Channel,
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    DistrictStatus,
    Message,
    MessageStatus,
    Role,
    Staffer,
    Stance,
    Topic,
)
from correspondence.services.audit import record
from correspondence.services.blobs import store_blob
from correspondence.services.staff import create_staffer
from demo import texts as T

DISTRICT_STATE, DISTRICT_COUNTY = "OH", "Franklin County"

DEMO_STAFF = (
    ("Maria Alvarez", "maria.alvarez@mailroom.local", Role.SUPERVISOR),
    ("Devon Carter", "devon.carter@mailroom.local", Role.CORRESPONDENT),
    ("Priya Shah", "priya.shah@mailroom.local", Role.CORRESPONDENT),
    ("Sam Okafor", "sam.okafor@mailroom.local", Role.CORRESPONDENT),
    ("Lena Novak", "lena.novak@mailroom.local", Role.CASEWORKER),
    ("Tom Becker", "tom.becker@mailroom.local", Role.CASEWORKER),
)


@dataclass
class Person:
    constituent_id: int
    first: str
    last: str
    emails: list[str]
    city: str
    street: str
    phone: str | None


def _district_zips() -> tuple[list[dict], list[dict]]:
    inside = [z for z in zipcodes.filter_by(state=DISTRICT_STATE, county=DISTRICT_COUNTY)
              if z["zip_code_type"] == "STANDARD" and z["active"]]
    outside = [z for z in zipcodes.filter_by(state=DISTRICT_STATE)
               if z["zip_code_type"] == "STANDARD" and z["active"] and z["county"] != DISTRICT_COUNTY]
    return inside, outside


def _office_zip_list(session: Session, inside: list[dict]) -> int:
    """The demo office keeps its district's ZIP list (Admin → Intake), as a real office would: mail that
    people add to the demo (a call, a letter, an email) is then placed in or out of the district.

    An office that already keeps a list keeps it; the demo only fills an empty one.
    """
    from correspondence.services.intake_sources import district_zips, set_district_zips

    if district_zips(session):
        return 0
    return len(set_district_zips(session, " ".join(sorted(z["zip_code"] for z in inside)), actor_id=None))


def _typos(rng: random.Random, text: str, rate: float) -> str:
    """Swap two neighbouring letters in a few words, the way people type."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) > 4 and rng.random() < rate:
            j = rng.randrange(1, len(word) - 2)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    return " ".join(words)


def _fill(rng: random.Random, text: str, person: Person) -> str:
    return text.format(city=person.city, street=person.street, years=rng.randint(3, 45),
                       job=rng.choice(T.JOBS), num=rng.randint(2, 40),
                       month=rng.choice(("March", "April", "May", "June", "July", "August")),
                       weeks=rng.randint(2, 6), claim=f"{rng.randint(100000000, 999999999)}")


def _letter(rng: random.Random, person: Person, body: list[str]) -> str:
    greeting = rng.choice(T.GREETINGS)
    signoff = rng.choice(T.SIGNOFFS)
    parts = ([greeting] if greeting else []) + ["\n\n".join(body) if rng.random() < 0.5 else " ".join(body)]
    signature = f"{person.first} {person.last}"
    if rng.random() < 0.5:
        signature += f"\n{person.street}\n{person.city}, {DISTRICT_STATE}"
    parts.append(f"{signoff}\n{signature}" if signoff else signature)
    return "\n\n".join(parts)


def _campaign_copy(rng: random.Random, campaign: tuple, person: Person) -> tuple[str, str]:
    _key, _topic, _stance, _org, subject, sentences = campaign
    body = list(sentences)
    if rng.random() < 0.15 and len(body) > 3:
        body.pop(rng.randrange(1, len(body)))  # drop a sentence
    if rng.random() < 0.35:
        story = _fill(rng, rng.choice(T.PERSONAL_STORIES), person)
        body.insert(0 if rng.random() < 0.5 else len(body), story)
    text = _typos(rng, _letter(rng, person, body), 0.03 if rng.random() < 0.3 else 0.0)
    if rng.random() < 0.3:
        subject = rng.choice((subject.upper(), f"Re: {subject}", subject.split(" ", 1)[-1].capitalize(),
                              "Please read", f"{subject} - from a constituent"))
    return subject, text


def _organic(rng: random.Random, topic: str, person: Person, fake: Faker) -> tuple[str, str]:
    """A letter in the writer's own words: one concern from the topic's pool, the rest their own."""
    pool = T.ORGANIC[topic]
    body = [_fill(rng, rng.choice(pool), person)]
    own = [_own_sentence(rng, fake, person) for _ in range(rng.randint(1, 4))]
    body = own[:1] + body + own[1:] if rng.random() < 0.5 else body + own
    opener, closer = _fill(rng, rng.choice(T.ORGANIC_OPENERS), person), rng.choice(T.ORGANIC_CLOSERS)
    body = ([opener] if opener else []) + body + ([closer] if closer else [])
    subject = rng.choice((topic, body[1 if opener and len(body) > 1 else 0][:60].rstrip(".?"), "Question",
                          f"Concern from {person.city}", ""))
    return subject, _typos(rng, _letter(rng, person, body), 0.02)


_OWN_OPENINGS = ("I think", "My neighbors and I feel", "It seems to me", "Honestly,", "I have noticed that",
                 "Last month", "Every week", "My family believes", "I was surprised that", "I worry that")


def _own_sentence(rng: random.Random, fake: Faker, person: Person) -> str:
    """A sentence nobody else wrote: a varied opening, the writer's own words, local detail."""
    words = fake.sentence(nb_words=rng.randint(6, 14)).rstrip(".").lower()
    detail = rng.choice((f" here in {person.city}", f" near {person.street}", "", f" since {rng.randint(1980, 2025)}"))
    return f"{rng.choice(_OWN_OPENINGS)} {words}{detail}."


def _raw_email(person: Person, address: str, subject: str, text: str, when: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{person.first} {person.last} <{address}>"
    msg["To"] = "Representative Jane Doe <rep.doe@house.example>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=address.split("@")[-1])
    msg.set_content(text)
    return msg.as_bytes()


def build_demo_office(db: Database, instance_dir: Path, *, messages: int = 20000, constituents: int = 5000,
                      seed: int = 1, if_empty: bool = False, cluster: bool = True) -> dict[str, object]:
    """Fill the database with a demo office and write the truth file; returns a summary."""
    with db.unit_of_work() as session:
        if if_empty and session.scalar(select(func.count(Message.id))):
            return {"skipped": "the database already holds messages"}
        summary = _build(session, instance_dir, messages, constituents, seed)
    if not cluster:
        return summary
    # Campaign batches, as the clustering job would make them within 15 minutes of the mail arriving.
    from batching.batches import recluster

    with db.unit_of_work() as session:
        summary["batching"] = recluster(session).as_dict()
        summary["letters"] = _demo_letters(session)
        summary["history"] = _demo_history(session, Path(str(summary["truth"])), seed=seed)
        summary["paragraphs"] = _demo_paragraphs(session)
        summary["cases"] = _demo_cases(session, Path(str(summary["truth"])))
    return summary


def _demo_cases(session: Session, truth: Path, limit: int = 40) -> int:
    """Cases opened from the first casework letters; some with their release on file, some without."""
    from casework import cases
    from correspondence.models import CaseCategory, Staffer

    workers = list(session.scalars(select(Staffer).where(Staffer.role == Role.CASEWORKER).order_by(Staffer.id)))
    by_name = {c.name: c.id for c in session.scalars(select(CaseCategory))}
    if not workers or not by_name:
        return 0
    opened = 0
    with truth.open() as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("kind") != "casework" or row.get("category") not in by_name:
                continue
            message = session.get(Message, row["id"])
            if message is None or message.constituent_id is None:
                continue
            worker = workers[opened % len(workers)]
            case = cases.open_from_message(session, message.id, category_id=by_name[row["category"]],
                                           actor_id=worker.id, caseworker_id=worker.id)
            if opened % 2 == 0:
                name = f"{case.constituent.first_name or ''} {case.constituent.last_name or ''}".strip()
                cases.record_e_signature(session, case.id, typed_name=name or "Constituent", ip="198.51.100.7")
            opened += 1
            if opened >= limit:
                break
    return opened


def _demo_letters(session: Session) -> int:
    """The office's approved library (one letter per campaign and per everyday topic), and one new letter for
    the second-largest campaign waiting for the supervisor."""
    from correspondence.models import Batch, Staffer
    from drafting import letters

    supervisor = session.scalar(select(Staffer).where(Staffer.email == "maria.alvarez@mailroom.local"))
    writer = session.scalar(select(Staffer).where(Staffer.email == "devon.carter@mailroom.local"))
    if supervisor is None or writer is None:
        return 0
    made = len(_demo_library(session, writer.id, supervisor.id))
    # The library's approvals are the office's past: the writer read those notices long ago.
    from sqlalchemy import update

    from correspondence.models import Notice, utcnow

    session.execute(update(Notice).where(Notice.staffer_id == writer.id, Notice.read_at.is_(None))
                    .values(read_at=utcnow()))
    for i, batch in enumerate(session.scalars(select(Batch).order_by(Batch.member_count.desc()).limit(2))):
        if i == 0:
            continue  # the library answers the largest campaign; the queue shows a letter for the next one
        body = ("{{ constituent.salutation }}\n\nThank you for contacting me about " + batch.title.lower()
                + ". I read every letter from {{ constituent.city or 'our district' }}, and I appreciate "
                "hearing your views on this issue.\n\nI will keep your thoughts in mind as Congress takes up "
                "this question.\n\n{{ office.signature }}")
        version = letters.create_letter(session, title=f"Response: {batch.title}"[:300], body=body,
                                        topic_id=batch.topic_id, stance=batch.stance, actor_id=writer.id)
        letters.submit(session, version.id, actor_id=writer.id)
        made += 1
    return made


def _demo_library(session: Session, writer_id: int, supervisor_id: int) -> dict[str, int]:
    """Approved letters, keyed "campaign:<key>" or "topic:<name>" to the letter's id."""
    from demo import letters as L
    from drafting import letters

    topics = {t.name: t.id for t in session.scalars(select(Topic))}
    made: dict[str, int] = {}
    wanted: list[tuple[str, tuple[str, str], str, Stance | None, bool]]
    wanted = [(f"campaign:{key}", L.CAMPAIGN_LETTERS[key], topic, Stance(stance), True)
              for key, topic, stance, *_rest in T.CAMPAIGNS if key in L.CAMPAIGN_LETTERS]
    wanted += [(f"topic:{name}", L.TOPIC_LETTERS[name], name, None, False) for name in T.ORGANIC
               if name in L.TOPIC_LETTERS]
    for key, (title, paragraph), topic, stance, campaign in wanted:
        version = letters.create_letter(session, title=title, body=L.letter_body(title, paragraph, campaign=campaign),
                                        topic_id=topics.get(topic), stance=stance, actor_id=writer_id,
                                        tags=["campaign" if campaign else "general"])
        letters.submit(session, version.id, actor_id=writer_id)
        letters.approve(session, version.id, actor_id=supervisor_id)
        made[key] = version.letter_id
    return made


def _demo_history(session: Session, truth: Path, *, seed: int = 1) -> int:
    """The office's past answers: a sent Response for each older message the demo marked responded.

    A campaign copy was answered with its campaign's letter, a letter in the writer's own words with its
    topic's letter; one campaign copy in twelve on a topic that has a general letter got that one instead
    (offices are not perfectly consistent, and the suggestion should not look better than it is). Casework
    was answered by hand: no form letter. Inserted in bulk; the suggestion (drafting/choose.py) learns from it.
    """
    from sqlalchemy import insert, update
    from sqlalchemy.orm import selectinload

    from config import Settings
    from correspondence.models import FormLetter, LetterVersion, Response, ResponseMessage, ResponseState
    from demo import letters as L
    from drafting.apply import delivery_for
    from drafting.headers import header_text
    from drafting.render import Office, context, render

    keys = {title: f"campaign:{key}" for key, (title, _p) in L.CAMPAIGN_LETTERS.items()}
    keys.update({title: f"topic:{topic}" for topic, (title, _p) in L.TOPIC_LETTERS.items()})
    library = {keys[letter.title]: version for letter, version in session.execute(
        select(FormLetter, LetterVersion).join(LetterVersion, LetterVersion.id == FormLetter.current_version_id)
        .where(FormLetter.title.in_(list(keys)), FormLetter.one_off_message_id.is_(None)))}
    if not library:
        return 0
    with truth.open() as fh:
        truth_rows = {row["id"]: row for row in map(json.loads, fh)}
    campaign_topic = {key: topic for key, topic, *_rest in T.CAMPAIGNS}
    # The office as the settings describe it by default (the demo runs without the web app's settings).
    office = Office(name=Settings.office_name, member_name=Settings.member_name, signature=Settings.signature,
                    letterhead=Settings.letterhead)
    rng = random.Random(seed * 7919)
    now = datetime.now(UTC)
    rows: list[dict] = []
    used: dict[int, int] = {}
    first: dict[tuple[int | None, int], int] = {}  # (person, letter) -> the message their letter answered
    also: dict[int, int] = {}  # a later message -> the message whose letter also answered it
    responded = (select(Message).where(Message.status == MessageStatus.RESPONDED).order_by(Message.id)
                 .options(selectinload(Message.constituent), selectinload(Message.topic)))
    for message in session.scalars(responded):
        info = truth_rows.get(message.id) or {}
        version = None
        if info.get("kind") == "campaign":
            version = library.get(f"campaign:{info['campaign']}")
            general = library.get(f"topic:{campaign_topic.get(info['campaign'])}")
            if general is not None and rng.random() < 0.08:
                version = general
        elif info.get("kind") == "organic":
            version = library.get(f"topic:{info.get('topic')}")
        method = delivery_for(message)
        if version is None or method is None:
            continue
        person = (message.constituent_id, version.letter_id)
        if message.constituent_id is not None and person in first:
            # One letter per person: a later copy from someone who already had this letter is covered by it.
            also[message.id] = first[person]
            continue
        first[person] = message.id
        values = context(message, message.constituent, office)
        sent = min(now - timedelta(hours=1), message.received_at + timedelta(days=rng.uniform(2, 9)))
        rows.append({"message_id": message.id, "constituent_id": message.constituent_id, "version_id": version.id,
                     "letter_id": version.letter_id,
                     "method": method, "state": ResponseState.SENT,
                     "to_address": message.from_address if method.value == "email" else None,
                     "subject": header_text(render(version.subject, values))[:500] or "Your letter",
                     "body_text": render(version.body, values),
                     "email_message_id": f"<demo.{message.id}@house.example>",
                     "attempts": 1, "sent_at": sent, "created_at": sent})
        used[version.letter_id] = used.get(version.letter_id, 0) + 1
    for start in range(0, len(rows), 2000):
        session.execute(insert(Response), rows[start:start + 2000])
    answered = [row["message_id"] for row in rows]
    response_of: dict[int, int] = {}
    for start in range(0, len(answered), 900):
        response_of.update(session.execute(select(Response.message_id, Response.id)
                                           .where(Response.message_id.in_(answered[start:start + 900]))).all())
    links = [{"message_id": m, "response_id": r} for m, r in response_of.items()]
    links += [{"message_id": m, "response_id": response_of[f]} for m, f in also.items() if f in response_of]
    for start in range(0, len(links), 5000):
        session.execute(insert(ResponseMessage), links[start:start + 5000])
    for letter_id, count in used.items():
        session.execute(update(FormLetter).where(FormLetter.id == letter_id)
                        .values(usage_count=FormLetter.usage_count + count, last_used_at=now))
    record(session, actor_id=None, action="demo.history", object_type="office", object_id="demo",
           after={"responses": len(rows), "letters": len(used)})
    return len(rows)


# Standard paragraphs of the demo office: (title, topic or None for general, text).
DEMO_PARAGRAPHS = (
    ("Thanks for writing", None,
     "Thank you for contacting me about {{ message.subject }}. I read every letter from "
     "{{ constituent.city or 'our district' }}, and I appreciate hearing your views."),
    ("Keep in touch", None,
     "Please do not hesitate to contact my office again if I can be of help with this or any other matter."),
    ("Clean water", "Environmental Protection",
     "Every family deserves safe drinking water. I support funding to replace lead pipes and to hold "
     "polluters responsible for cleaning up our rivers and lakes."),
    ("Drug prices and Medicaid", "Health",
     "Health care costs weigh on too many families. I will keep working to lower prescription drug prices "
     "and to protect the coverage that seniors and children rely on."),
    ("Energy jobs", "Energy",
     "I support an energy policy that keeps bills affordable, creates good jobs here at home and protects "
     "our coast."),
    ("Public lands", "Public Lands and Natural Resources",
     "Our national forests and parks belong to all Americans. I will oppose efforts to sell off public lands "
     "and support keeping them open for hunting, fishing and recreation."),
    ("Open internet", "Science, Technology, Communications",
     "An open internet matters to small businesses, students and families. I support rules that keep "
     "internet providers from blocking or slowing lawful content."),
    ("Social Security", "Social Welfare",
     "Social Security is a promise to workers who paid into it their whole lives. I will oppose cuts to the "
     "benefits seniors have earned."),
)


def _demo_paragraphs(session: Session) -> int:
    """A handful of approved standard paragraphs for the office's main topics, and general ones."""
    from correspondence.models import Staffer
    from drafting import paragraphs

    supervisor = session.scalar(select(Staffer).where(Staffer.email == "maria.alvarez@mailroom.local"))
    writer = session.scalar(select(Staffer).where(Staffer.email == "devon.carter@mailroom.local"))
    if supervisor is None or writer is None:
        return 0
    topics = {t.name: t.id for t in session.scalars(select(Topic))}
    made = 0
    for title, topic, text in DEMO_PARAGRAPHS:
        if topic is not None and topic not in topics:
            continue
        revision = paragraphs.propose_paragraph(session, title=title, text=text, actor_id=writer.id,
                                                topic_id=topics[topic] if topic else None)
        paragraphs.approve_revision(session, revision.id, actor_id=supervisor.id)
        made += 1
    return made


def _demo_staff(session: Session) -> list[Staffer]:
    """The demo office's staff, created once (a second run finds them)."""
    staff: list[Staffer] = []
    for name, email, role in DEMO_STAFF:
        existing = session.scalar(select(Staffer).where(Staffer.email == email))
        staff.append(existing or create_staffer(session, name=name, email=email, role=role, actor_id=None)[0])
    return staff


def _demo_people(session: Session, rng: random.Random, fake: Faker, n_constituents: int) -> list[Person]:
    """The office's constituents (8% outside the district), each with an email or two and often a phone."""
    inside, outside = _district_zips()
    _office_zip_list(session, inside)
    people: list[Person] = []
    made: list[Constituent] = []  # people[i]'s record, whose id the flush below assigns
    used_emails: set[str] = set(session.scalars(select(ConstituentEmail.address)))
    for i in range(n_constituents):
        out = rng.random() < 0.08
        z = rng.choice(outside if out else inside)
        first, last = fake.first_name(), fake.last_name()
        street = fake.street_address()
        c = Constituent(prefix=rng.choice(("Mr.", "Ms.", "Mrs.", "Dr.", None, None)), first_name=first,
                        last_name=last, address1=street, city=z["city"].title(), state=z["state"],
                        zip5=z["zip_code"], zip4=f"{rng.randint(1, 9999):04d}" if rng.random() < 0.4 else None,
                        district_status=DistrictStatus.OUT_OF_DISTRICT if out else DistrictStatus.IN_DISTRICT)
        emails = []
        for k in range(2 if rng.random() < 0.1 else 1):
            domain = rng.choice(("gmail.com", "yahoo.com", "outlook.com", "aol.com", "icloud.com", "comcast.net"))
            address = f"{first}.{last}{rng.randint(1, 999) if k or rng.random() < 0.6 else ''}@{domain}".lower()
            while address in used_emails:
                address = f"{first}{last}{rng.randint(1000, 99999)}@{domain}".lower()
            used_emails.add(address)
            emails.append(address)
            c.emails.append(ConstituentEmail(address=address))
        phone = f"+1614{rng.randint(2000000, 9999999)}" if rng.random() < 0.7 else None
        if phone:
            c.phones.append(ConstituentPhone(number=phone))
        session.add(c)
        if i % 1000 == 999:
            session.flush()
        people.append(Person(0, first, last, emails, c.city or "", street, phone))
        made.append(c)
    session.flush()
    for p, made_record in zip(people, made, strict=True):
        p.constituent_id = made_record.id
    return people


def _build(session: Session, instance_dir: Path, n_messages: int, n_constituents: int,
           seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    topics = {t.name: t.id for t in session.scalars(select(Topic))}

    staff = _demo_staff(session)
    correspondents = [s for s in staff if s.role in (Role.CORRESPONDENT, Role.SUPERVISOR)]
    caseworkers = [s for s in staff if s.role == Role.CASEWORKER]

    people = _demo_people(session, rng, fake, n_constituents)

    # Campaign sizes fall off like real advocacy traffic: a few huge, many small.
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(T.CAMPAIGNS))]
    order = list(range(len(T.CAMPAIGNS)))
    rng.shuffle(order)
    # Some people write often: a skewed choice of sender.
    sender_weights = [rng.paretovariate(1.5) for _ in people]

    truth_path = instance_dir / "demo-truth.jsonl"
    instance_dir.mkdir(parents=True, exist_ok=True)
    counts = {"campaign": 0, "organic": 0, "casework": 0}
    batch: list[tuple[Message, dict]] = []
    with truth_path.open("w") as truth:
        for n in range(n_messages):
            person = rng.choices(people, weights=sender_weights)[0]
            received = now - timedelta(days=rng.triangular(0, 60, 0), seconds=rng.randint(0, 86400))
            roll = rng.random()
            campaign_key = None
            stance = None
            if roll < 0.72:
                campaign = T.CAMPAIGNS[order[rng.choices(range(len(T.CAMPAIGNS)), weights=weights)[0]]]
                campaign_key, topic_name, stance_value, org = campaign[0], campaign[1], campaign[2], campaign[3]
                subject, text = _campaign_copy(rng, campaign, person)
                channel = rng.choices((Channel.CWC, Channel.WEBFORM, Channel.EMAIL), weights=(4, 3, 3))[0]
                stance = Stance(stance_value) if channel == Channel.CWC else None
                kind = "campaign"
                if channel == Channel.EMAIL and rng.random() < 0.5:
                    text += f"\n\n--\nSent via {org} action center"
            elif roll < 0.94:
                topic_name = rng.choice(list(T.ORGANIC))
                subject, text = _organic(rng, topic_name, person, fake)
                channel = rng.choices((Channel.EMAIL, Channel.WEBFORM, Channel.POSTAL, Channel.PHONE,
                                       Channel.SOCIAL), weights=(5, 3, 1, 1, 1))[0]
                kind = "organic"
            else:
                category, subject, body = rng.choice(T.CASEWORK)
                own = [_own_sentence(rng, fake, person) for _ in range(rng.randint(2, 4))]
                pos = rng.randrange(len(own) + 1)
                subject = _fill(rng, subject, person)
                text = _letter(rng, person, own[:pos] + [_fill(rng, body, person)] + own[pos:])
                topic_name = {"Veterans Affairs": "Armed Forces and National Security",
                              "Passports": "International Affairs", "Immigration": "Immigration",
                              "Medicare/Medicaid": "Health"}.get(category, "Social Welfare")
                channel = rng.choice((Channel.EMAIL, Channel.PHONE, Channel.WEBFORM))
                kind = "casework"
            counts[kind] += 1
            address = rng.choice(person.emails)
            raw = _raw_email(person, address, subject, text, received) if channel == Channel.EMAIL else None
            message = Message(
                idempotency_key=f"demo:{seed}:{n}", channel=channel, received_at=received,
                from_name=f"{person.first} {person.last}", from_address=address, subject=subject or "",
                body_text=text, raw_sha256=store_blob(session, raw, "message/rfc822") if raw else None,
                constituent_id=person.constituent_id, stance=stance, processed_at=received,
                topic_id=topics[topic_name] if channel == Channel.CWC or rng.random() < 0.3 else None,
                due_at=received + timedelta(days=14 if kind != "casework" else 5),
            )
            _demo_status(rng, message, now, correspondents, caseworkers if kind == "casework" else correspondents)
            session.add(message)
            info = {"campaign": campaign_key, "kind": kind, "topic": topic_name}
            if kind == "casework":
                info["category"] = category
            batch.append((message, info))
            if len(batch) >= 1000:
                _flush(session, batch, truth)
        _flush(session, batch, truth)
    record(session, actor_id=None, action="demo.loaded", object_type="office", object_id="demo",
           after={"messages": n_messages, "constituents": n_constituents, "seed": seed})
    return {"messages": n_messages, "constituents": n_constituents, **counts, "staff": len(staff),
            "campaigns": len(T.CAMPAIGNS), "truth": str(truth_path)}


def _demo_status(rng: random.Random, message: Message, now: datetime, staff: list[Staffer],
                 owners: list[Staffer]) -> None:
    """Older mail has mostly been answered; recent mail is waiting, some of it assigned."""
    age = (now - message.received_at).days
    roll = rng.random()
    if age > 10 and roll < 0.7:
        message.status = rng.choice((MessageStatus.RESPONDED, MessageStatus.CLOSED))
        message.assignee_id = rng.choice(owners).id
    elif roll < 0.35:
        message.status = rng.choice((MessageStatus.ASSIGNED, MessageStatus.ASSIGNED, MessageStatus.IN_PROGRESS))
        message.assignee_id = rng.choice(owners).id
    else:
        message.status = MessageStatus.NEW


def _flush(session: Session, batch: list[tuple[Message, dict]], truth) -> None:
    session.flush()
    for message, info in batch:
        truth.write(json.dumps({"id": message.id, "idempotency_key": message.idempotency_key, **info}) + "\n")
    batch.clear()
