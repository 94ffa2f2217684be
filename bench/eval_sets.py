"""Evaluation sets for campaign detection, one per kind of letter batching must handle.

    python bench/eval_sets.py [--data /work/shared/data] [--out bench/eval]

Writes one JSONL file per kind (``id``, ``text``, ``label``; an empty label is a letter that belongs
to no campaign) from the public data in shared/data, deterministically (fixed seeds): the same data
gives the same files. ``mailroom batch eval bench/eval/<kind>.jsonl`` scores each; bench/README.md
says how each set is made and labelled, and bench/results/batch_eval.json holds the figures.

Sources: the Virginia Town Hall flood (forum 1953: 7,316 comments, ten one-line slogans repeated
hundreds of times and ~3,200 letters people wrote themselves, all on one policy) and the SNAP docket
FNS-2019-0009 (1,530 comments built from several organisations' templates and a shared list of
talking points). The spinning table below is the generator's only: the clustering never sees it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batching.normalise import normalise, sentences  # noqa: E402

csv.field_size_limit(sys.maxsize)

# --- campaign templates ---------------------------------------------------------------------------
# Real SNAP organisations' templates (the commonest text of each repeated group in the docket,
# header, name and personal part removed) and four written here in the same manner on other topics.
# ("Cuts to SNAP aggravates the struggles", a second Salud America letter sharing sentences with
# the first, is left out: whether the two are one campaign is not clear.)
SNAP_GROUPS = ("snap cuts have dangerous impacts", "providing food to our most vulnerable",
               "i am writing to oppose the cuts to snap by restricting", "as a supporter of the food bank",
               "usda s proposed rule on snap standardization")
OTHER_TEMPLATES = {
    "transit": ("I urge you to support strong federal funding for public transit in the next budget. Buses and trains "
                "connect workers to jobs, students to school and seniors to their doctors. Transit agencies across "
                "the state are cutting service because of budget shortfalls, and riders are left waiting. Reliable "
                "transit also cuts traffic and pollution for everyone. Please invest in safe, affordable public "
                "transportation for our communities."),
    "veterans": ("As your constituent I ask you to cosponsor the bill that expands health care for veterans exposed to "
                 "toxic burn pits. Thousands of men and women who served came home sick and are still waiting for "
                 "care. The Department of Veterans Affairs must not deny their claims on a technicality. Our "
                 "veterans kept their promise to this country and we must keep ours. Please stand with them and "
                 "pass this bill without delay."),
    "lands": ("I am writing to ask you to protect our public lands from new oil and gas leasing. These forests, "
              "canyons and rivers belong to all Americans and to the generations after us. Drilling would destroy "
              "wildlife habitat and pollute the water that nearby towns depend on. Outdoor recreation brings more "
              "jobs and money to rural communities than drilling ever will. Please oppose any bill that opens "
              "these lands to leasing."),
    "broadband": ("I write to urge you to fund affordable high-speed internet for rural families. Too many homes in "
                  "our district still have no reliable connection at any price. Children cannot do their homework, "
                  "farmers cannot reach markets and patients cannot see their doctors online. Other countries have "
                  "connected their rural areas and we can too. Please support the broadband funding in this year's "
                  "budget."),
}
# One-line calls to action people retype (written here, in the style of real petition lines).
SLOGANS = ["Vote NO on House Bill 1234, it hurts working families.",
           "Please protect Social Security and Medicare from any cuts.",
           "Keep the Elm Street post office open on Saturdays.",
           "Fully fund our public schools and pay teachers what they deserve.",
           "Stop the pipeline through the Blue Ridge watershed now.",
           "Support the Clean Water Act restoration bill this session.",
           "Ban assault weapons and require universal background checks.",
           "Lower the cost of insulin for every American family.",
           "Do not raise the gas tax on rural commuters.",
           "Bring our troops home and end the endless wars.",
           "Protect the right to vote by mail for every citizen.",
           "Save the county library from the proposed budget cuts."]

# The spinner's table (generator only): word -> alternatives a spinning tool or paraphraser uses.
SPIN = {
    "urge": ["ask", "implore", "call on", "encourage"], "oppose": ["reject", "stand against", "fight"],
    "support": ["back", "champion", "stand behind"], "protect": ["defend", "safeguard", "preserve"],
    "cut": ["reduce", "slash", "trim"], "cuts": ["reductions", "rollbacks", "slashes"],
    "cutting": ["reducing", "slashing"], "families": ["households", "parents and children"],
    "people": ["individuals", "folks", "residents"], "harm": ["hurt", "damage", "injure"],
    "hunger": ["food insecurity", "starvation"], "benefits": ["assistance", "aid", "support"],
    "proposal": ["plan", "proposed change"], "rule": ["regulation", "policy"], "would": ["will", "could"],
    "dangerous": ["harmful", "damaging", "risky"], "impacts": ["effects", "consequences"],
    "economy": ["economic health", "local businesses"], "helps": ["assists", "allows"],
    "poverty": ["being poor", "destitution"], "many": ["numerous", "countless", "lots of"],
    "community": ["neighborhood", "town", "area"], "essential": ["vital", "crucial", "critical"],
    "vital": ["essential", "crucial"], "critical": ["crucial", "important", "key"],
    "strongly": ["firmly", "deeply"], "please": ["kindly", "I ask you to"], "withdraw": ["pull", "drop", "retract"],
    "residents": ["citizens", "neighbors"], "force": ["push", "compel", "drive"], "choose": ["pick", "decide"],
    "struggling": ["hurting", "strapped", "having a hard time"], "food": ["groceries", "meals"],
    "homes": ["houses", "residences"], "children": ["kids", "young people"], "seniors": ["older adults", "elders"],
    "workers": ["employees", "working people"], "jobs": ["work", "employment"], "fund": ["finance", "pay for"],
    "funding": ["money", "financing"], "reliable": ["dependable", "trustworthy"], "safe": ["secure"],
    "affordable": ["low-cost", "inexpensive", "cheap"], "invest": ["put money", "spend"],
    "agencies": ["authorities", "departments"], "budget": ["spending plan", "appropriations"],
    "thousands": ["many thousands", "huge numbers"], "sick": ["ill", "unwell"], "waiting": ["still waiting"],
    "deny": ["reject", "refuse"], "pass": ["approve", "enact"], "delay": ["waiting", "hesitation"],
    "destroy": ["ruin", "wreck", "devastate"], "pollute": ["contaminate", "poison"],
    "wildlife": ["animals", "native species"], "forests": ["woods", "woodlands"], "rivers": ["streams"],
    "money": ["revenue", "income"], "rural": ["country", "small-town"], "connection": ["internet link", "hookup"],
    "district": ["area", "region"], "markets": ["buyers", "customers"], "patients": ["sick people"],
    "writing": ["reaching out", "contacting you"], "ask": ["request", "urge"], "important": ["significant", "key"],
    "estimated": ["projected", "calculated"], "increasing": ["raising", "adding to"], "hardship": ["difficulty"],
    "defense": ["protection", "barrier"], "low-income": ["poor", "low-wage"], "harmful": ["damaging", "bad"],
    "disproportionately": ["unfairly", "especially"], "elderly": ["older", "aged"], "lower": ["smaller", "reduced"],
}
PREFIXES = ["", "", "", "Please ", "I urge you to ", "I ask that you ", "Honestly, "]


def _read(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return [row[column] or "" for row in csv.DictReader(fh)]


def _strip_snap_header(text: str) -> str:
    text = re.sub(r"(?is)^usda food and nutrition service notation.*?redacted\.\s*", "", text)
    return re.sub(r"(?i)^\s*(sonny perdue|secretary perdue|dear secretary perdue)[,:]?\s*", "", text).strip()


def snap_templates(snap: list[str]) -> dict[str, str]:
    groups: dict[str, Counter] = defaultdict(Counter)
    for text in snap:
        body = _strip_snap_header(text)
        key = normalise(body)
        for name in SNAP_GROUPS:
            if key.startswith(name) or name in key[:200]:
                groups[name][body] += 1
    out = {}
    for n, name in enumerate(SNAP_GROUPS):
        body = groups[name].most_common(1)[0][0]
        parts = sentences(body)
        if name.startswith("i am writing"):
            parts = parts[:3]  # the form's own part; the rest of its commonest copy is personal
        while parts and len(parts[-1].split()) <= 3 and not parts[-1].endswith((".", "!", "?")):
            parts.pop()  # the signer's name
        out[f"snap{n}"] = " ".join(p for p in parts if len(p.split()) > 1 and not p.isupper())
    return out


# --- organic letters --------------------------------------------------------------------------------

TALKING_POINTS = {"struggles": r"struggl", "health": r"well-?\s?being|health", "households": r"19\s?(percent|%)",
                  "elderly": r"elderly|disabilit"}


def points_of(text: str) -> int:
    """How many of the docket's four talking points a comment touches (loosely, for choosing organic letters)."""
    return sum(bool(re.search(p, text, re.I)) for p in TALKING_POINTS.values())


