"""Personal additions that are personal (issue 16): the sender's name, town, address, phone, self-description,
greetings and sign-offs never count; what is left is a question, a request, a story or a comment.

The template is a real public comment on the 2019 SNAP utility-allowance rule (docket FNS-2019-0009,
shared/data/snap-comments: 39 identical copies); the additions and sign-offs are written the way those
comments and the demo office's letters end."""

from __future__ import annotations

import pytest

from batching.templates import addition_kinds, build_template, classify_addition, personal_additions

SNAP = ("SNAP cuts have dangerous impacts on health and well-being as well as on the economy. It is well-known that "
        "SNAP improves the economy & helps families overcome poverty, according to a Salud America! Research Review. "
        "According to the USDA Economic Research Service evaluation, it is estimated that each $1 in federal SNAP "
        "benefits creates $1.79 in economic activity; that profit helps many food retailers operating on thin "
        "margins to stay in business.")
TEMPLATE = build_template([SNAP] * 3)

SIGN_OFFS = [
    "Respectfully submitted,\nJane Q. Doe\nSpringfield, IL 62704",
    "Sincerely,\nJohn Smith\nMember, League of Women Voters of Ohio",
    "--\nMary Jones\nCell: 555.555.1234\nmary.jones@example.com",
    "Thank you,\nDr. Alan Park, MD\nPresident, County Medical Society",
    "Jane Doe, Springfield, IL",
    "Warm regards,\nThe Smith Family",
    "Yours truly,\nR. J. Thompson\n1427 N. Maple Ave., Apt. 3B\nColumbus, Ohio 43201-1234",
    "Kind regards\nSam Lee\nTel +1 (614) 555 0100",
    "Sent from my Galaxy",
    "Thanks so much for your attention to this matter.",
    "Have a blessed day.",
    "Jane Doe\nA concerned citizen and voter",
    "Your constituent in Marion",
    "Please let me know what you plan to do.",
    "I would appreciate a response.",
]


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_a_sign_off_is_never_an_addition(sign_off):
    assert personal_additions(f"Dear Secretary Perdue,\n\n{SNAP}\n\n{sign_off}", TEMPLATE) == []


ADDED = {
    "My mother is 80 years old and relies on SNAP to stretch her fixed income.": "story",
    "We moved here when the plant closed and the food bank kept us going.": "story",
    "I grew up here, raised three kids here, and I want them to be able to stay here.": "story",
    "How is it that the richest nation in the world cannot feed its poorest children?": "question",
    "Please withdraw this rule and keep the current allowances.": "request",
    "I strongly oppose the proposed rule.": "comment",
    "Tax the wealthy instead to fill your budget gaps.": "comment",
}


def test_each_addition_is_kept_and_classified():
    letter = f"Dear Secretary Perdue,\n\n{SNAP} " + " ".join(ADDED) + "\n\nSincerely,\nAna Ruiz\nDayton, OH 45402"
    added = personal_additions(letter, TEMPLATE)
    assert added == list(ADDED)
    assert [classify_addition(a) for a in added] == list(ADDED.values())
    assert addition_kinds(added) == "comment,question,request,story"
