"""What kind of answer a question asks for, and whether a sentence holds one.

A 135M model answers whatever it can find words for; these checks let the engine rank the sentences
that could answer, reject a draft that answers another question, and refuse when no evidence
sentence holds the asked date, count, place or event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .conversation import names
from .text import fold, tokenize

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
_NUMBER = re.compile(r"\d[\d.,]*\d|\d")
_NUMBER_WORDS = r"(one|two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|millions?)"
# Kinds whose check is strict enough to refuse on. Any capitalised word passes as a "person", so a
# person is strict only with the action asked about ("Who ordered …?"); see is_strict().
STRICT_KINDS = ("date", "number", "place", "website")


def answer_type(question: str) -> str:
    """What kind of thing the question asks for: date, number, person, place, website, role, name,
    condition, response, origin (of a name) or other."""
    q = question.lower().strip()
    if re.match(r"(when|by when)\b", q) or re.search(r"\b(what|which)\s+(date|day|year|month)\b", q) or "month and year" in q:
        return "date"
    if re.search(r"\bhow (many|much|old|long)\b|\b(what|which)\s+(percentage|percent|share|number|chance)\b|\bhow many\b", q) \
            or _MEASURE.search(q):
        return "number"
    if re.match(r"(who|whom|whose)\b", q) or re.search(r"\b(which|what)\s+(\w+\s+){0,3}(president|minister|leader|official|person|man|woman|candidate|rival)\b", q):
        return "person"
    if re.search(r"\b(which|what)\s+(web\s?site|site|web\s?page)\b", q):
        return "website"
    if re.match(r"where\b", q) or re.search(r"\b(which|what)\s+(city|country|place)\b", q):
        return "place"
    if re.search(r"\b(what|which)\s+(post|position|title|job|office|role)\b", q):
        return "role"
    if _ORIGIN.match(question):
        return "origin"
    if re.search(r"\b(popular|common|nick)\s*name\b|\b(?:is|was|are|were)\s+[\w\s’'-]+?\s+(called|known as|dubbed|nicknamed)\s*\?", q):
        return "name"
    if re.search(r"\b(what|which|under what|on what)\s+(conditions?|terms|preconditions?)\b", q):
        return "condition"
    if _RESPONSE.match(question):
        return "response"
    return "other"


_DURATION = r"(?:years?|months?|weeks?|days?|hours?|minutes?|decades?|centuries)\b"
# Figures that are always reported as such: "turnout was 71 percent", not a bare number nearby.
_MEASURE = re.compile(r"\b(turnout|population|budget|salary|death toll|casualties|gdp|inflation|unemployment)\b")
_ORIGIN = re.compile(r"\s*(?:and\s+)?why\s+(?:is|was|are|were)\s+(?P<name>.+?)\s+(?:called|named|known|dubbed|nicknamed)\b",
                     re.I)
_RESPONSE = re.compile(r"\s*(?:and\s+)?how did\s+(?P<who>.+?)\s+(?:respond|react|reply|answer)\b", re.I)
_RESPONSE_CUE = re.compile(r"\b(in turn|in response|responded|replied|answered|reacted|retorted|agreed|refused|declined|"
                           r"rejected|promised|accepted|objected)\b", re.I)
_NAMING = re.compile(r"\b(?:so-called|known as|called|dubbed|nicknamed|named)\s+(?:the\s+)?[“\"]?[A-Z]")
_QUOTED_NAME = re.compile(r"[“\"]((?:the\s+)?[A-Z][^”\"]{2,60})[”\"]")
_CONDITION = re.compile(r"\b(if|unless|provided|providing|so long as|as long as|on condition|only if|in exchange for|"
                        r"in return for)\b", re.I)
_WEBSITE = re.compile(r"\b(web\s?site|site|web\s?page|online)\b|https?://|www\.|\w\.(?:com|org|net|gov)\b", re.I)


def has_type(text: str, kind: str, question: str = "", places: frozenset[str] = frozenset()) -> bool:
    """Whether `text` holds a thing of the asked-for kind that the question did not already say.
    `places` (see known_places) are names the passages use as places elsewhere: "Belgrade
    witnessed rallies" names a place though no "in" comes before it."""
    q = fold(question)
    low = fold(text)
    if kind == "date":
        months = [m for m in MONTHS if m in low and m not in q]
        years = [y for y in re.findall(r"\b(?:1[89]|20)\d\d\b", low) if y not in q]
        return bool(months) if "month" in q else bool(months or years)  # "what month": a year is not enough
    if kind == "number":
        return _has_number(low, q)
    if kind == "place":  # a name after a preposition of place: "in New York", not just any name
        found = [fold(m.group(2)) for m in _PLACE.finditer(text)] + _places_named(text, places)
        return any(p not in q and p.split()[0] not in MONTHS + _WEEKDAYS for p in found)
    if kind == "person":
        return _has_person(text, q, set(tokenize(question)), _action_word(question))
    if kind == "website":
        return bool(_WEBSITE.search(text))
    if kind == "name":  # "the so-called “Bulldozer Revolution”": a name given to the thing asked about
        quoted = [m.group(1) for m in _QUOTED_NAME.finditer(text)]
        return bool(_NAMING.search(text)) or any(fold(n) not in q for n in quoted)
    if kind == "origin":  # "Why the Bulldozer Revolution?": a sentence with a bulldozer in it, not the name again
        origin = _ORIGIN.match(question)
        words = [w for w in re.findall(r"\b[A-Z][a-z]{2,}\b", origin.group("name") if origin else "") if w != "The"]
        words = words[:-1] or words  # the head noun ("Revolution") is what it is; the rest is why
        return any(re.search(rf"\b{w.lower()}\b", text) for w in words)
    if kind == "condition":
        return bool(_CONDITION.search(text))
    if kind == "response":  # "Clinton, in turn, promised …": the one asked about, answering
        who = _RESPONSE.match(question)
        surname = tokenize(who.group("who"))[-1:] if who else []
        return bool(_RESPONSE_CUE.search(text)) and all(t in tokenize(text) for t in surname)
    if kind == "role":  # "What post did Ivanov hold?": a title next to the person asked about
        asked = set(tokenize(question))
        return any(_near(text, n, _ROLES) for n in names(text) if tokenize(n)[-1:] and tokenize(n)[-1] in asked)
    return True


