"""State machines: one helper for every stateful object, and the tables of the kernel's own objects.

A ``StateMachine`` holds an enum, its transition table (every allowed move, and nothing else), who
may make a move where that is narrower than "any active staffer", and how the object is named in the
audit log. ``move`` is the only way a state changes: it checks the move is allowed
(``InvalidTransition``), checks the actor may make it (``PermissionDenied``), sets the state, writes
the audit event (who, what, before -> after) and flushes. ``check`` is the same check for the few
paths that move many rows in one statement (they audit with ``record_many``).

The machines of messages and of job-like runs (apply to all, CSV imports, reports) live here; letter
versions, standard paragraphs and responses in ``drafting``, cases in ``casework`` — each built with
this one helper.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from correspondence.errors import InvalidTransition, PermissionDenied
from correspondence.models import RunState, Staffer
from correspondence.models.message import MessageStatus as S
from correspondence.models.staffer import Role
from correspondence.services.audit import record

E = TypeVar("E", bound=enum.Enum)
Obj = TypeVar("Obj")  # the object a machine moves

ANY_STAFF = frozenset(Role)
SYSTEM_ONLY: frozenset[Role] = frozenset()


def _words(state: enum.Enum) -> str:
    return str(state.value).replace("_", " ")


class StateMachine(Generic[E]):
    """The allowed moves of one enum-valued column, who may make them, and the audited move itself.

    ``move_roles`` maps (current, target) — or (None, target) for "from any state" — to the roles that
    may make that move; moves not listed are open to every staffer (nobody is looked up, so a job
    started by someone since deactivated finishes), and the system (no actor: intake, jobs) may make
    every allowed move. ``refusal`` words a refused move; it is formatted with
    ``noun``, ``current`` and ``target`` (the enum members) and ``was``/``to`` (their values in words).
    """

    def __init__(self, states: type[E], transitions: Mapping[E, Iterable[E]], object_type: str, *,
                 field: str = "state", move_roles: Mapping[tuple[E | None, E], frozenset[Role]] | None = None,
                 audit_action: str | None = None, noun: str | None = None,
                 refusal: str = "a {noun} that is {was} cannot become {to}") -> None:
        table = {state: frozenset(targets) for state, targets in transitions.items()}
        if set(table) != set(states):
            missing = ", ".join(sorted(str(s.value) for s in set(states) - set(table)))
            raise ValueError(f"{object_type}: every state needs a row in the table (missing: {missing})")
        if any(not isinstance(t, states) for targets in table.values() for t in targets):
            raise ValueError(f"{object_type}: a move goes to something that is not a {states.__name__}")
        self.states = states
        self.transitions: dict[E, frozenset[E]] = table
        self.object_type = object_type
        self.field = field
        self.move_roles: dict[tuple[E | None, E], frozenset[Role]] = dict(move_roles or {})
        self.audit_action = audit_action
        self.noun = noun or object_type.replace("_", " ")
        self.refusal = refusal

    def can(self, current: E, target: E) -> bool:
        return target in self.transitions[current]

    def sources(self, target: E) -> frozenset[E]:
        """The states from which the table allows a move to ``target``."""
        return frozenset(s for s, targets in self.transitions.items() if target in targets)

    def roles_for(self, current: E, target: E) -> frozenset[Role]:
        for key in ((current, target), (None, target)):
            if key in self.move_roles:
                return self.move_roles[key]
        return ANY_STAFF

    def may(self, current: E, target: E, role: Role | None) -> bool:
        """Whether a staffer with this role (None: the system) may make the move; the table must allow it too."""
        return self.can(current, target) and (role is None or role in self.roles_for(current, target))

    def check(self, current: E, target: E, actor_role: Role | None = None) -> None:
        """Raise InvalidTransition unless the table allows current -> target, then PermissionDenied unless
        this role (None: the system) may make it."""
        if not self.can(current, target):
            raise InvalidTransition(self.refusal.format(noun=self.noun, current=current, target=target,
                                                        was=_words(current), to=_words(target)))
        self.check_role(current, target, actor_role)

    def check_role(self, current: E, target: E, role: Role | None) -> None:
        """Raise PermissionDenied unless this role (None: the system) may make the move current -> target."""
        if role is not None and role not in self.roles_for(current, target):
            allowed = ", ".join(sorted(r.value for r in self.roles_for(current, target))) or "the system"
            raise PermissionDenied(f"a {role.value} may not move a {self.noun} from {current.value} to "
                                   f"{target.value} (only {allowed})")

    def check_actor(self, session: Session, current: E, target: E, actor_id: int | None) -> None:
        """PermissionDenied unless the actor may make this (allowed) move. A move kept for some roles needs an
        active staffer with one of them; moves open to every staffer look nobody up, so a job started by
        someone since deactivated finishes."""
        if actor_id is None or self.roles_for(current, target) == ANY_STAFF:
            return
        actor = session.get(Staffer, actor_id)
        if actor is None or not actor.active:
            raise PermissionDenied("an active staff account is needed")
        self.check_role(current, target, actor.role)

    def move(self, session: Session, obj: Obj, target: E, *, actor_id: int | None, action: str | None = None,
             detail: str | None = None, before: Mapping[str, Any] | None = None,
             after: Mapping[str, Any] | None = None, on_behalf_of_id: int | None = None) -> Obj:
        """Make one allowed move, by someone allowed to make it; audit it (before -> after, plus the extra
        fields given) and flush. ``on_behalf_of_id`` names the staffer a delegate decided for."""
        current = getattr(obj, self.field)
        self.check(current, target)
        self.check_actor(session, current, target, actor_id)
        name = action or self.audit_action
        if name is None:
            raise ValueError(f"{self.object_type}: a move needs an audit action")
        setattr(obj, self.field, target)
        object_id = getattr(obj, "id")  # noqa: B009 - every stateful model has an integer id
        if object_id is None:
            session.flush()
            object_id = getattr(obj, "id")  # noqa: B009
        event = record(session, actor_id=actor_id, action=name, object_type=self.object_type, object_id=object_id,
                       before={self.field: current.value, **(before or {})},
                       after={self.field: target.value, **(after or {})}, detail=detail)
        if on_behalf_of_id is not None and event.on_behalf_of_id is None:
            event.on_behalf_of_id = on_behalf_of_id
        session.flush()
        return obj


# --- messages -------------------------------------------------------------------------------------

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

MESSAGES: StateMachine[S] = StateMachine(S, MESSAGE_TRANSITIONS, "message", field="status",
                                         move_roles=MESSAGE_MOVE_ROLES,
                                         refusal="a message cannot go from {current.value} to {target.value}")

# Statuses an approved letter may answer (apply to all, a one-off reply).
ANSWERABLE = MESSAGES.sources(S.ANSWER_QUEUED)


def can_move(current: S, target: S) -> bool:
    return MESSAGES.can(current, target)


def check_move(current: S, target: S) -> None:
    """Raise InvalidTransition unless the table allows current -> target."""
    MESSAGES.check(current, target)


def roles_for_move(current: S, target: S) -> frozenset[Role]:
    return MESSAGES.roles_for(current, target)


def may_move(current: S, target: S, role: Role | None) -> bool:
    """Whether a staffer with this role (None: the system) may make the move; the table must allow it too."""
    return MESSAGES.may(current, target, role)


def check_actor(current: S, target: S, role: Role | None) -> None:
    """Raise PermissionDenied unless this role (None: the system) may move a message current -> target."""
    MESSAGES.check_role(current, target, role)


# --- job-like runs: apply to all, CSV imports, reports ----------------------------------------------

R = RunState
RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # An import waits, uploaded, for a person to map its columns; runs and reports start queued.
    R.UPLOADED: frozenset({R.QUEUED}),
    R.QUEUED: frozenset({R.RUNNING, R.FAILED}),
    # A job may run twice (the sweeper, a retry): it picks a running or failed run up where it stopped.
    R.RUNNING: frozenset({R.RUNNING, R.DONE, R.FAILED}),
    R.FAILED: frozenset({R.RUNNING, R.FAILED}),
    R.DONE: frozenset(),
}


def run_machine(object_type: str, noun: str) -> StateMachine[RunState]:
    """The machine of one job-like table (each names its rows in the audit log its own way)."""
    return StateMachine(RunState, RUN_TRANSITIONS, object_type, noun=noun)


APPLY_RUNS = run_machine("apply_run", "run")
IMPORTS = run_machine("constituent_import", "import")
REPORTS = run_machine("report_run", "report")
