"""Campaign detection on letters written here: templates with personal additions, edits and typos."""

import json
import random

from click.testing import CliRunner

from batching.cluster import NOT_A_BATCH, cluster_texts
from batching.evaluate import pairwise_scores
from batching.normalise import core_lines, normalise
from tests.conftest import TEST_SECRET_KEY
from workers.cli import cli

TEMPLATES = {
    "snap": ("I am writing to urge you to oppose any cuts to the Supplemental Nutrition Assistance Program. "
             "SNAP helps millions of families put food on the table, including children and seniors. "
             "Cutting benefits will push struggling families deeper into hunger. "
             "Please vote against any farm bill that weakens SNAP."),
    "transit": ("I urge you to support strong federal funding for public transit. "
                "Buses and trains connect workers to jobs, students to school and seniors to doctors. "
                "Transit agencies are cutting service because of budget shortfalls. "
                "Please invest in reliable, affordable public transportation."),
}
STORIES = ["My mother relies on this every month and I worry about her.",
           "I have lived in this town for thirty years and never written before.",
           "As a bus driver I see the need every single day on my route."]


def _copy(rng, template, name):
    sentences = template.split(". ")
    if rng.random() < 0.3:
        sentences.pop(rng.randrange(1, len(sentences)))
    body = ". ".join(sentences)
    if rng.random() < 0.5:
        body = rng.choice(STORIES) + " " + body if rng.random() < 0.5 else body + " " + rng.choice(STORIES)
    greeting = rng.choice(["Dear Representative Doe,", "Hello,", ""])
    return f"{greeting}\n\n{body}\n\nSincerely,\n{name}\n12 Oak St\nColumbus, OH 43215\n(614) 555-0100"


def test_normalise_drops_greeting_signature_and_noise():
    text = ("Dear Senator Smith,\n\nPlease FUND transit!!  Visit https://example.org now.\n\n"
            "Sincerely,\nPat Lopez\n12 Oak St\n(614) 555-0100\nSent via the Transit Action Center")
    assert core_lines(text) == ["Please FUND transit!!  Visit https://example.org now."]
    assert normalise(text) == "please fund transit visit now"


def test_campaigns_with_personal_additions_cluster_and_organic_letters_do_not():
    rng = random.Random(3)
    texts, truth = [], []
    for label, template in TEMPLATES.items():
        for i in range(40):
            texts.append(_copy(rng, template, f"Person {label} {i}"))
            truth.append(label)
    organic = ["The pothole on Elm Street has been there for months and nobody fixes it.",
               "Thank you for the town hall meeting last week, it was very informative.",
               "My passport application is stuck and I travel in three weeks, please help.",
               "Why does the post office near me close so early on Saturdays?"]
    texts += organic
    truth += [None] * len(organic)
    result = cluster_texts(texts)
    scores = pairwise_scores(truth, result.labels)
    assert scores["pairwise_f1"] >= 0.98, scores
    assert result.batches == 2
    assert all(label == NOT_A_BATCH for label in result.labels[-len(organic):])


def test_bad_input_never_crashes_or_forms_a_batch_alone():
    weird = ["", "   ", "Yes", "https://example.org/only-a-url", "x" * 1_000_000,
             "Привет, пожалуйста поддержите законопроект о транспорте", "😀😀😀", "\x00\x01\x02"]
    result = cluster_texts(weird * 1)
    assert result.labels == [NOT_A_BATCH] * len(weird)
    many_empty = cluster_texts(["", "", "", "Yes", "Yes", "Yes"])
    assert many_empty.labels == [NOT_A_BATCH] * 6


def test_exact_short_copies_batch_but_single_words_do_not():
    texts = ["Strongly oppose."] * 5 + ["Oppose!"] * 5 + ["I am strongly opposed to this rule."] * 4
    labels = cluster_texts(texts).labels
    assert len(set(labels[:5])) == 1 and labels[0] != NOT_A_BATCH
    assert labels[5:10] == [NOT_A_BATCH] * 5
    assert len(set(labels[10:])) == 1 and labels[10] not in (NOT_A_BATCH, labels[0])


def test_bridge_letters_do_not_chain_two_campaigns():
    rng = random.Random(5)
    texts = [_copy(rng, TEMPLATES["snap"], f"a{i}") for i in range(30)]
    texts += [_copy(rng, TEMPLATES["transit"], f"b{i}") for i in range(30)]
    # Letters that paste both templates together.
    texts += [TEMPLATES["snap"] + " " + TEMPLATES["transit"] for _ in range(3)]
    labels = cluster_texts(texts).labels
    assert len(set(labels[:30])) == 1 and len(set(labels[30:60])) == 1
    assert labels[0] != labels[30]


def test_pairwise_scores():
    assert pairwise_scores(["a", "a", "b", "b", None], [0, 0, 1, 1, -1])["pairwise_f1"] == 1.0
    merged = pairwise_scores(["a", "a", "b", "b"], [0, 0, 0, 0])
    assert merged["pairwise_recall"] == 1.0 and merged["pairwise_precision"] == round(2 / 6, 4)
    # A label seen once is no group: batching it alone is fine, pairing it is a false pair.
    assert pairwise_scores(["a", "a", "z"], [0, 0, -1])["pairwise_f1"] == 1.0


def test_batch_eval_command(tmp_path):
    rng = random.Random(9)
    path = tmp_path / "mail.jsonl"
    with path.open("w") as fh:
        for i in range(30):
            row = {"id": f"s{i}", "text": _copy(rng, TEMPLATES["snap"], f"p{i}"), "label": "snap"}
            fh.write(json.dumps(row) + "\n")
        fh.write(json.dumps({"id": "o1", "text": "Please fix the bridge on Route 9.", "label": ""}) + "\n")
    out = tmp_path / "assignments.jsonl"
    result = CliRunner().invoke(cli, ["batch", "eval", str(path), "--out", str(out)],
                                env={"SECRET_KEY": TEST_SECRET_KEY})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 31 and report["batches"] == 1 and report["pairwise_f1"] == 1.0
    assert set(report) == {"n", "batches", "seconds", "peak_rss_mb", "pairwise_precision", "pairwise_recall",
                           "pairwise_f1", "ari"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[-1] == {"id": "o1", "batch": None} and rows[0]["batch"] == 0
    csv_path = tmp_path / "mail.csv"
    csv_path.write_text("id,text\n1,Vote no on the rail bill\n2,Vote no on the rail bill\n3,Vote no on the rail bill\n")
    result = CliRunner().invoke(cli, ["batch", "eval", str(csv_path)], env={"SECRET_KEY": TEST_SECRET_KEY})
    assert json.loads(result.output)["batches"] == 1 and "pairwise_f1" not in json.loads(result.output)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,x\n")
    result = CliRunner().invoke(cli, ["batch", "eval", str(bad)], env={"SECRET_KEY": TEST_SECRET_KEY})
    assert result.exit_code != 0 and "no 'text' column" in result.output
