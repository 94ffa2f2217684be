"""Write the demo office's letters with their true campaign as JSONL (id, text, label) for batching.

    python bench/demo_corpus.py --messages 10000 --seed 1 --out /tmp/demo.jsonl

Builds the demo office in a temporary SQLite database and joins it with its truth file. Casework
and organic letters get no label (they belong to no campaign).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from correspondence.db import Database  # noqa: E402
from correspondence.migrate import upgrade  # noqa: E402
from correspondence.models import Message  # noqa: E402
from demo.office import build_demo_office  # noqa: E402


def write_corpus(messages: int, seed: int, out: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="mailroom-demo-corpus-"))
    url = f"sqlite:///{work / 'demo.db'}"
    upgrade(url)
    db = Database(url, blob_dir=work / 'blobs')
    summary = build_demo_office(db, work, messages=messages, constituents=max(500, messages // 4), seed=seed,
                                cluster=False)
    truth = {}
    with open(str(summary["truth"])) as fh:
        for line in fh:
            row = json.loads(line)
            truth[row["id"]] = row["campaign"]
    with db.unit_of_work() as s, out.open("w") as fh:
        for message_id, text in s.execute(select(Message.id, Message.body_text).order_by(Message.id)):
            fh.write(json.dumps({"id": message_id, "text": text, "label": truth.get(message_id) or ""}) + "\n")
    db.dispose()
    return messages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    write_corpus(args.messages, args.seed, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
