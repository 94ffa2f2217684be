"""A batch's template (the consensus of its members) and each member's personal additions.

The template is built from sentences: a sentence belongs to it when at least half of the members
hold it (compared on normalised words), and sentences keep the order they usually have. A member's
additions are its sentences that are neither in the template nor a light edit of a template
sentence (rapidfuzz ratio ≥ 85 on normalised words): the personal story a staffer must read.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rapidfuzz import fuzz, process

from batching.cluster import ClusterSettings, overlap_score, shingles
from batching.evidence import APART, UNCERTAIN_FROM, Evidence, Piece, explain
from batching.normalise import (
    _GREETING,
    _NON_WORD,
    _PHONE,
    _SENTENCE,
    _SIGNOFF,
    _SPACE,
    _URL,
    _strip_accents,
    core_lines,
    normalise,
    sentences,
)

# Consensus is computed on at most this many members: enough to be stable, bounded in time.
SAMPLE = 400
EDIT_SIMILARITY = 85


@dataclass(frozen=True)
class Template:
    text: str
    keys: tuple[str, ...]  # normalised sentences, in order
    shingles: frozenset[int]


def build_template(texts: Sequence[str], *, share: float = 0.5) -> Template:
    sample = list(texts[:: max(1, len(texts) // SAMPLE)])[:SAMPLE]
    holders: Counter[str] = Counter()
    positions: dict[str, list[float]] = defaultdict(list)
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for text in sample:
        parts = sentences(text)
        seen = set()
        for i, sentence in enumerate(parts):
            key = normalise(sentence)
            if not key or key in seen:
                continue
            seen.add(key)
            holders[key] += 1
            positions[key].append(i / max(1, len(parts)))
            forms[key][sentence] += 1
    needed = max(1, share * len(sample))
    keys = [k for k, n in holders.items() if n >= needed]
    if not keys and holders:  # no sentence most share (heavily edited copies): the most common ones
        top = holders.most_common(1)[0][1]
        keys = [k for k, n in holders.items() if n == top]
    keys.sort(key=lambda k: statistics.median(positions[k]))
    text = " ".join(forms[k].most_common(1)[0][0] for k in keys)
    return Template(text, tuple(keys), shingles(normalise(text)))


def sentence_key(sentence: str) -> str:
    """normalise() for one sentence already cut from a letter's body: the same words, without looking
    for greetings and boilerplate lines again (five times faster; the batch page calls it per sentence)."""
    body = _PHONE.sub(" ", _URL.sub(" ", sentence))
    return _SPACE.sub(" ", _NON_WORD.sub(" ", _strip_accents(body.lower()))).strip()


def personal_additions(text: str, template: Template) -> list[str]:
    """The member's sentences that the template does not hold, in the member's words.

    The sender's name, address, phone and email, greetings, thank-yous and sign-offs are not additions
    (a staffer has nothing to read in them).
    """
    known = set(template.keys)
    added = []
    for sentence in body_sentences(text):
        key = sentence_key(sentence)
        if not key or key in known or len(key.split()) < 3 or is_courtesy(sentence):
            continue
        match = (process.extractOne(key, template.keys, scorer=fuzz.ratio, score_cutoff=EDIT_SIMILARITY)
                 if template.keys else None)
        if match is None:
            added.append(sentence)
    return added


def similarity(text: str, template: Template, cfg: ClusterSettings | None = None) -> float:
    """How much of the template the letter holds (or, for a short template, how alike the two are)."""
    cfg = cfg or ClusterSettings()
    s = shingles(normalise(text), cfg.shingle_words)
    if not s or not template.shingles:
        return 1.0 if normalise(text) == normalise(template.text) else 0.0
    return overlap_score(len(s & template.shingles), len(s), len(template.shingles), cfg)


# --- what counts as a personal addition -------------------------------------------------------------

# The lines a letter ends with when its sign-off is missing or unusual: the sender's name, street,
# city/state/ZIP, phone and email. They never end a sentence with a full stop.
_NAME_LINE = re.compile(r"^(?:(?:mr|mrs|ms|dr|rev)\.?\s+)?[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3}$")
_STREET_LINE = re.compile(r"^(?:\d{1,6}[A-Za-z]?\s+[\w'’.#-]+(?:\s+[\w'’.#-]+){0,7}|p\.?\s?o\.?\s+box\s+\d+.*|"
                          r"(?:apt|suite|unit)\.?\s*#?\s*\w+)$", re.IGNORECASE)
_CITY_LINE = re.compile(r"^[A-Za-z .'’-]{2,40},\s*[A-Za-z .]{2,20}\.?(?:\s+\d{5}(?:-\d{4})?)?$")
_ZIP_LINE = re.compile(r"^(?:[A-Za-z]{2}\s+)?\d{5}(?:-\d{4})?$")
_PHONE_LINE = re.compile(r"^(?:(?:phone|tel|cell|mobile|ph)\.?:?\s*)?\+?1?[\s.-]?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}$",
                         re.IGNORECASE)
_EMAIL_LINE = re.compile(r"^(?:e-?mail:?\s*)?[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+$", re.IGNORECASE)
_DEVICE_LINE = re.compile(r"^sent from my \w+", re.IGNORECASE)
# "Jane Doe, Springfield, IL 62704": name, town and state on one line.
_NAME_TOWN_LINE = re.compile(r"^[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3},\s*[A-Z][\w'’. -]{1,40},\s*"
                             r"(?:[A-Z]{2}|[A-Z][a-z]+(?: [A-Z][a-z]+)?)\.?(?:\s+\d{5}(?:-\d{4})?)?$")
# "A concerned citizen and voter", "Your constituent in Marion": who the sender is, under their name.
_SELF_LINE = re.compile(
    r"^(?:an?|your|one|just an?)?\s*(?:(?:very |deeply )?(?:concerned|proud|longtime|lifelong|long-time|"
    r"registered|fellow|loyal|retired|angry|worried|frustrated|tax-paying)\s+)*(?:citizen|constituent|voter|resident|taxpayer|mother|"
    r"father|parent|grandparent|grandmother|grandfather|veteran|american|member)s?(?:\s+(?:and|&)\s+(?:an?\s+)?"
    r"(?:\w+\s+)?\w+)?(?:\s+(?:of|in|from)\s+[A-Z][\w .'’-]{1,40})?[.!]?$", re.IGNORECASE)
# Courtesies: nothing a staffer must read ("Thank you for your time and service!", "Hi there!").
_COURTESY = re.compile(
    r"^(?:(?:thanks?|thank you)\b[^?]{0,60}|i look forward to (?:your|hearing)[^?]{0,60}|"
    r"have a (?:great|good|nice|blessed|wonderful)[^?]{0,30}|(?:best|warm|kind)(?:est)? (?:regards|wishes)[^?]{0,40}|"
    r"god bless[^?]{0,30}|"
    r"(?:hi|hello|hey|greetings|good (?:morning|afternoon|evening|day))(?: there| all| everyone)?|"
    r"(?:please )?let me know what you (?:plan|intend|are going|will)[^?]{0,30}|"
    r"i (?:would|will) appreciate (?:a|your) (?:response|reply)[^?]{0,40})[\s,.!]*$",
    re.IGNORECASE)
_SIGNED = re.compile(r"^(?:sincerely|respectfully|regards|best|thanks|thank you|cheers|yours)\b[^.?!]{0,20},?\s*"
                     r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3}\.?$", re.IGNORECASE)


def _signature_line(line: str) -> bool:
    """A name, street, city/state/ZIP, phone or email line: the sender, not their letter."""
    line = line.strip().rstrip(",")
    if not line or line[-1] in ".?!" and not _NAME_LINE.match(line):
        return False
    return bool(_NAME_LINE.match(line) or _STREET_LINE.match(line) or _CITY_LINE.match(line)
                or _ZIP_LINE.match(line) or _PHONE_LINE.match(line) or _EMAIL_LINE.match(line)
                or _DEVICE_LINE.match(line) or _NAME_TOWN_LINE.match(line) or _SELF_LINE.match(line))


def body_sentences(text: str) -> list[str]:
    """The letter's sentences without its greeting, sign-off and the sender's name/address block."""
    lines = core_lines(text)
    while lines and _signature_line(lines[-1]):
        lines.pop()
    return [s.strip() for s in _SENTENCE.split(" ".join(lines)) if s.strip()]


def is_courtesy(sentence: str) -> bool:
    """A greeting, a thank-you, a sign-off with a name, or contact details: never a personal addition."""
    s = sentence.strip()
    return bool(_COURTESY.match(s) or _SIGNED.match(s) or _signature_line(s) or _PHONE_LINE.match(s)
                or _EMAIL_LINE.match(s) or (_GREETING.match(s) and len(s.split()) <= 5)
                or _SIGNOFF.match(s))


# Each addition is one kind, the first that fits: a question, a request, a story (the writer's own
# experience), or a comment.
KINDS = ("question", "request", "story", "comment")
_QUESTION = re.compile(r"\?\s*$|^(?:why|how|what|when|where|who|which|is there|are there|will you|would you|"
                       r"can you|could you|do you|does|did you|have you|has the)\b|"
                       r"\b(?:i (?:want|would like|need) to know|i wonder|please (?:explain|tell me|let me know))\b",
                       re.IGNORECASE)
_REQUEST = re.compile(r"\b(?:please|i (?:urge|ask|request|implore|beg|call on|demand|expect)|"
                      r"(?:i|we) (?:want|need|would like) you to|i hope you (?:will|can)|vote (?:yes|no|for|against)|"
                      r"(?:you|congress) (?:must|should|need to)|help (?:me|us)|co-?sponsor)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|my|me|we|our|us|i'm|i've|i'd|we're|we've)\b", re.IGNORECASE)
# ... telling what happened to them or theirs (not "I vote in every election"): a past event, a span of
# time, or someone or something of their own.
# A regular past tense counts only after its subject ("we moved", "my son enlisted"), so that "I oppose the
# proposed rule" is not a story.
_EXPERIENCE = re.compile(
    r"\b(?:(?:i|we|he|she|they|my \w+|our \w+)\s+(?:(?:have|had|has|just|never|recently|finally|also|"
    r"once|then)\s+)?\w{3,}ed|was|were|had|got|lost|went|came|took|spent|paid|saw|became|ago|since|years?|months?|"
    r"grew|grown|born|raised|lived|worked|served|moved|retired|fought|bought|built|married|taught|died|"
    r"(?:my|our) (?:son|daughter|wife|husband|mother|father|mom|dad|family|kids?|children|parents?|grand\w+|"
    r"neighbou?r\w*|farm|business|job|home|house|town|well|school|clinic|doctor|store|shop|land|water|bills?))\b",
    re.IGNORECASE)


def classify_addition(sentence: str) -> str:
    """question, request, story or comment: what a staffer answering this letter must do with it."""
    if _QUESTION.search(sentence):
        return "question"
    if _REQUEST.search(sentence):
        return "request"
    if _FIRST_PERSON.search(sentence) and _EXPERIENCE.search(sentence):
        return "story"
    return "comment"


def addition_kinds(additions: Sequence[str]) -> str | None:
    """The kinds of a letter's additions, sorted and comma-separated (a column the batch page filters on)."""
    kinds = sorted({classify_addition(a) for a in additions})
    return ",".join(kinds) or None


