"""The message status state machine: every allowed move, and who may make it, in two tables."""

from __future__ import annotations

from correspondence.errors import InvalidTransition, PermissionDenied
from correspondence.models.message import MessageStatus as S
from correspondence.models.staffer import Role

MESSAGE_TRANSITIONS: dict[S, frozenset[S]] = {
    # An approved letter made for a message moves it to ANSWER_QUEUED; it becomes RESPONDED only when the
    # answer has left (the SMTP server took the email, or the run's print file was made). A person may
    # record a message they are working on as RESPONDED when they answered it outside Mailroom (by phone,
    # by hand); a message still waiting for approval cannot skip it.
    S.NEW: frozenset({S.ASSIGNED, S.ANSWER_QUEUED, S.CLOSED, S.QUARANTINED, S.ARCHIVED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.NEW, S.IN_PROGRESS, S.ANSWER_QUEUED, S.CLOSED, S.ARCHIVED}),
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.ASSIGNED, S.AWAITING_APPROVAL, S.ANSWER_QUEUED, S.RESPONDED,
                              S.CLOSED, S.ARCHIVED}),
    S.AWAITING_APPROVAL: frozenset({S.IN_PROGRESS, S.ANSWER_QUEUED}),
    # A person takes an answer-queued message back (e.g. its letter failed), or closes it.
    S.ANSWER_QUEUED: frozenset({S.RESPONDED, S.IN_PROGRESS, S.CLOSED}),
    S.RESPONDED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset({S.IN_PROGRESS, S.ARCHIVED}),
    S.QUARANTINED: frozenset({S.NEW, S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.NEW}),
}

# Statuses an approved letter may answer (apply to all, a one-off reply).
ANSWERABLE = frozenset(s for s, targets in MESSAGE_TRANSITIONS.items() if S.ANSWER_QUEUED in targets)

ANY_STAFF = frozenset(Role)
SYSTEM_ONLY: frozenset[Role] = frozenset()
# Mail triage: the people who work the quarantine (the page of the same name is theirs too).
TRIAGE = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT})

# Who may make a move, where it is narrower than "any active staffer"; (None, target) means from
# any status. Quarantined mail is untrusted input a person has not yet looked at: only triage
# staff may let it into the inbox or put it away. An archived message may once have been
# quarantined, so bringing one back is theirs as well (otherwise archive-then-restore would be a
# way round the first rule). The system (no actor: intake, jobs) may make every allowed move.
MESSAGE_MOVE_ROLES: dict[tuple[S | None, S], frozenset[Role]] = {
    (S.QUARANTINED, S.NEW): TRIAGE,
    (S.QUARANTINED, S.ARCHIVED): TRIAGE,
    (S.ARCHIVED, S.NEW): TRIAGE,
    (None, S.QUARANTINED): TRIAGE,
    # Only the system says an answer has left: the send job when the server takes the email, the run
    # when its print file is made (a person settling an uncertain letter goes through the letter).
    (S.ANSWER_QUEUED, S.RESPONDED): SYSTEM_ONLY,
}


def can_move(current: S, target: S) -> bool:
    return target in MESSAGE_TRANSITIONS[current]


def check_move(current: S, target: S) -> None:
    """Raise InvalidTransition unless the table allows current -> target."""
    if not can_move(current, target):
        raise InvalidTransition(f"a message cannot go from {current.value} to {target.value}")


def roles_for_move(current: S, target: S) -> frozenset[Role]:
    for key in ((current, target), (None, target)):
        if key in MESSAGE_MOVE_ROLES:
            return MESSAGE_MOVE_ROLES[key]
    return ANY_STAFF


def may_move(current: S, target: S, role: Role | None) -> bool:
    """Whether a staffer with this role (None: the system) may make the move; the table must allow it too."""
    return can_move(current, target) and (role is None or role in roles_for_move(current, target))


def check_actor(current: S, target: S, role: Role | None) -> None:
    """Raise PermissionDenied unless this role (None: the system) may move a message current -> target."""
    if role is not None and role not in roles_for_move(current, target):
        allowed = ", ".join(sorted(r.value for r in roles_for_move(current, target))) or "the system"
        raise PermissionDenied(f"a {role.value} may not move a message from {current.value} to {target.value} "
                               f"(only {allowed})")
