"""The message status state machine: every allowed move, in one table."""

from __future__ import annotations

from correspondence.errors import InvalidTransition
from correspondence.models.message import MessageStatus as S

MESSAGE_TRANSITIONS: dict[S, frozenset[S]] = {
    # NEW and ASSIGNED may go straight to RESPONDED: an approved form letter answers them (apply to all).
    S.NEW: frozenset({S.ASSIGNED, S.RESPONDED, S.CLOSED, S.QUARANTINED, S.ARCHIVED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.NEW, S.IN_PROGRESS, S.RESPONDED, S.CLOSED, S.ARCHIVED}),
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.ASSIGNED, S.AWAITING_APPROVAL, S.RESPONDED, S.CLOSED, S.ARCHIVED}),
    S.AWAITING_APPROVAL: frozenset({S.IN_PROGRESS, S.RESPONDED}),
    S.RESPONDED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset({S.IN_PROGRESS, S.ARCHIVED}),
    S.QUARANTINED: frozenset({S.NEW, S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.NEW}),
}


def can_move(current: S, target: S) -> bool:
    return target in MESSAGE_TRANSITIONS[current]


def check_move(current: S, target: S) -> None:
    """Raise InvalidTransition unless the table allows current -> target."""
    if not can_move(current, target):
        raise InvalidTransition(f"a message cannot go from {current.value} to {target.value}")