def _has_number(low: str, q: str) -> bool:
    """A figure for a "how many / how much / how long / what share" question (folded text and question)."""
    measure = _MEASURE.search(q)
    if measure:  # "What was the turnout?": a number within a few words of "turnout"
        num, noun = f"(?:{_NUMBER.pattern})", measure.group(1)
        near = rf"{noun}\W+(?:\S+\s+){{0,5}}?{num}|{num}\S*\s+(?:\S+\s+){{0,2}}?{noun}"
        return bool(re.search(near, low))
    counted = re.search(r"\bhow many ([a-z]+)", q)
    if counted and counted.group(1) not in ("of", "times"):  # "how many votes": a number of votes
        noun = counted.group(1)
        stem = noun[:5] if len(noun) > 5 else noun.rstrip("s")
        count = rf"(?:{_NUMBER.pattern}|\b{_NUMBER_WORDS})"
        return any(m.group(0) not in q for m in re.finditer(rf"{count}\s+(?:[a-z-]+\s+)?{stem}", low))
    if re.search(r"\bhow long\b", q):  # a duration: "two years", "a few months"
        spans = [m for m in re.finditer(rf"(?:{_NUMBER.pattern}|\b{_NUMBER_WORDS}|\ba|\ban|\bfew|\bseveral)\s+"
                                        rf"(?:more\s+)?{_DURATION}", low) if m.group(0) not in q]
        # "How long was the sentence?": a duration of the sentence, not "a few months later".
        noun = re.search(r"\bhow long (?:was|is|were|are|will be) the ([a-z]+)", q)
        if noun:
            stem = noun.group(1)[:5]
            return any(re.search(stem, low[max(0, m.start() - 40) : m.end() + 40]) for m in spans)
        return bool(spans)
    nums = [n for n in _NUMBER.findall(low) if n not in q]
    return bool(nums or re.search(rf"\b{_NUMBER_WORDS}\b", low))


