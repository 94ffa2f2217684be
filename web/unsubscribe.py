"""One-click unsubscribe (RFC 8058): the public link in every follow-up's List-Unsubscribe header.

No sign-in: the token in the URL is an HMAC of the letter's id (outbound.tokens), so only the
person the letter went to (or their mail provider, acting for them) holds it. GET shows a page with
a button, because link scanners open every URL in a mail and must unsubscribe nobody; POST
unsubscribes. The POST is exempt from CSRF: RFC 8058 has the mail provider POST
``List-Unsubscribe=One-Click`` to the URL with no cookie and no form token, and the token in the URL
is what authenticates it. Unsubscribing twice is the same as once. It is rate-limited in a group of its
own (web/ratelimit.py, "unsubscribe"), apart from sign-in and the other public pages.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from correspondence.errors import NotFound
from correspondence.models import Message, Response
from outbound.newsletters import unsubscribe_piece
from outbound.suppression import unsubscribe
from outbound.tokens import response_of_unsubscribe_token
from web import csrf, db_session
from web.access import public

bp = Blueprint("unsubscribe", __name__)


def _mask(address: str) -> str:
    """Enough of the address for its owner to recognise it, not enough to harvest it from a forwarded link."""
    local, _, domain = address.partition("@")
    return f"{local[:2]}…@{domain}" if domain else "your address"


@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf.exempt
@public
def one_click(token: str):
    secret = current_app.extensions["mailroom.settings"].secret_key
    response_id = response_of_unsubscribe_token(token[:40], secret_key=secret)
    session = db_session()
    response = session.get(Response, response_id) if response_id is not None else None
    if response is None or not response.to_address:
        abort(404, description="This unsubscribe link is not valid. If you copied it from an email, check that "
                               "the whole link was copied.")
    if request.method == "POST":
        try:
            # A newsletter sent to a list: off that list. Anything else: no more follow-ups or newsletters.
            message = session.get(Message, response.message_id)
            list_name = unsubscribe_piece(session, message.source if message else None, response.to_address)
            if list_name is None:
                unsubscribe(session, response.id)
        except NotFound:
            abort(404)
        session.commit()
        return render_template("unsubscribe.html", done=True, address=_mask(response.to_address),
                               list_name=list_name)
    return render_template("unsubscribe.html", done=False, address=_mask(response.to_address))
