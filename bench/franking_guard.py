"""The mass-mail guard's count on a follow-up: the dry run, the refused start, and the old exact recount.

    python bench/franking_guard.py [--people 2000] [--database-url URL]

A segment of --people constituents (email for most, a postal address for some, a few suppressed, a few
with neither) and an approved letter, on a fresh SQLite file (or --database-url, an empty database).
Times, wall and CPU: the follow-up dry run (constituents.segments.follow_up_plan, which counts with
outbound.franking.pieces_for_people); the start of that follow-up refused above the threshold (what the
POST does: outbound.franking.unsolicited_pieces, a few aggregate queries); and, for comparison, the
exact walk the refused start used to run inside the POST (drafting.apply.plan over the same messages).
Checks the dry run's count and the refusal's are the same number. Writes bench/results/franking_guard.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from constituents import segments  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.errors import PermissionDenied  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import (  # noqa: E402
    Constituent,
    ConstituentEmail,
    LetterVersion,
    Role,
    Staffer,
    Suppression,
    SuppressionReason,
)
from drafting import letters  # noqa: E402
from drafting.apply import plan, start_run  # noqa: E402
from outbound import franking  # noqa: E402

BODY = "{{ constituent.salutation }}\n\nThe water bill passed the House today.\n\n{{ office.signature }}"
TODAY = date(2026, 6, 1)


def _timed(fn):
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, {"wall": round(time.perf_counter() - started, 3), "cpu": round(time.process_time() - cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailroom-franking-"))
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    upgrade(url)
    db = Database(url, blob_dir=work / "blobs")
    rules = franking.Rules(threshold=499, timezone="UTC")
    with db.unit_of_work() as s:
        writer = Staffer(name="Writer", email="w@example.org", role=Role.CORRESPONDENT, password_hash="x")
        boss = Staffer(name="Boss", email="b@example.org", role=Role.SUPERVISOR, password_hash="x")
        s.add_all([writer, boss])
        s.flush()
        version = letters.create_letter(s, title="Water bill", body=BODY, actor_id=writer.id)
        letters.submit(s, version.id, actor_id=writer.id)
        letters.approve(s, version.id, actor_id=boss.id)
        for i in range(args.people):
            c = Constituent(first_name=f"P{i}", last_name="Bench", zip5="99901", state="AK", city="Juneau",
                            address1=f"{i} Main St" if i % 10 == 0 else None)
            if i % 25 != 0:
                c.emails.append(ConstituentEmail(address=f"p{i}@example.org"))
            s.add(c)
            if i % 100 == 7:
                s.add(Suppression(address=f"p{i}@example.org", reason=SuppressionReason.UNSUBSCRIBED, soft_bounces=0))
        segment = segments.save_segment(s, "Bench", segments.parse_filter({"zips": "99901"}), actor_id=writer.id)
        version_id, segment_id, writer_id = version.id, segment.id, writer.id
    with db.unit_of_work() as s:
        segment = segments.get_segment(s, segment_id)
        sending = s.get(LetterVersion, version_id)
        flt = segments.SegmentFilter.from_dict(segment.filters)
        dry, dry_t = _timed(lambda: segments.follow_up_plan(s, flt, rules=rules, version=sending, today=TODAY))
        ids = segments.follow_up_messages(s, segment, version_id, "Follow-up", actor_id=writer_id)
        s.flush()

        def refused() -> str:
            try:
                start_run(s, version_id, message_ids=ids, actor_id=writer_id, rules=rules, today=TODAY)
            except PermissionDenied as exc:
                return str(exc)
            return ""

        refusal, refusal_t = _timed(refused)
        walk, walk_t = _timed(lambda: plan(s, ids, version_id=version_id, rules=rules, today=TODAY))
        s.rollback()
    said = re.search(r"make ([\d,]+) nearly identical", refusal)
    result = {"people": args.people, "database": url.split(":", 1)[0],
              "dry_run_pieces": dry["franking"].pieces,
              "refusal_pieces": int(said.group(1).replace(",", "")) if said else None,
              "walk_letters": walk.letters,
              "follow_up_dry_run_seconds": dry_t, "refused_start_seconds": refusal_t,
              "old_exact_recount_walk_seconds": walk_t}
    result["same_number"] = result["dry_run_pieces"] == result["refusal_pieces"]
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results" / "franking_guard.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