# --- why a member is in its batch --------------------------------------------------------------------

# How a sentence pair was matched (batching.align.SentencePair.how) -> how the page marks the sentence.
_PAIR_KINDS = {"exact": "shared", "edit": "edited", "semantic": "meaning"}


def evidence_from_pairs(text: str, ev: Evidence, template: Template, *, pinned: bool = False) -> Evidence:
    """The letter's sentences marked for the batch page from batching.evidence.explain's sentence pairs:
    shared (a template sentence as written), edited (a light edit of one), meaning (one in other words),
    added (their own words) or other (greetings, thanks, the sender's name and address).

        evidence_from_pairs(text, explain(text, batch.template_text, key=batch.id), template_of(batch))
    """
    how = {sentence_key(p.letter): p.how for p in ev.pairs}
    pieces = []
    for sentence in body_sentences(text):
        key = sentence_key(sentence)
        if key and key in how:
            pieces.append(Piece(sentence, _PAIR_KINDS.get(how[key], "edited")))
        elif len(key.split()) >= 3 and not is_courtesy(sentence):
            pieces.append(Piece(sentence, "added"))
        else:
            pieces.append(Piece(sentence, "other"))
    held = len({sentence_key(p.template) for p in ev.pairs})
    return replace(ev, pieces=tuple(pieces), held=min(held, len(template.keys)), of=len(template.keys),
                   pinned=pinned)


