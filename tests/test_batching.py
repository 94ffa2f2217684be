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


# --- issue 16: letters changed more than a light edit (one small fixture per kind) ----------------

from batching.evidence import APART, JOIN, UNCERTAIN, explain, possible_members  # noqa: E402

FOOD = ("I am writing to ask you to oppose the proposed cuts to school meal programs. "
        "Free and reduced-price lunches are the only reliable meal of the day for many children in our county. "
        "Hungry students cannot concentrate, and their grades and health suffer for it. "
        "Local farms that sell to our school districts would lose a steady customer. "
        "Please protect school meals in this year's budget.")
# Letters people write themselves about the same subject: none of them may join anything.
ORGANIC_SCHOOL_MEALS = [
    "My son gets breakfast at school and it is the reason he can focus in the morning. I was laid off in March "
    "and we are still catching up on rent. Please do not take this away from families like mine.",
    "I run the cafeteria at an elementary school. Prices for milk and produce went up by a third this year and our "
    "reimbursement did not. We are already cutting portions. Whatever you do with the budget, look at the numbers.",
    "School lunch was never the problem. The problem is that the food is mostly processed and the kids throw half of "
    "it away. I would rather see the money go to fresh food from local farms than more of the same.",
    "Why are we paying for meals for families who can afford them? My taxes keep going up. Means-test the program "
    "properly and stop the waste before you ask for more money.",
    "As a pediatrician I see children whose only fruit of the week comes from school. Cuts to these meals would show "
    "up in my clinic within months. I urge you to talk to doctors before voting.",
]


def _sign(body, name):
    return f"Dear Representative Ortiz,\n\n{body}\n\nSincerely,\n{name}\n41 Birch Lane\nDayton, OH 45402"


def _together(labels, idx):
    return labels[idx[0]] != NOT_A_BATCH and len({labels[i] for i in idx}) == 1


def test_retyped_slogans_join_and_short_organic_notes_do_not():
    retyped = ["Keep the Elm Street post office open on Saturdays!",
               "keep the elm street post office open on saturdays",
               "KEEP THE ELM STREET POST OFFICE OPEN ON SATURDAYS!!!",
               "Keep the Elm St post office open on Saturday.",
               "Please keep the Elm Street post ofice open on Saturdays",
               "keep elm street post office open saturdays pls",
               "On Saturdays, keep the Elm Street post office open!"]
    notes = ["The post office line on Elm Street took me an hour today.", "Thank you for fixing the streetlight.",
             "When will the Saturday farmers market reopen?", "Please call me back about my passport."]
    labels = cluster_texts(retyped + notes).labels
    assert _together(labels, range(len(retyped))), labels
    assert all(label == NOT_A_BATCH for label in labels[len(retyped):])


def test_spun_copies_join_their_campaign_and_organic_letters_stay_apart():
    swaps = [("ask", "urge"), ("oppose", "reject"), ("proposed cuts", "planned reductions"), ("reliable", "dependable"),
             ("children", "kids"), ("Hungry", "Starving"), ("health", "wellbeing"), ("steady", "dependable"),
             ("protect", "safeguard"), ("county", "community"), ("cannot concentrate", "can't focus")]
    letters = []
    for n in range(6):
        text = FOOD
        for k, (old, new) in enumerate(swaps):
            if (k + n) % 2 == 0:
                text = text.replace(old, new)
        letters.append(_sign(text, f"Voter {n}"))
    labels = cluster_texts(letters + ORGANIC_SCHOOL_MEALS).labels
    assert _together(labels, range(6)), labels
    assert all(label == NOT_A_BATCH for label in labels[6:])


def test_heavy_rewrites_keeping_opening_and_closing_join():
    first, *_middle, last = FOOD.split(". ")
    own = ["My daughter is in third grade and eats lunch at school every day.",
           "We moved here last year and the school has been wonderful to us.",
           "I volunteer at the food pantry on weekends and the lines keep growing.",
           "Our school board already cut the art teacher this spring.",
           "My neighbor's twins depend on the breakfast program.",
           "I grew up on free lunch myself and I turned out fine because of it.",
           "The cafeteria staff know every child by name.", "Teachers keep granola bars in their desks already.",
           "Our district is mostly farms and small towns.", "Gas prices mean families are stretched thin.",
           "I have three grandchildren in the public schools.", "Last winter the heating bill doubled for us."]
    letters = [_sign(f"{first}. {own[2 * n]} {own[2 * n + 1]} {last}", f"Parent {n}") for n in range(6)]
    labels = cluster_texts(letters + ORGANIC_SCHOOL_MEALS).labels
    assert _together(labels, range(6)), labels
    assert all(label == NOT_A_BATCH for label in labels[6:])


