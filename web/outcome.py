"""How a staff action ends: committed with its message, or rolled back with the reason, or a 404."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect
from sqlalchemy.orm import Session

from correspondence.errors import DomainError, NotFound


def run_action(session: Session, work: Callable[[], tuple[str, str]], *, back: str,  # type: ignore[no-untyped-def]
               failed: str = ""):
    """Run work() -> (message, where to go); commit and say the message, or roll back and explain.

    A missing object is a 404; any other refusal goes back to `back` with the reason shown, after
    `failed` (e.g. "Mailbox not added: ").
    """
    try:
        message, target = work()
    except NotFound as exc:
        session.rollback()
        abort(404, description=str(exc))
    except DomainError as exc:
        session.rollback()
        flash(f"{failed}{exc}", "error")
        return redirect(back), 303
    session.commit()
    flash(message, "ok")
    return redirect(target), 303
