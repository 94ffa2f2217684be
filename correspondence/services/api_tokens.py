"""Staff API tokens: made by a staffer for themself (or by an admin for a service account's staffer),
scoped, expiring, revocable, shown once, stored as SHA-256; every use is checked against the staffer's
role at that moment, so a token never does more than its staffer could do in the pages."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from correspondence.errors import NotFound, PermissionDenied, ValidationFailed
from correspondence.models import Role, StaffApiToken, Staffer, utcnow
from correspondence.services.audit import record

_ALL = frozenset(Role)
_SENDERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.CORRESPONDENT})
_CASE = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.CASEWORKER})
_APPROVERS = frozenset({Role.ADMIN, Role.SUPERVISOR})

# Each scope, what it lets a program do (in the office's words), and the roles whose tokens may hold
# it: the same roles the pages allow (web/letters.py SENDERS and APPROVERS, web/cases.py CASE_ROLES,
# web/batches.py DECIDE).
SCOPES: dict[str, tuple[str, frozenset[Role]]] = {
    "messages:read": ("read messages and the inbox", _ALL),
    "messages:write": ("code, assign and change the status of messages", _ALL),
    "constituents:read": ("read and search constituent records", _ALL),
    "constituents:write": ("add, change and merge constituent records", _ALL),
    "batches:read": ("read batches and their messages", _ALL),
    # The roles web/batches.py DECIDE lets decide on a batch (a caseworker reads batches but does not work them).
    "batches:write": ("assign, code, merge, split and take letters out of batches; add or reject the letters "
                      "proposed for them; mark them not a campaign; undo these decisions", _SENDERS),
    "letters:read": ("read form letters and their versions", _ALL),
    "letters:write": ("write draft letters and send them for review", _ALL),
    "letters:approve": ("approve letter versions (supervisors only)", _APPROVERS),
    "runs:read": ("read the progress of apply-to-all runs", _SENDERS),
    "runs:write": ("start apply-to-all runs", _SENDERS),
    "cases:read": ("read cases", _CASE),
    "cases:write": ("open cases, add notes and move steps", _CASE),
    "segments:read": ("count and list segments of constituents", _ALL),
    "search:read": ("search the office's mail and records", _ALL),
}
PREFIX = "mrs_"
MAX_DAYS = 366
DEFAULT_DAYS = 90


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def scopes_for(role: Role) -> list[str]:
    """The scopes a token of a staffer with this role may hold, in the order SCOPES lists them."""
    return [name for name, (_words, roles) in SCOPES.items() if role in roles]


def _staffer(session: Session, staffer_id: int) -> Staffer:
    staffer = session.get(Staffer, staffer_id)
    if staffer is None:
        raise NotFound(f"no staffer {staffer_id}")
    return staffer


def create_api_token(session: Session, *, name: str, scopes: list[str], days: int, actor_id: int,
                     staffer_id: int | None = None, now: datetime | None = None) -> tuple[StaffApiToken, str]:
    """A new token for the actor (or, made by an admin, for another staffer such as a service account);
    returns it and its secret, which is shown once and never stored."""
    actor = _staffer(session, actor_id)
    owner = actor if staffer_id is None or staffer_id == actor_id else _staffer(session, staffer_id)
    if owner.id != actor.id and actor.role != Role.ADMIN:
        raise PermissionDenied("only an admin makes tokens for another staffer")
    if not owner.active:
        raise ValidationFailed(f"{owner.name}'s account is turned off")
    problems: list[str] = []
    name = name.strip()
    if not name:
        problems.append("name the program this token is for (e.g. 'CRM sync')")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        problems.append(f"no such permission: {', '.join(sorted(unknown))[:200]}")
    allowed = set(scopes_for(owner.role))
    beyond = sorted(s for s in scopes if s in SCOPES and s not in allowed)
    if beyond:
        problems.append(f"{owner.name}'s role does not allow: {', '.join(beyond)}")
    if not scopes:
        problems.append("choose at least one permission")
    if not 1 <= days <= MAX_DAYS:
        problems.append(f"a token lasts between 1 and {MAX_DAYS} days")
    if problems:
        raise ValidationFailed("; ".join(problems))
    plain = PREFIX + secrets.token_urlsafe(32)
    chosen = [s for s in SCOPES if s in scopes]
    now = now or utcnow()
    token = StaffApiToken(name=name[:120], token_sha256=_digest(plain), prefix=plain[:12], staffer_id=owner.id,
                          scopes=chosen, created_by_id=actor.id, created_at=now,
                          expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    record(session, actor_id=actor.id, action="api_token.create", object_type="staffer", object_id=owner.id,
           after={"token_id": token.id, "name": token.name, "scopes": chosen,
                  "expires_at": token.expires_at.isoformat()})
    return token, plain


def revoke_api_token(session: Session, token_id: int, *, actor_id: int) -> StaffApiToken:
    """Turn a token off for good: its staffer, or an admin, may."""
    actor = _staffer(session, actor_id)
    token = session.get(StaffApiToken, token_id)
    if token is None or (token.staffer_id != actor.id and actor.role != Role.ADMIN):
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(session, actor_id=actor.id, action="api_token.revoke", object_type="staffer",
               object_id=token.staffer_id, before={"token_id": token.id, "name": token.name, "active": True},
               after={"token_id": token.id, "name": token.name, "active": False})
    return token


def list_api_tokens(session: Session, staffer_id: int) -> list[StaffApiToken]:
    """A staffer's tokens, active ones first, newest first."""
    return list(session.scalars(select(StaffApiToken).where(StaffApiToken.staffer_id == staffer_id)
                                .order_by(StaffApiToken.revoked_at.is_not(None),
                                          StaffApiToken.created_at.desc(), StaffApiToken.id.desc())))


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the token, its staffer, and the scopes in force for this request."""

    token_id: int
    token_name: str
    staffer_id: int
    role: Role
    scopes: frozenset[str]


def token_state(token: StaffApiToken, now: datetime) -> str:
    """'active', 'expired' or 'revoked', for the tokens page."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


def verify_api_token(session: Session, plain: str | None, *, now: datetime | None = None) -> Caller | None:
    """The caller behind this secret, or None when it is unknown, revoked, expired or its staffer is off.

    The scopes in force are the token's scopes that the staffer's role allows today: a staffer moved to
    a smaller role takes their tokens down with them.
    """
    if not plain or not plain.startswith(PREFIX) or len(plain) > 200:
        return None
    token = session.scalar(select(StaffApiToken).where(StaffApiToken.token_sha256 == _digest(plain)))
    now = now or utcnow()
    if token is None or token_state(token, now) != "active":
        return None
    staffer = token.staffer
    if not staffer.active:
        return None
    token.last_used_at = now
    allowed = set(scopes_for(staffer.role))
    return Caller(token.id, token.name, staffer.id, staffer.role,
                  frozenset(s for s in token.scopes if s in allowed))


def record_api_write(session: Session, caller: Caller, *, operation: str, object_type: str,
                     object_id: object, detail: dict[str, Any] | None = None) -> None:
    """The audit event naming the token that every write through the API adds beside the use case's own."""
    record(session, actor_id=caller.staffer_id, action="api_token.write", object_type=object_type,
           object_id=object_id, after={"token_id": caller.token_id, "token_name": caller.token_name,
                                       "operation": operation, **(detail or {})})