def test_groups_of_two_batch_when_near_copies_only():
    a = ("The bridge on County Road 9 has had a weight limit sign for two years and school buses now take a "
         "twelve mile detour. Parents are worried about the extra time on icy roads. Please find the funding to "
         "repair it before next winter.")
    edited = a.replace("twelve mile", "12 mile").replace("Parents are", "Parents here are")
    a2 = f"Hello,\n\n{edited}\n\nThanks,\nJo"
    b = ("The bridge on County Road 9 is a disgrace. I drive a truck for a living and the detour costs me an hour "
         "every day. Somebody has to take responsibility for this.")
    labels = cluster_texts([a, a2, b, *ORGANIC_SCHOOL_MEALS]).labels
    assert _together(labels, [0, 1]), labels
    assert labels[2] == NOT_A_BATCH and labels[2:] == [NOT_A_BATCH] * (len(labels) - 2)


def test_personalised_forms_with_additions_longer_than_the_template_join():
    letters = []
    for n, story in enumerate(ORGANIC_SCHOOL_MEALS):
        extra = " ".join(ORGANIC_SCHOOL_MEALS[(n + k) % 5] for k in range(1, 3))
        body = f"{story} {extra}\n\n{FOOD}" if n % 2 else f"{FOOD}\n\n{story} {extra}"
        letters.append(_sign(body, f"Neighbour {n}"))
    assert all(len(x.split()) > 2 * len(FOOD.split()) for x in letters)
    labels = cluster_texts(letters).labels
    assert _together(labels, range(len(letters))), labels


def test_organic_letters_on_one_topic_are_never_merged():
    signed_letters = [_sign(x, f"Person {n}") for n, x in enumerate(ORGANIC_SCHOOL_MEALS)]
    labels = cluster_texts(signed_letters).labels
    assert labels == [NOT_A_BATCH] * len(ORGANIC_SCHOOL_MEALS)


def test_evidence_says_why_and_lists_the_uncertain_band():
    spun = (FOOD.replace("ask", "urge").replace("oppose", "reject").replace("reliable", "dependable")
            .replace("children", "kids").replace("steady customer", "dependable buyer"))
    ev = explain(_sign(spun, "Pat"), FOOD, key=7)
    assert ev.key == 7 and ev.band == JOIN and ev.score >= 0.7
    assert {p.how for p in ev.pairs} <= {"exact", "edit", "semantic"} and len(ev.pairs) >= 4
    assert any(p.template.startswith("Hungry students") for p in ev.pairs)
    half = ". ".join(FOOD.split(". ")[:2]) + ". " + ORGANIC_SCHOOL_MEALS[0]
    partial = explain(half, FOOD)
    assert partial.band == UNCERTAIN and 0.4 <= partial.score < 0.7, partial
    unrelated = explain(ORGANIC_SCHOOL_MEALS[3], FOOD)
    assert unrelated.band == APART
    pool = {11: half, 12: ORGANIC_SCHOOL_MEALS[3], 13: _sign(spun, "Pat")}
    assert [ev.key for ev in possible_members(pool, FOOD)] == [11]


def test_a_paraphrased_group_missing_a_sentence_folds_into_its_campaign():
    from batching import recall

    template = ("I urge you to champion strong federal funding for public transit in the next budget. Buses and "
                "trains connect workers to jobs, students to school and elders to their doctors. Transit agencies "
                "across the state are cutting service because of budget shortfalls, and riders are left waiting. "
                "Trustworthy transit also cuts traffic and pollution for everyone. Kindly spend in safe, affordable "
                "public transportation for our communities.")
    # A paraphrasing tool's copy: words swapped, sentences shuffled, one dropped.
    paraphrase = ("I implore you to stand behind strong federal funding for public transit in the next "
                  "appropriations. Reliable transit also reductions traffic and pollution for everyone. Buses and "
                  "trains connect workers to work, students to school and elders to their doctors. I ask you to put "
                  "money in safe, inexpensive public transportation for our communities.")
    # Another letter on the same topic, in its own words: never folded into the campaign.
    own = ("Our bus route was cut last spring and now I walk forty minutes to the pharmacy. The county says "
           "there is no money for drivers. I am seventy-eight years old and I do not drive any more. Please "
           "find a way to bring back the number 12 bus on Saturdays.")
    texts = [template, paraphrase, own]
    into = recall.merge_leaders([0, 1, 2], {0: 20, 1: 3, 2: 3}.__getitem__, [normalise(t) for t in texts],
                                texts.__getitem__)
    assert into == {1: 0}, into


