"""The one HTML sanitiser for outside HTML: nh3 with remote images removed (they track the reader)."""

from __future__ import annotations

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}


def clean_html(markup: str | None) -> str:
    return nh3.clean(markup or "", tags=_TAGS, link_rel="noopener noreferrer nofollow",
                     url_schemes={"http", "https", "mailto"})
