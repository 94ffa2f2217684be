"""How long choosing a letter takes on a demo office: training the suggestion, ranking, the preview.

    mailroom demo                       # once, on a scratch instance (MAILROOM_INSTANCE_DIR=...)
    python bench/choose_letter.py       # same environment; reads the database, writes nothing to it

Times (wall clock and CPU, this process): the first ranking of the largest batch (it trains the office's
suggestion model), the same ranking again (the model is cached per process), the suggestion for one
message, check_choice (what the POST runs), and the three-recipient preview of the suggested letter.
Prints JSON and writes bench/results/choose_letter.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from config import Settings  # noqa: E402
from correspondence.db import Database  # noqa: E402
from correspondence.models import Batch, Message  # noqa: E402
from drafting import choose  # noqa: E402
from drafting.apply import batch_message_ids  # noqa: E402


def _timed(fn):
    """(value, {"wall": s, "cpu": s}): on a shared machine the CPU time is the fairer figure."""
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, {"wall": round(time.perf_counter() - started, 3), "cpu": round(time.process_time() - cpu, 3)}


def main() -> None:
    settings = Settings.from_env()
    db = Database.from_settings(settings)
    session = Session(bind=db.engine)
    try:
        batch = session.scalar(select(Batch).order_by(Batch.member_count.desc()).limit(1))
        if batch is None:
            sys.exit("no batch: run `mailroom demo` on this instance first")
        ids = batch_message_ids(session, batch.id)
        ranked, cold = _timed(lambda: choose.rank_letters(session, ids, batch_id=batch.id))
        _again, warm = _timed(lambda: choose.rank_letters(session, ids, batch_id=batch.id))
        one = session.scalar(select(Message.id).where(Message.batch_id.is_(None)).order_by(Message.id.desc()))
        assert one is not None
        _s, single = _timed(lambda: choose.suggest_for_message(session, one))
        _c, check = _timed(lambda: choose.check_choice(session, ranked[0].version.id, ids, batch.id, False))
        previews, shown = _timed(lambda: choose.preview(session, ranked[0].version.id, ids, settings))
        texts, _labels = choose.history(session)
        result = {"batch": batch.title, "batch_messages": len(ids), "history": len(texts),
                  "letters": len(ranked), "suggested": next((r.title for r in ranked if r.suggested), None),
                  "rank_first_seconds_with_training": cold, "rank_cached_seconds": warm,
                  "suggest_one_message_seconds": single, "check_choice_seconds": check,
                  "preview_seconds": shown, "preview_recipients": [p.why for p in previews]}
    finally:
        session.rollback()
        session.close()
        db.dispose()
    print(json.dumps(result, indent=1))
    out = Path(__file__).resolve().parent / "results" / "choose_letter.json"
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
