"""Why a member is in its batch, as the batch page shows it (issue 16): batching.evidence.explain's stage,
score and sentence pairs, the letter's sentences marked, in plain words, escaped, on a phone-width page."""

from __future__ import annotations

import re

from batching.batches import recluster, template_of
from batching.evidence import JOIN, UNCERTAIN, Evidence, explain
from batching.templates import build_template, evidence_from_pairs
from correspondence.models import Batch, utcnow
from tests.test_batches import CLEAN_WATER, _pool


def _why(text: str, template_text: str, *, pinned: bool = False) -> Evidence:
    return evidence_from_pairs(text, explain(text, template_text), build_template([template_text] * 3),
                               pinned=pinned)


def test_one_evidence_type_from_explain_to_the_page():
    import batching.templates as templates

    assert not hasattr(templates, "evidence") and templates.Evidence is Evidence  # the page's type is explain's


def test_a_copy_is_exact_and_every_template_sentence_is_marked_shared():
    letter = f"Dear Representative,\n\n{CLEAN_WATER}\n\nSincerely,\nAna Ruiz\n12 Oak St\nColumbus, OH 43215"
    found = _why(letter, CLEAN_WATER)
    assert (found.stage, found.band, found.score) == ("exact", JOIN, 1.0)
    assert [p.kind for p in found.pieces] == ["shared"] * 4  # greeting, sign-off and address left out
    assert (found.held, found.of, found.pinned) == (4, 4, False)


def test_light_edits_and_the_writers_own_sentences():
    edited = CLEAN_WATER.replace("millions of families", "milions of familes")
    found = _why(f"{edited} My son swims in the Scioto every summer.\n\nAna Ruiz\n12 Oak St", CLEAN_WATER,
                 pinned=True)
    kinds = [p.kind for p in found.pieces]
    assert kinds == ["shared", "edited", "shared", "shared", "added"]
    assert found.pieces[-1].text == "My son swims in the Scioto every summer."
    assert found.held == found.of == 4 and found.pinned and found.band == JOIN


def test_a_reworded_letter_is_matched_by_meaning_and_lands_in_the_uncertain_band():
    reworded = ("I am writing to ask that you back the Clean Water Protection Act. Our rivers and lakes supply "
                "drinking water to millions of families. My son swims there every summer and I worry about him.\n\n"
                "Thanks,\nAna")
    found = _why(reworded, CLEAN_WATER)
    assert found.band == UNCERTAIN and 0.4 <= found.score < 0.7
    assert found.stage in ("sentences", "semantic")
    kinds = [p.kind for p in found.pieces]
    assert kinds[1] == "shared" and kinds[-1] == "added" and found.held == 2


def test_the_batch_page_shows_why_in_plain_words_with_marks_escaped(client, auth, session, factory):
    made = _pool(factory, n_water=6, n_postal=0, organic=0)
    own = factory.message(body_text=f"{CLEAN_WATER} The <script>alert(1)</script> creek behind our house ran "
                                    "brown for a week.\n\nKim Park\n9 Main St", processed_at=utcnow())
    recluster(session)
    batch = session.get(Batch, made["water"][0].batch_id)
    assert own.batch_id == batch.id and template_of(batch).keys
    auth.login("caseworker")
    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<mark class="shared">Our rivers and lakes supply drinking water to millions of families.</mark>' in page
    assert re.search(r"Why: holds 4 of 4 template sentences · 100% of the template · "
                     r"(the same letter word for word|shares long runs of the template&#39;s wording)", page)
    for raw in ("shingles", "semantic", "exact"):  # stage names stay in the code
        assert f"· {raw}<" not in page and f"· {raw} " not in page