# The talking-points campaign of the SNAP docket: a list of points that letters reorder, reword and wrap
# in their own words, matched on the normalised text with room for rewording (bench/README.md): FRAC's
# four points ("exacerbate the struggles many low-income people have paying for costs of both food and
# utilities; have harmful impacts on health and well-being as well as on the economy; cause 19 percent of
# SNAP households to get lower SNAP monthly benefits; disproportionately impact elderly people and people
# with disabilities") and the same list localised for Colorado (40% of Colorado SNAP households, Colorado's
# economy, the health and well-being of Coloradans, older adults and people with disabilities). A letter
# belongs to the campaign when it makes three of the points of either version.
POINT_LISTS = {
    "frac": (r"struggl\w*\b.{0,80}\b(food and utilit|utilities and food)", r"health and (overall )?well ?being",
             r"\b19 ?(percent|%)?\b.{0,30}\bsnap\b", r"(elderly|older).{0,60}disabilit"),
    "colorado": (r"40 ?(percent|%)? of colorado snap households", r"weaken\w* colorado s? ?economy",
                 r"struggl\w*\b.{0,60}\b(food and utilit|utilities and food)", r"health and well ?being of coloradans",
                 r"older adults and people with disabilities"),
}


def point_list(text: str) -> str | None:
    """The talking-points campaign a SNAP comment belongs to, "" when it belongs to none, None when it
    is another kind of campaign letter (Salud America's templates, the long letters organisations sent,
    which cite the same figures among many others): those are left out of the set."""
    key = normalise(text)
    if "salud america" in key or len(key.split()) > 300:
        return None
    if any(sum(bool(re.search(p, key)) for p in POINT_LISTS[name]) >= 3 for name in POINT_LISTS):
        return "frac"
    return "" if points_of(text) <= 1 else None