_ROLES = (r"president|minister|secretary|leader|chairman|head|advis[eo]r|ambassador|spokes(?:man|woman|person)|"
          r"director|general|commander|editor|official|chief|premier|envoy|author|translator")

_AUXILIARIES = frozenset("was is were are did does do had has have will would could should can might may".split())


def asked_action(question: str) -> str | None:
    """The verb of a "who did it" question: "Who ordered the arrest?" and "Which candidate finished
    third?" give the tokens of "ordered" and "finished"."""
    word = _action_word(question)
    tokens = tokenize(word) if word else []
    return tokens[0] if tokens else None


def _action_word(question: str) -> str | None:
    q = question.lower()
    aux = "|".join(sorted(_AUXILIARIES))  # "which official is called": passive, the answer need not say it
    m = re.match(r"\s*(?:and\s+)?who\s+([a-z]+)\b", q) or re.match(
        rf"\s*(?:and\s+)?which(?:\s+(?!(?:{aux})\b)[a-z.’'-]+){{1,3}}?\s+([a-z]+ed)\b", q)
    return None if not m or m.group(1) in _AUXILIARIES else m.group(1)


def _does(text: str, word: str) -> bool:
    """Whether `text` says the asked action was done: "arrested" for "Who arrested him?", not "an
    arrest warrant"; "in order to" is not an order. A credit line counts for its job: "Text by
    Denis Dmitriev" says who wrote it, "Translation by …" who translated it."""
    stem = tokenize(word)[0]
    low = re.sub(r"\bin order (?:to|that)\b", " ", fold(text))
    for credit in _CREDIT.finditer(text):
        job = (credit.group(1) or "").lower()
        if job[:5] == stem[:5] or (stem in ("wrote", "write") and job in _WRITING):
            return True
    if word == stem:  # "Who drove …?": the word as asked
        return bool(re.search(rf"\b{re.escape(word)}\b", low))
    # An inflected question verb needs an inflected verb in the text: a bare "arrest" is a noun.
    return bool(re.search(rf"\b{re.escape(stem)}\w*?(?:ed|s|ing)\b", low)) or any(
        re.search(rf"\b{f}\b", low) for f in _IRREGULAR.get(stem, "").split())


_CREDIT = re.compile(r"^\s*(?:(\w+)\s+)?[Bb]y\s+[A-Z]", re.M)
_WRITING = ("", "text", "story", "words", "report", "reporting", "article", "written")


_GENERIC_ROLES = ("official", "leader", "head", "chief")


def _has_person(text: str, q: str, asked: set[str], verb: str | None) -> bool:
    """A person the question did not name, doing what was asked, with the title asked about."""
    # "Who drove the bulldozer?": the driving must be there.
    if verb and not _does(text, verb):
        return False
    # "Slobodan Milošević" is not news to a question about "Milošević": surnames decide.
    fresh = [n for n in names(text) if tokenize(n)[-1:] and tokenize(n)[-1] not in asked]
    role = re.search(rf"\b(?:which|what)\s+(?:\w+\s+){{0,3}}?({_ROLES})\b", q) or _asked_title(q)
    if not role:
        return bool(fresh)
    # "Which foreign minister …?": the name must come with that title. A generic "official" or
    # "leader" may come with any title ("Security Council Secretary Nikolai Patrushev").
    title = _ROLES if role.group(1) in _GENERIC_ROLES else role.group(1)
    return any(_near(text, n, title) for n in fresh)