# --- is a near miss worth a person's time ------------------------------------------------------------

def boilerplate(template_texts: Sequence[str], *, min_templates: int = 3) -> frozenset[str]:
    """Sentences (normalised) that three or more campaigns' templates share, such as a web form's stock
    opening ("I am writing about something that has been on my mind") or closing: holding one says
    nothing about which campaign a letter belongs to. Templates counted are different campaigns: those
    whose other sentences are the same (one campaign split into several batches) count once."""
    rests: dict[str, set[frozenset[str]]] = defaultdict(set)
    for text in template_texts:
        keys = frozenset(k for k in (normalise(s) for s in sentences(text or "")) if k)
        for key in keys:
            rests[key].add(keys - {key})
    return frozenset(k for k, others in rests.items() if len(others) >= min_templates)


def distinctive_share(text: str, ev: Evidence, template: Template, common: frozenset[str] = frozenset()) -> float:
    """How much of the template's own words (not its courtesies, not sentences other campaigns' templates
    share) the letter holds: ``ev.score`` (batching.evidence.explain of the letter against the template)
    when the template has none of those, else explain's score against the template without them."""
    parts = [s for s in sentences(template.text) if normalise(s)]
    own = [s for s in parts if normalise(s) not in common and not is_courtesy(s)]
    if len(own) == len(parts):
        return ev.score
    if not own:
        return 0.0
    return explain(text, " ".join(own)).score


