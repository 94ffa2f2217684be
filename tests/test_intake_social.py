import json

from sqlalchemy import select

from correspondence.models import Channel, Message, MessageStatus
from intake.importer import import_items
from intake.registry import file_adapter


def _import(database, paths):
    reader, adapter = file_adapter("social")
    return import_items(database, reader(paths), adapter, source="file:social", max_bytes=1_000_000)


def test_csv_and_json_exports(database, session, tmp_path):
    (tmp_path / "fb.csv").write_text(
        "author,handle,text,url,time,platform\n"
        "Jo Smith,@jo,Fix Route 9 now!,https://social.example/p/1,2026-11-20T10:00:00Z,Facebook\n"
        "Sam Lee,@sam,,https://social.example/p/2,2026-11-20T11:00:00Z,Facebook\n")
    (tmp_path / "x.json").write_text(json.dumps([
        {"username": "@pat", "comment": "Thanks for the town hall", "permalink": "https://x.example/s/9",
         "created_at": "1763632800"}]))
    (tmp_path / "broken.json").write_text("[{not json")
    summary = _import(database, [tmp_path])
    assert (summary.received, summary.quarantined, summary.failed) == (3, 1, 1)
    messages = {m.external_id: m for m in session.scalars(select(Message))}
    jo = messages["https://social.example/p/1"]
    assert jo.channel == Channel.SOCIAL and jo.from_name == "Jo Smith" and jo.constituent_id is None
    assert jo.received_at.isoformat().startswith("2026-11-20T10:00")
    assert messages["https://social.example/p/2"].status == MessageStatus.QUARANTINED
    assert messages["https://x.example/s/9"].from_name == "@pat"
    again = _import(database, [tmp_path / "fb.csv", tmp_path / "x.json"])
    assert again.duplicates == 3 and again.received == 0