def _asked_title(question: str) -> re.Match | None:
    """The title in "Who was the U.S. ambassador …?": the answer is whoever held it."""
    # The title must be the head noun: "Milošević's chief rival" asks for a rival, not a chief.
    return re.match(rf"\s*(?:and\s+)?who\s+(?:is|was|are|were)\s+(?:the\s+)?(?:[\w.’'-]+\s+){{0,3}}?({_ROLES})"
                    rf"(?=\s+(?:of|to|in|for|at|from|on|during)\b|\s*[?,]|\s*$)", question, re.I)


def _near(text: str, name: str, role: str, window: int = 40) -> bool:
    """Whether a title (`role`, a regex) stands within `window` characters of `name` in `text`."""
    at = text.find(name)
    return at >= 0 and bool(re.search(rf"\b(?:{role})", text[max(0, at - window) : at + len(name) + window], re.I))


def _places_named(text: str, places: frozenset[str]) -> list[str]:
    """Known places named in `text` as places: "Belgrade witnessed rallies", but not the
    jurisdiction of a title ("President of Montenegro", "Montenegro’s president")."""
    found = []
    for name in names(text):
        if fold(name) in places:
            at = text.find(name)
            if not re.search(r"\bof\s+(?:the\s+)?$", text[:at]) and not re.match(r"[’'ʼ]s\b", text[at + len(name):]):
                found.append(fold(name))
    return found


def known_places(texts: Iterable[str]) -> frozenset[str]:
    """Folded names that stand after a preposition of place somewhere in `texts` ("in Belgrade")."""
    # Only "in"/"at"/"near": "problems from Milošević" and "pressure on Milošević" name no place.
    found = (fold(m.group(2)) for text in texts for m in _PLACE.finditer(text) if m.group(1).lower() in ("in", "at", "near"))
    return frozenset(p for p in found if p.split()[0] not in MONTHS + _WEEKDAYS)


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PLACE = re.compile(r"\b(in|at|near|from|outside|inside|on)\s+(?:the\s+)?([A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)*)")


@dataclass(frozen=True)
class Event:
    """The named actor and the verb of a question: "When did Sergey Ivanov meet Đukanović?" gives
    subject "ivanov" and verb "meet"; the verb is None for a light verb ("make that request")."""

    subject: str
    verb: str | None
    speech: bool  # "What did Schroeder tell Putin?": the subject must be the one speaking


_SPEECH = frozenset("say tell claim argue state write reply answer warn promise".split())
_LIGHT = frozenset("make do have get take give go come put set become hold".split())
_ADVERB = r"(?:\w+ly|later|already|still|first|ever|again|then|really|also|once)"
_CAP = r"[A-ZÀ-ÖØ-ÞĐ][\w.-]*(?:[’'ʼ][A-Z][\w-]*)?"  # a capitalised word; "O'Brien" but not "Putin's"
_EVENT = re.compile(
    rf"\s*(?i:(?:and\s+)?(?:when|by when|what|where|(?:on|in|by|for|at|during)\s+(?:what|which)\s+[\w\s]+?|"
    rf"(?:what|which)\s+(?:date|day|year|month)|starting\s+in\s+what\s+year)\s+(?:did|does|do|had|has|was|were|is)\s+"
    rf"(?:the\s+)?)(?P<subject>{_CAP}(?:\s+{_CAP})*)(?:\s+and\s+{_CAP}(?:\s+{_CAP})*)?(?:[’'ʼ]s\s+[a-z]+)?"
    rf"\s+(?:{_ADVERB}\s+)*(?P<verb>(?!{_ADVERB}\b)[a-z]+)\b")