def organic_letters(townhall: list[str], snap: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Letters written once, by one person: distinct, not near any other comment, not a template.

    A body is organic when it is seen once, its normalised text is not within 80 (rapidfuzz
    token-sort ratio, first 300 characters) of any other body, and it shares no run of 8 words with
    any other body of its file (a pasted talking point makes a letter part of a campaign). Town Hall:
    5+ words. SNAP: at most one of the four talking points, 25+ words, without the docket's header
    or an attachment note. Both lists shuffled by the seed.
    """
    def distinct(texts: list[str], min_words: int) -> list[str]:
        counts = Counter(normalise(t) for t in texts)
        keys = [k for k, c in counts.items() if c == 1 and len(k.split()) >= min_words]
        originals = {normalise(t): t.strip() for t in texts}
        heads = [k[:300] for k in keys]
        near = process.cdist(heads, heads, scorer=fuzz.token_sort_ratio, score_cutoff=80, dtype="uint8", workers=2)
        runs: Counter[str] = Counter()  # 8-word runs, counted once per distinct body of the whole file
        for k in counts:
            w = k.split()
            runs.update({" ".join(w[i:i + 8]) for i in range(len(w) - 7)})

        def shares_a_run(k: str) -> bool:
            w = k.split()
            return any(runs[" ".join(w[i:i + 8])] > 1 for i in range(len(w) - 7))

        return [originals[k] for n, k in enumerate(keys) if int((near[n] > 0).sum()) == 1 and not shares_a_run(k)]

    th = distinct(townhall, 5)
    sn = distinct([t for t in snap if points_of(t) <= 1 and "redacted" not in t and "attached" not in t.lower()],
                  25)
    rng.shuffle(th)
    rng.shuffle(sn)
    return th, sn


# --- how people and tools change a text -----------------------------------------------------------

def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    op = rng.choice(["swap", "drop", "double", "vowel"])
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    vowels = "aeiou"
    return "".join(rng.choice(vowels) if c in vowels and rng.random() < 0.5 else c for c in word)


def retype(slogan: str, rng: random.Random) -> str:
    """A person typing a call to action in their own case, spelling, punctuation and word order."""
    words = slogan.rstrip(".!").split()
    if rng.random() < 0.35:  # move a trailing phrase to the front ("..., now" / "on X, vote no")
        cut = rng.randrange(max(2, len(words) // 2), len(words))
        words = words[cut:] + words[:cut]
    if rng.random() < 0.3 and len(words) > 4:
        i = rng.randrange(0, len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    words = [typo(w, rng) if rng.random() < 0.15 else w for w in words]
    text = " ".join(words)
    text = rng.choice(PREFIXES) + (text[0].lower() + text[1:] if text else text) if rng.random() < 0.4 else text
    case = rng.random()
    if case < 0.2:
        text = text.upper()
    elif case < 0.45:
        text = text.lower()
    text += rng.choice([".", "!", "!!!", "", " please.", "!!"])
    return text


def spin(text: str, rng: random.Random, rate: float) -> str:
    out = []
    for token in re.findall(r"\w[\w'-]*|[^\w\s]+|\s+", text):
        alts = SPIN.get(token.lower())
        if alts and rng.random() < rate:
            new = rng.choice(alts)
            out.append(new[0].upper() + new[1:] if token[0].isupper() else new)
        else:
            out.append(token)
    return "".join(out)


def paraphrase(text: str, rng: random.Random) -> str:
    """A paraphrasing tool: most words swapped, the order of the middle sentences changed, one dropped."""
    parts = sentences(spin(text, rng, 0.7))
    middle = parts[1:-1]
    rng.shuffle(middle)
    if len(middle) > 2 and rng.random() < 0.5:
        middle.pop(rng.randrange(len(middle)))
    return " ".join([parts[0], *middle, parts[-1]] if len(parts) > 1 else parts)


def dress(body: str, rng: random.Random, name: str) -> str:
    """Greeting, sign-off and signature as web forms and people add them."""
    greeting = rng.choice(["Dear Representative Ortiz,", "Dear Senator,", "Hello,", "", "To whom it may concern:"])
    signoff = rng.choice(["Sincerely,", "Thank you,", "Respectfully,", "", "Regards,"])
    sig = f"\n{name}\n{rng.randint(10, 999)} {rng.choice(['Oak', 'Maple', 'Main', 'High'])} St" if signoff else ""
    return "\n\n".join(x for x in (greeting, body, signoff + sig) if x)


# --- the sets ---------------------------------------------------------------------------------------

def build(data: Path) -> dict[str, list[dict]]:
    townhall = _read(data / "va-townhall-1953" / "1953_comments.csv", "full_comment")
    snap = _read(data / "snap-comments" / "comments.csv", "text")
    rng = random.Random(16)
    th_org, sn_org = organic_letters(townhall, snap, rng)
    templates = {**snap_templates(snap), **OTHER_TEMPLATES}
    sets: dict[str, list[dict]] = {}
    # Organic letters are used once across all sets: short ones (≤ 40 words) and longer ones.
    everyone = th_org + sn_org[:-150]
    print(f"organic letters: {len(th_org)} Town Hall, {len(sn_org)} SNAP", file=sys.stderr)
    shorts = iter([t for t in everyone if len(t.split()) <= 40])
    pool = iter([t for t in everyone if len(t.split()) > 40])

    def organic(n: int, short: bool = False) -> list[dict]:
        return [{"text": next(shorts if short else pool), "label": ""} for _ in range(n)]

    def name(n: int) -> str:
        first = rng.choice(["Pat", "Lee", "Sam", "Jo", "Chris", "Ana", "Raj"])
        return f"{first} {rng.choice(['Kim', 'Diaz', 'Ng', 'Shaw'])}{n}"

    # Retyped slogans: 12 slogans, 15 people each, and 120 short organic letters.
    rows = [{"text": dress(retype(s, rng), rng, name(i)) if rng.random() < 0.3 else retype(s, rng),
             "label": f"slogan{k}"} for k, s in enumerate(SLOGANS) for i in range(15)]
    sets["slogans"] = rows + organic(120, short=True)
    # Spun text: each template sent 20 times through a spinner (half synonym swaps, half paraphrase).
    rows = []
    for key, template in templates.items():
        for i in range(20):
            body = spin(template, rng, 0.45) if i % 2 == 0 else paraphrase(template, rng)
            rows.append({"text": dress(body, rng, name(i)), "label": key})
    sets["spun"] = rows + organic(100)
    # Heavy rewrites: the template's opening and closing sentences kept, everything between rewritten.
    rows = []
    for key, template in templates.items():
        parts = sentences(template)
        for i in range(15):
            own = sentences(next(pool))[:rng.randint(2, 4)]
            rows.append({"text": dress(" ".join([parts[0], *own, parts[-1]]), rng, name(i)), "label": key})
    sets["rewrites"] = rows + organic(100)
    # Talking points: SNAP comments making three or four of the four shared points (see README).
    rows = [{"text": t, "label": "snap-points"} for t in snap if points_of(t) >= 3]
    sets["talking_points"] = rows + [{"text": t, "label": ""} for t in sn_org[-150:]]
    # The same docket labelled by the list itself: comments making three of its points in its wording
    # (reworded, reordered, wrapped in their own words), other organisations' letters left out (README).
    rows = [{"text": t, "label": f"points-{point_list(t)}"} for t in snap if point_list(t)]
    sets["talking_points_list"] = rows + [{"text": t, "label": ""} for t in sn_org[-150:]]
    # Groups of two: letters sent twice, the second copy retyped lightly (greeting, a typo, a dropped sentence).
    rows = []
    for k in range(80):
        text = next(pool)
        parts = sentences(text)
        if len(parts) > 3:
            parts.pop(rng.randrange(1, len(parts)))
        second = " ".join(" ".join(typo(w, rng) if rng.random() < 0.03 else w for w in p.split()) for p in parts)
        rows += [{"text": text, "label": f"pair{k}"}, {"text": dress(second, rng, name(k)), "label": f"pair{k}"}]
    sets["pairs"] = rows + organic(160)
    # Personalised forms: the template with the sender's own letters around it, longer than the template.
    rows = []
    for key, template in templates.items():
        for i in range(15):
            own, words = [], 0
            while words < 1.5 * len(template.split()):
                part = next(pool)
                own.append(part)
                words += len(part.split())
            before = rng.random() < 0.3
            body = "\n\n".join([*own, template] if before else [template, *own])
            rows.append({"text": dress(body, rng, name(i)), "label": key})
    sets["personalised"] = rows + organic(100)
    # Organic letters on one topic (and the SNAP docket's own): none may be batched with another.
    sets["organic"] = [{"text": t, "label": ""} for t in pool] + organic(200, short=True)
    # The Town Hall flood as it is, labelled by normalised text (the slogans' waves), organic unlabelled.
    counts = Counter(normalise(t) for t in townhall)
    sets["townhall"] = [{"text": t, "label": normalise(t) if counts[normalise(t)] > 1 and normalise(t) else ""}
                        for t in townhall]
    for name_, rows in sets.items():
        random.Random(name_).shuffle(rows)
        for n, row in enumerate(rows):
            row["id"] = f"{name_}-{n}"
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "eval")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, rows in build(args.data).items():
        with (args.out / f"{kind}.jsonl").open("w") as fh:
            for row in rows:
                fh.write(json.dumps({"id": row["id"], "text": row["text"], "label": row["label"]}) + "\n")
        labels = Counter(r["label"] for r in rows if r["label"])
        print(f"{kind}: {len(rows)} letters, {len(labels)} campaigns, {sum(1 for r in rows if not r['label'])} organic")


if __name__ == "__main__":
    main()
