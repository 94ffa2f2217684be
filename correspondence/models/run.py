"""The state of a job-like row (an apply-to-all run, a CSV import, a report): one enum for all three."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


class RunState(enum.StrEnum):
    UPLOADED = "uploaded"  # a CSV import waiting for a person to map its columns
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def run_state_type() -> Enum:
    """The column type: the same VARCHAR(20) the strings were stored in, now with a CHECK of the values
    (migration 0017); a StrEnum, so code and templates comparing with the old strings still match."""
    return Enum(RunState, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
                validate_strings=True, create_constraint=True, name="run_state")
