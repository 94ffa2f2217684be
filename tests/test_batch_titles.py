"""Batch titles say which campaign (issue 16): never a web form's topic menu ("Taxation"), a generic subject
("Concern from Columbus") or a courtesy, and no two open batches share one — even when letters open and close
with the same stock sentences, as the demo office's web-form letters do."""

from __future__ import annotations

from sqlalchemy import select

from batching.batches import recluster
from batching.templates import clean_subject, is_courtesy, sentence_gist, title_phrases
from correspondence.models import Batch, BatchStatus, utcnow

OPENING = "I am writing about something that has been on my mind."
CLOSING = "Please let me know what you plan to do."
POINTS = {
    "Taxation": "Property taxes in Columbus have doubled, and I know that is local, but I want federal relief for "
                "seniors on fixed incomes who may lose their homes.",
    "Health": "Please explain how the new tax law affects retirees on a fixed income and what they should file "
              "before April.",
    "Education": "The changes to federal funding for special education have left our district without two "
                 "aides this fall.",
}


def test_subjects_that_name_no_campaign_are_not_titles():
    for subject in ("Taxation", "Health", "Concern from Columbus", "A question about my district", "QUESTION",
                    "Re: Fwd: comments", "My concerns"):
        assert clean_subject(subject) == "", subject
    assert clean_subject("RE: Save the post office") == "Save the post office"
    assert clean_subject("Clean water") == "Clean water"


def test_a_sentences_gist_drops_its_lead_in():
    assert sentence_gist("Please explain how the new tax law affects retirees on a fixed income.") == \
        "How the new tax law affects retirees on a fixed income"
    assert sentence_gist("Property taxes in Columbus have doubled, and I know that is local.") == \
        "Property taxes in Columbus have doubled"
    assert sentence_gist("I have a question and a concern.") == ""
    assert is_courtesy(CLOSING) and is_courtesy("I would appreciate a response.")


def test_web_form_letters_are_titled_by_their_point_uniquely(session, factory):
    for subject, point in POINTS.items():
        for i in range(4):
            factory.message(body_text=f"Dear Representative,\n\n{OPENING} {point} {CLOSING}\n\nSincerely,\nAna {i}",
                            subject=subject, processed_at=utcnow())
    recluster(session)
    titles = [b.title for b in session.scalars(select(Batch).where(Batch.status == BatchStatus.OPEN)
                                               .order_by(Batch.id))]
    assert titles == ["Property taxes in Columbus have doubled",
                      "How the new tax law affects retirees on a fixed income",
                      "The changes to federal funding for special education"]


def test_a_title_an_open_batch_has_is_not_taken_again_and_numbering_is_the_last_resort(session, factory):
    taken = "Property taxes in Columbus have doubled"
    session.add(Batch(title=taken, template_text="The bridge on Route 9 is closed again.", status=BatchStatus.OPEN))
    for i in range(4):
        factory.message(body_text=f"{OPENING} {POINTS['Taxation']} {CLOSING}\n\nAna {i}", subject="Taxation",
                        processed_at=utcnow())
    recluster(session)
    titles = [b.title for b in session.scalars(select(Batch).order_by(Batch.id))]
    assert titles[0] == taken and titles[1] not in (taken, f"{taken} (2)") and "(" not in titles[1]
    assert titles[1] == "Something that has been on my mind"  # the template's next phrase


def test_a_batch_of_courtesies_only_is_titled_as_such(session, factory):
    for i in range(4):
        factory.message(body_text=f"I look forward to hearing from you.\n\nAna {i}", processed_at=utcnow(),
                        subject="Hello")
    recluster(session)
    titles = [b.title for b in session.scalars(select(Batch))]
    assert titles in ([], ["Letters sharing only “I look forward to hearing from you.”"])


def test_a_template_of_courtesies_only_says_so():
    assert title_phrases("I look forward to hearing from you. Thank you for your service.") == []