# Found by meaning alone, a near miss is listed only when it is mostly the template (a spun copy), in at
# least this many sentences: letters on the same topic in their own words are close in meaning too.
MEANING_ONLY_PAIRS = 2
MEANING_ONLY_LETTER = 0.5


def worth_a_look(text: str, ev: Evidence, template: Template, common: frozenset[str] = frozenset(),
                 *, least: float = UNCERTAIN_FROM) -> bool:
    """Whether a person should decide if the letter belongs to the campaign: joins or nearly joins by
    batching.evidence.explain, holds at least ``least`` of the template's own words (distinctive_share),
    and, when only the semantic stage paired its sentences, is mostly the template."""
    if ev.band == APART or not ev.pairs:
        return False
    if all(p.how == "semantic" for p in ev.pairs) and (len(ev.pairs) < MEANING_ONLY_PAIRS
                                                        or ev.letter_coverage < MEANING_ONLY_LETTER):
        return False
    return distinctive_share(text, ev, template, common) >= least


# --- a title and a stance from the template ----------------------------------------------------------

GENERIC_SUBJECTS = frozenset((
    "", "question", "questions", "a question", "quick question", "hello", "hi", "help", "concern", "concerns",
    "my concern", "request", "issue", "comment", "comments", "letter", "message", "feedback", "urgent",
    "please read", "important", "no subject", "(no subject)", "phone call", "constituent", "constituent letter",
    "from a constituent", "thank you", "thanks", "your vote", "vote", "please help", "contact", "web form"))
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd)\s*:\s*)+", re.IGNORECASE)
_STOP_WORDS = (
    "a an and are as at be been but by for from has have i in is it its me my of on or our please that the their "
    "this to us was we will with you your yours am do not no so any all can would should could these those there "
    "them they he she his her who what which when why how about into than then also very just more most")
