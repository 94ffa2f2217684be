"""How a staff action ends: committed with its message, or rolled back with the reason, or a 404."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import abort, flash, redirect
from sqlalchemy.orm import Session

from correspondence.effects import Effect
from correspondence.errors import DomainError, NotFound, PermissionDenied

Step = tuple[str, str] | tuple[str, str, tuple[Effect, ...]]


def after_commit(effects: Iterable[Effect]) -> int:
    """Queue the jobs a committed use case asked for, on this app's Redis; how many were queued.

    Call it only after `session.commit()`. A Redis outage is logged, not raised: the request already
    committed, and the sweep (or a person's "try again") queues the work later.
    """
    from web import settings
    from workers.effects import dispatch

    return dispatch(effects, settings=settings())


def run_action(session: Session, work: Callable[[], Step], *, back: str,
               failed: str = "", refusal_is_403: bool = False):
    """Run work() -> (message, where to go[, effects]); commit, queue the effects and say the message,
    or roll back and explain.

    A missing object (NotFound) rises to the app's 404 handler, which rolls back (web/__init__.py); any
    other refusal goes back to `back` with the reason shown, after `failed` (e.g. "Mailbox not added: "),
    or, with refusal_is_403, a PermissionDenied is a 403 page. Effects (jobs) are queued only after the
    commit (workers.effects.dispatch), so a job never sees a transaction that did not happen.
    """
    try:
        step = work()
        message, target = step[0], step[1]
        effects: tuple[Effect, ...] = step[2] if len(step) > 2 else ()
    except NotFound:
        raise  # the app's 404 handler rolls back and shows the page
    except PermissionDenied as exc:
        if refusal_is_403:
            abort(403, description=str(exc))  # the error handler rolls back
        session.rollback()
        flash(f"{failed}{exc}", "error")
        return redirect(back), 303
    except DomainError as exc:
        session.rollback()
        flash(f"{failed}{exc}", "error")
        return redirect(back), 303
    session.commit()
    after_commit(effects)
    flash(message, "ok")
    return redirect(target), 303

