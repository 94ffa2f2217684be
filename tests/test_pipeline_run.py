"""intake.pipeline.run: a chunk of messages through the stages, a stage with process_many called once."""

from __future__ import annotations

from correspondence.models import Message, MessageStatus
from intake.pipeline import STAGES, Context, StageFailed, process_message, run


class Refuse:
    """Fails the messages whose subject says so, as a stage that finds a message unusable does."""

    name = "refuse"

    def process(self, message: Message, ctx: Context) -> None:
        if message.subject == "refuse me":
            raise StageFailed("not readable")


class Many:
    """Records how it was called: once per chunk through run, once per message through process_message."""

    name = "many"

    def __init__(self) -> None:
        self.calls: list[list[str | None]] = []

    def process(self, message: Message, ctx: Context) -> None:
        self.calls.append([message.subject])

    def process_many(self, messages: list[Message], ctx: Context) -> None:
        self.calls.append([m.subject for m in messages])


class Stamp:
    """A later one-at-a-time stage: it must see every message still going, after the chunk-wide stage."""

    name = "stamp"

    def __init__(self, many: Many) -> None:
        self.many = many
        self.seen: list[tuple[str | None, int]] = []

    def process(self, message: Message, ctx: Context) -> None:
        self.seen.append((message.subject, len(self.many.calls)))


def test_run_calls_process_many_once_for_the_messages_still_going(session, factory):
    keep = [factory.message(subject=f"keep {i}") for i in range(3)]
    bad = factory.message(subject="refuse me")
    done = factory.message(subject="already done", status=MessageStatus.QUARANTINED)
    many = Many()
    stamp = Stamp(many)
    run([keep[0], bad, keep[1], done, keep[2]], Context(session), (Refuse(), many, stamp))
    assert many.calls == [["keep 0", "keep 1", "keep 2"]]  # one call, without the failed or finished ones
    assert stamp.seen == [("keep 0", 1), ("keep 1", 1), ("keep 2", 1)]  # after the chunk-wide stage
    assert all(m.processed_at is not None and m.status == MessageStatus.NEW for m in keep)
    assert bad.status == MessageStatus.QUARANTINED and bad.status_reason == "refuse: not readable"
    assert bad.processed_at is not None
    assert done.processed_at is None  # quarantined before: left alone


def test_process_message_uses_the_one_at_a_time_path(session, factory):
    message = factory.message(subject="single")
    many = Many()
    process_message(session, message.id, (many,))
    assert many.calls == [["single"]] and message.processed_at is not None


def test_the_suggest_stage_takes_the_chunk_at_once():
    assert [s.name for s in STAGES if hasattr(s, "process_many")] == ["suggest"]