# Past forms the stem does not reach: "began" for "begin", "told" for "tell".
_IRREGULAR = {
    "begin": "began begun", "meet": "met", "tell": "told", "say": "said", "die": "died death dead",
    "win": "won", "lose": "lost", "leave": "left", "send": "sent", "speak": "spoke spoken", "write": "wrote written",
    "find": "found", "think": "thought", "bring": "brought", "buy": "bought", "fight": "fought", "keep": "kept",
    "sell": "sold", "seek": "sought", "flee": "fled", "lead": "led", "hear": "heard", "know": "knew known",
    "see": "saw seen", "choose": "chose chosen", "break": "broke broken", "fall": "fell fallen", "run": "ran",
    "stand": "stood", "pay": "paid", "build": "built", "spend": "spent", "shoot": "shot", "strike": "struck",
    "swear": "swore sworn", "drive": "drove driven", "rise": "rose risen", "fly": "flew flown",
}
_SAID = r"(?:said|says|told|tells|claimed|claims|argued|stated|wrote|writes|replied|answered|warned|promised)"
_PRONOUN = re.compile(r"\b(he|him|his|she|her|they|them|their)\b", re.I)


def asked_event(question: str) -> Event | None:
    """Who did what, in a date question or a "what did X say" question; None otherwise."""
    m = _EVENT.match(question)
    if not m:
        return None
    subject = tokenize(m.group("subject"))
    verb = m.group("verb").lower()
    if not subject:
        return None
    speech = verb in _SPEECH and question.lower().lstrip().startswith(("what", "and what"))
    return Event(subject[-1], None if verb in _LIGHT else verb, speech)


def states_event(sentence: str, before: str, event: Event) -> bool:
    """Whether `sentence` says that the subject did the thing: the subject is named in it (or
    stands in the sentence before it for a "he"), and the verb is there in some form. For speech,
    the subject must be the speaker: "X said", "according to X", or a transcript's "X:" label."""
    words = tokenize(sentence)
    previous = _last_sentence(before)
    named = event.subject in words or (_PRONOUN.search(sentence) is not None and event.subject in tokenize(previous))
    if event.speech:
        label = re.findall(r"(?m)^\s*([A-Z][\w’'ʼ. -]{1,40}):", before + sentence)
        if label and event.subject in tokenize(label[-1]):
            return True  # the sentence is in the subject's turn of a transcript
        low, who = fold(sentence), re.escape(event.subject)
        # "Putin said", "Koštunica’s advisers later claimed", "said Putin", "according to Putin" — but
        # not "Putin told Schroeder": the one told is not the speaker.
        return bool(re.search(rf"\b{who}\w*\b(?:\W+\w+){{0,3}}?\W+{_SAID}\b", low)
                    or re.search(rf"\b(?:said|says|according to)\W+(?:\w+\W+){{0,2}}?{who}", low))
    if not named:
        return False
    if event.verb is None:
        return True
    stem = tokenize(event.verb)[0] if tokenize(event.verb) else event.verb
    folded = re.findall(r"[a-z]+", fold(sentence))
    forms = _IRREGULAR.get(event.verb, "").split()
    # "phone" in "telephoned", "meet" in "meeting"; a short stem must start the word ("die", "died").
    return any(w in forms or (w.startswith(stem) if len(stem) < 4 else stem in w) for w in folded)


def _last_sentence(text: str) -> str:
    """The last sentence of `text` (the one a pronoun most likely points back to)."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return parts[-1] if parts else ""


def event_applies(question: str, kind: str) -> Event | None:
    """The event to check: for date questions and for "what did X say" questions."""
    event = asked_event(question)
    return event if event and (kind == "date" or event.speech) else None


def fits(sentence: str, kind: str, question: str, before: str = "", places: frozenset[str] = frozenset()) -> bool:
    """has_type(), and for a date or speech question also the asked event (see states_event)."""
    event = event_applies(question, kind)
    return has_type(sentence, kind, question, places) and (event is None or states_event(sentence, before, event))


def is_checkable(question: str) -> bool:
    """Whether fits() can tell answering sentences from others for this question."""
    kind = answer_type(question)
    return kind != "other" or event_applies(question, kind) is not None


def is_strict(question: str) -> bool:
    """Whether a question whose evidence holds no fitting sentence should be refused before drafting."""
    kind = answer_type(question)
    return (kind in STRICT_KINDS or (kind == "person" and (asked_action(question) or _asked_title(question)) is not None)
            or event_applies(question, kind) is not None)