_STOP = frozenset(_STOP_WORDS.split(" "))
_ACTION = re.compile(r"\b(support|oppose|vote|reject|protect|stop|pass|fund|cosponsor|co-sponsor|keep|save|block|"
                     r"repeal|defend|expand|restore|end|ban|preserve|reauthorize|strengthen|cut|increase)\b",
                     re.IGNORECASE)
_CAPITALISED_RUN = re.compile(r"\b(?:[A-Z][\w'’.-]*|\d[\w.-]*)(?:\s+(?:(?:of|the|and|for|on|to)\s+)?"
                              r"(?:[A-Z][\w'’.-]*|\d[\w.-]*))+")
_WORD = re.compile(r"[a-z0-9]+")


# "Concern from Columbus", "A question about my district": who wrote or that they wrote, not about what.
_GENERIC_SUBJECT = re.compile(r"^(?:an? |my |our )?(?:concerns?|questions?|comments?|messages?|letters?|notes?|"
                              r"requests?|issues?|feedback|thoughts)(?: (?:from|for|about|regarding|re)\b.*)?$",
                              re.IGNORECASE)


def clean_subject(subject: str) -> str:
    """A subject as a title: no Re:/Fwd:, no shouting, no generic words ("Question", "Concern from Columbus"),
    no single word (a web form's topic menu: "Taxation", "Health" names a subject area, not a campaign)."""
    s = _SUBJECT_PREFIX.sub("", subject or "").strip().strip(" -:")
    if s.isupper():
        s = s.capitalize()
    generic = s.casefold() in GENERIC_SUBJECTS or _GENERIC_SUBJECT.match(s) is not None
    return "" if generic or len(s) < 4 or len(s.split()) < 2 else s


# How letters open a point, which says nothing about the point: "I am writing about", "Please explain".
_LEAD_IN = re.compile(
    r"^(?:(?:i am|i'm) writing (?:to you )?(?:about|regarding|because|to ask about|to say that)\s+|"
    r"(?:please )?(?:explain|tell me|let me know)\s+|i (?:would like|want|need) to know\s+|"
    r"i (?:have|had) a question(?: and a concern)?(?: about)?[:.]?(?:\s+|$)|"
    r"i am (?:worried|concerned) (?:about|that)\s+|"
    r"i (?:think|believe|feel) (?:that )?)", re.IGNORECASE)


def sentence_gist(sentence: str) -> str:
    """A sentence's point as a title: its lead-in dropped ("Please explain how …" -> "How …"), cut at the
    first comma, semicolon or "and", at most twelve words (longer: eight, without trailing small words)."""
    text = _LEAD_IN.sub("", sentence.strip())
    text = re.split(r"[,;:.!?]|\s(?:and|but|because|which|so|while)\s", text)[0]
    words = text.split()
    if len(words) > 12:
        words = words[:8]
        while words and words[-1].lower() in _STOP:
            words.pop()
    if len(words) < 3:
        return ""
    return words[0][0].upper() + " ".join(words)[1:]


def _content(words: Sequence[str]) -> list[str]:
    return [w for w in words if w not in _STOP and len(w) > 1]