def test_a_retyped_slogan_found_in_two_word_orders_is_one_batch_and_stance_lines_stay_apart():
    # The first pass finds two short campaigns (the call to action, and people moving its end to the front).
    texts = (["Stop the pipeline through the Blue Ridge watershed now."] * 4
             + ["Blue Ridge watershed now, stop the pipeline through the!"] * 3
             + ["Please stop the pipeline through the Blue Ridge watershed now"]
             # A longer line with a word misspelt past recognition and words added around it.
             + ["Honestly, fully fund our public schools and pay teachers what they deserve, please",
                "fully fund our public schools and pay teachers what they deserve",
                "Fully fund our public schools and pay teachers what they deserve!",
                "Fully fund our public schools and pay tuochirs what they deserve please"]
             # Two-word stances are each what their senders typed: not one campaign.
             + ["Strongly oppose"] * 3 + ["I strongly oppose"] * 3)
    labels = cluster_texts(texts).labels
    assert _together(labels, range(8)), labels
    assert _together(labels, range(8, 12)), labels
    assert labels[12] != labels[15] and _together(labels, range(12, 15)) and _together(labels, range(15, 18))


def test_spun_sentences_pair_by_their_words_in_place():
    from batching import semantic
    from batching.align import align

    template = "Too many homes in our district still have no reliable connection at any price."
    spun = "Too many houses in our area still have no dependable hookup at any price."
    own = "Our home internet connection drops every evening and the price keeps going up."
    assert semantic.swapped_words(normalise(spun), normalise(template)) >= 0.65
    assert semantic.swapped_words(normalise(own), normalise(template)) < 0.5
    letter = ("I write to implore you to finance low-cost high-speed internet for small-town households. "
              "Too numerous houses in our area still have no dependable hookup at any price. Kids cannot do "
              "their homework, growers cannot reach buyers and patients cannot see their doctors online. Kindly "
              "back the broadband financing in this year's spending plan.")
    form = ("I write to urge you to fund affordable high-speed internet for rural families. " + template +
            " Children cannot do their homework, farmers cannot reach markets and patients cannot see their doctors "
            "online. Please support the broadband funding in this year's budget.")
    assert align(letter, form).joins
    assert not align(_sign(ORGANIC_SCHOOL_MEALS[2], "Jo"), form).joins


POINTS = ["the bill would raise bus fares by a third for riders who have no other way to work",
          "it would cut night service that hospital and warehouse workers depend on",
          "it would close the three rural routes that connect seniors to their clinics",
          "it would hand the savings to a highway widening that the county never asked for"]


def test_talking_point_letters_join_and_letters_on_the_topic_stay_apart():
    rng = random.Random(4)
    openings = ["I am writing to oppose the transit budget bill.", "Please vote no on the transit budget.",
                "As a lifelong bus rider I have to speak up.", "I was upset to read about the transit bill.",
                "This is my first letter to any elected official.", "My whole family relies on the bus."]
    closings = ["Please vote no.", "I hope you will stand with riders.", "Thank you for listening to us.",
                "Do not let this bill pass.", "We are counting on you.", "Riders deserve better."]
    rewording = [("would raise", "is going to raise"), ("by a third", "by thirty percent"), ("depend on", "rely on"),
                 ("hand the savings to", "spend the savings on"), ("close", "shut down"),
                 ("never asked for", "does not need")]
    letters = []
    for n in range(8):
        chosen = rng.sample(POINTS, 3 if n % 2 else 4)  # three or four of the points, in any order
        reworded = []
        for point in chosen:
            for old, new in rewording:
                if rng.random() < 0.4:
                    point = point.replace(old, new)
            reworded.append(point[0].upper() + point[1:] + ".")
        letters.append(_sign(" ".join([openings[n % 6], *reworded, closings[(n * 5) % 6]]), f"Rider {n}"))
    # People writing on the same bill in their own words (they name the same things, not the points).
    own = ["I drive for the county and I can tell you the rural routes are nearly empty most days. Fares have not "
           "gone up in ten years while fuel has doubled. The bill is reasonable and I hope you support it.",
           "Night service matters to me because I work at the hospital until eleven. I do not know what I would "
           "do without the last bus home. Please think about people like me when you vote on the bill.",
           "The highway widening is long overdue and the traffic by the clinic is terrible every morning. Seniors "
           "sit in that traffic too. I support the transit budget bill and the road work in it."]
    labels = cluster_texts(letters + [_sign(x, f"Neighbour {n}") for n, x in enumerate(own)]).labels
    assert _together(labels, range(len(letters))), labels
    assert all(label == NOT_A_BATCH for label in labels[len(letters):]), labels
