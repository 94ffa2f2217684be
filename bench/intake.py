"""Intake benchmark: emails per second parsed, persisted and processed end to end, and peak memory.

    python bench/intake.py [--messages 20000] [--mbox-mb 0] [--database-url URL]

Writes an mbox of realistic letters, imports it with exactly the code `mailroom import mbox` runs
(stream, receive once, run the pipeline, commit in batches), and prints one JSON object, also
written to bench/results/intake-<backend>.json. With --mbox-mb N the mbox is grown to N megabytes
(padding each letter with a long quoted reply) to show that memory stays flat however large it is.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from intake.files import iter_mbox  # noqa: E402
from intake.importer import import_items  # noqa: E402
from intake.mail import incoming_email  # noqa: E402
from intake.pipeline import Rules  # noqa: E402

SENTENCES = ("I am writing to urge you to support the bill.", "Our town needs the bridge repaired.",
             "Please protect Social Security for seniors.", "The clinic in our county is closing.",
             "Student loans are crushing my family.", "We need more teachers in our schools.",
             "Thank you for your work on behalf of veterans.", "Please vote against the cuts.")


def write_mbox(path: Path, n: int, target_bytes: int, seed: int = 5) -> int:
    rng = random.Random(seed)
    pad = ""
    if target_bytes:
        pad = "\n\nOn Mon, Nov 9, 2026 the office wrote:\n" + "> " + ("quoted reply text " * 40 + "\n> ") * 3
    written = 0
    with path.open("w") as fh:
        i = 0
        while i < n or written < target_bytes:
            body = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(3, 9)))
            msg = (f"From person{i}@example.org Mon Nov  9 10:00:00 2026\n"
                   f"From: Person {i} <person{i % 5000}@example.org>\nTo: office@house.example\n"
                   f"Subject: Letter {i}\nDate: Mon, 09 Nov 2026 10:00:00 -0500\n"
                   f"Message-ID: <bench-{i}@example.org>\nContent-Type: text/plain; charset=utf-8\n\n"
                   f"Dear Representative,\n\n{body}{pad}\n\nSincerely,\nPerson {i}\n\n")
            fh.write(msg)
            written += len(msg)
            i += 1
    return i


TOPIC_OF = {0: "Government Operations and Politics", 1: "Transportation and Public Works", 2: "Social Welfare",
            3: "Health", 4: "Education", 5: "Education", 6: "Armed Forces and National Security",
            7: "Government Operations and Politics"}


def train_model(db: Database) -> None:
    """400 coded letters (one sentence's topic each) and a trained model, as an office would have."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from coding.suggest import train
    from correspondence.models import Message, Stance, Topic

    rng = random.Random(9)
    with db.unit_of_work() as s:
        topics = {t.name: t.id for t in s.scalars(select(Topic))}
        for i in range(400):
            k = i % len(SENTENCES)
            body = " ".join([SENTENCES[k]] * 2 + [rng.choice(SENTENCES)])
            s.add(Message(idempotency_key=f"coded:{i}", channel="email", received_at=datetime.now(UTC),
                          subject=f"Coded {i}", body_text=body, topic_id=topics[TOPIC_OF[k]], topic_source="staff",
                          stance=Stance.SUPPORT if k % 2 else Stance.OPPOSE, processed_at=datetime.now(UTC)))
        s.flush()
        train(s, actor_id=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--mbox-mb", type=int, default=0)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--with-model", action="store_true",
                    help="train a topic/stance model on 400 coded letters first, so every letter gets suggestions")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-intake-bench-"))
    settings = Settings.from_env({}, instance_dir=work, database_url=args.database_url or f"sqlite:///{work / 'b.db'}",
                                 secret_key="bench", redis_url="redis://unused")
    upgrade(settings.database_url)
    db = Database.from_settings(settings)
    mbox = work / "bench.mbox"
    n = write_mbox(mbox, args.messages, args.mbox_mb * 1024 * 1024)
    size_mb = mbox.stat().st_size / 1048576
    if args.with_model:
        train_model(db)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    summary = import_items(db, iter_mbox([mbox]), incoming_email, source="bench", max_bytes=settings.max_message_bytes,
                           rules=Rules(autocode_confidence=0.95 if args.with_model else 0.0))
    seconds = time.perf_counter() - t0
    out = {"backend": db.engine.dialect.name, "messages": n, "mbox_mb": round(size_mb, 1),
           "received": summary.received, "duplicates": summary.duplicates, "failed": summary.failed,
           "seconds": round(seconds, 1), "messages_per_second": round(n / seconds, 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_before_import_mb": round(rss_before, 1)}
    print(json.dumps(out, indent=2))
    out["with_model"] = args.with_model
    suffix = (f"-{args.mbox_mb}mb" if args.mbox_mb else "") + ("-model" if args.with_model else "")
    dest = Path(__file__).parent / "results" / f"intake-{out['backend']}{suffix}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