def title_phrases(template_text: str, other_texts: Sequence[str] = (), limit: int = 5) -> list[str]:
    """The template's most distinctive phrases, best first: calls to action and names, scored by how
    rare their words are among the other open batches' templates; then, for a template with neither (or
    to have more to choose from), each sentence's gist ("Property taxes in Columbus have doubled")."""
    documents = [set(_WORD.findall(t.lower())) for t in other_texts]
    df: Counter[str] = Counter(w for d in documents for w in d)
    n = len(documents)

    def idf(word: str) -> float:
        return math.log((n + 1) / (df[word] + 1)) + 1

    candidates: dict[str, float] = {}
    gists: dict[str, float] = {}
    for sentence in sentences(template_text):
        sentence = sentence.strip()
        for match in _ACTION.finditer(sentence):
            tail = re.split(r"[,;:.!?]|\s(?:and|because|which|so|but)\s", sentence[match.start():])[0]
            words = tail.split()[:9]
            phrase = " ".join(words).strip(" -")
            if len(words) >= 2:
                candidates[phrase[0].upper() + phrase[1:]] = 0.0
        for match in _CAPITALISED_RUN.finditer(sentence):
            words = match.group(0).split()
            if match.start() == 0 and words[0].lower() in _STOP | {"please", "keep", "save", "support", "oppose",
                                                                    "vote", "stop", "dear"}:
                words = words[1:]
            if len(words) >= 2:
                candidates[" ".join(words).rstrip(".,;:")] = 0.0
        if not is_courtesy(sentence) and (gist := sentence_gist(sentence)):  # what the sentence is about
            gists[gist] = 0.0

    def ranked(found: dict[str, float]) -> list[str]:
        for phrase in found:
            words = _content(_WORD.findall(phrase.lower()))
            # Rare words make a phrase distinctive; every word beyond six makes it a worse title.
            found[phrase] = sum(idf(w) for w in words) / (1 + 0.15 * max(0, len(phrase.split()) - 6))
        return [p for p, _score in sorted(found.items(), key=lambda item: (-item[1], len(item[0]), item[0]))]

    named = ranked(candidates)
    seen = {p.casefold() for p in named}
    return (named + [g for g in ranked(gists) if g.casefold() not in seen])[:limit]


_OPPOSE = re.compile(r"\b(?:oppose[sd]?|opposing|opposition to|vote (?:no|against)|reject|defeat|repeal|"
                     r"(?:do not|don't|never) (?:support|pass|vote for|approve)|stop|block|halt|kill|"
                     r"against (?:this|the|any|hr|s)\b)", re.IGNORECASE)
_SUPPORT = re.compile(r"\b(?:support|supporting|vote (?:yes|for|in favou?r)|co-?sponsor|pass|approve|fund|"
                      r"champion|protect|preserve|expand|strengthen|reauthorize|defend)\b", re.IGNORECASE)
_STRONG = ("oppose", "support", "vote", "against", "reject", "defeat", "repeal", "co", "cospons")


# A sentence that asks for something: only these say what the campaign wants ("Repealing these credits
# would raise bills" describes; "Please vote to keep them" asks).
_ASKS = re.compile(r"\b(?:please|urge|ask(?:ing)? you|writing to|i (?:strongly )?(?:oppose|support)|"
                   r"we (?:oppose|support)|vote|call on|must|should)\b", re.IGNORECASE)


def template_stance(template_text: str) -> str | None:
    """"oppose" or "support" when the template plainly asks for it ("Please oppose …", "Vote yes on …"), else None.

    Only sentences that ask for something count. Explicit words (oppose, support, vote yes/no, reject,
    repeal) count twice; softer ones (stop, protect) once; "do not support" is opposition. A tie says nothing.
    On the demo office's 31 campaign templates this agrees with the demo's own stance on 28; the 3 others
    ask to oppose a harm ("oppose any cuts"), which a person confirming the suggestion will read otherwise.
    """
    oppose = support = 0
    for sentence in sentences(template_text or ""):
        if not _ASKS.search(sentence):
            continue
        for match in _OPPOSE.finditer(sentence):
            oppose += 2 if match.group(0).lower().startswith(_STRONG) or "support" in match.group(0).lower() else 1
        for match in _SUPPORT.finditer(_OPPOSE.sub(" ", sentence)):
            support += 2 if match.group(0).lower().startswith(_STRONG) else 1
    if oppose > support:
        return "oppose"
    if support > oppose:
        return "support"
    return None
