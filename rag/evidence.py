"""Evidence: the sentences of the retrieved passages that bear on the question, numbered.

The model is small, so it gets a few single sentences rather than whole passages: short prompts keep
time-to-first-token low, and a citation then points at exactly one sentence of one article.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .chunking import split_sentences
from .records import Hit
from .text import fold, tokenize

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
_NUMBER = re.compile(r"\d[\d.,]*\d|\d")
_NUMBER_WORDS = r"(one|two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|millions?)"


@dataclass(frozen=True)
class Evidence:
    """One sentence of a retrieved chunk, with offsets into its document."""

    n: int
    hit: Hit
    text: str
    start: int
    end: int
    context: str  # the sentence with its neighbours in the chunk, for checks that need them
    score: float


def answer_type(question: str) -> str:
    """What kind of thing the question asks for: date, number, person, place, role or other."""
    q = question.lower().strip()
    if re.match(r"(when|by when)\b", q) or re.search(r"\b(what|which)\s+(date|day|year|month)\b", q) or "month and year" in q:
        return "date"
    if re.search(r"\bhow (many|much|old|long)\b|\b(what|which)\s+(percentage|percent|share|number|chance)\b|\bhow many\b", q):
        return "number"
    if re.match(r"(who|whom|whose)\b", q) or re.search(r"\b(which|what)\s+(\w+\s+){0,3}(president|minister|leader|official|person|man|woman|candidate|rival)\b", q):
        return "person"
    if re.match(r"where\b", q) or re.search(r"\b(which|what)\s+(city|country|place|website)\b", q):
        return "place"
    if re.search(r"\b(what|which)\s+(post|position|title|job|office|role)\b", q):
        return "role"
    return "other"


def has_type(text: str, kind: str, question: str = "") -> bool:
    """Whether `text` holds a thing of the asked-for kind that the question did not already say."""
    from .conversation import names  # local: conversation is a sibling stage

    q = fold(question)
    low = fold(text)
    if kind == "date":
        months = [m for m in MONTHS if m in low and m not in q]
        years = [y for y in re.findall(r"\b(?:1[89]|20)\d\d\b", low) if y not in q]
        return bool(months) if "month" in q else bool(months or years)  # "what month": a year is not enough
    if kind == "number":
        counted = re.search(r"\bhow many ([a-z]+)", q)
        if counted and counted.group(1) not in ("of", "times"):  # "how many votes": a number of votes
            noun = counted.group(1)
            stem = noun[:5] if len(noun) > 5 else noun.rstrip("s")
            count = rf"(?:{_NUMBER.pattern}|\b{_NUMBER_WORDS})"
            return any(m.group(0) not in q for m in re.finditer(rf"{count}\s+(?:[a-z-]+\s+)?{stem}", low))
        nums = [n for n in _NUMBER.findall(low) if n not in q]
        return bool(nums or re.search(rf"\b{_NUMBER_WORDS}\b", low))
    if kind == "place":  # a name after a preposition of place: "in New York", not just any name
        places = [fold(m.group(2)) for m in _PLACE.finditer(text)]
        return any(p not in q and p.split()[0] not in MONTHS + _WEEKDAYS for p in places)
    if kind == "person":
        return _has_person(text, q, set(tokenize(question)), asked_action(question))
    if kind == "role":  # "What post did Ivanov hold?": a title next to the person asked about
        asked = set(tokenize(question))
        return any(_near(text, n, _ROLES) for n in names(text) if tokenize(n)[-1:] and tokenize(n)[-1] in asked)
    return True


_ROLES = (r"president|minister|secretary|leader|chairman|head|advis[eo]r|ambassador|spokes(?:man|woman|person)|"
          r"director|general|commander|editor|official|chief|premier|envoy|author|translator")

_AUXILIARIES = frozenset("was is were are did does do had has have will would could should can might may".split())


def asked_action(question: str) -> str | None:
    """The verb of a "who did it" question: "Who ordered the arrest?" and "Which candidate finished
    third?" give the tokens of "ordered" and "finished"."""
    q = question.lower()
    aux = "|".join(sorted(_AUXILIARIES))  # "which official is called": passive, the answer need not say it
    m = re.match(r"\s*(?:and\s+)?who\s+([a-z]+)\b", q) or re.match(
        rf"\s*(?:and\s+)?which(?:\s+(?!(?:{aux})\b)[a-z.’'-]+){{1,3}}?\s+([a-z]+ed)\b", q)
    if not m or m.group(1) in _AUXILIARIES:
        return None
    tokens = tokenize(m.group(1))
    return tokens[0] if tokens else None


_GENERIC_ROLES = ("official", "leader", "head", "chief")


def _has_person(text: str, q: str, asked: set[str], verb: str | None) -> bool:
    """A person the question did not name, doing what was asked, with the title asked about."""
    from .conversation import names  # local: conversation is a sibling stage

    # "Who drove the bulldozer?": the driving must be there ("in order to" is not an order).
    if verb and verb not in tokenize(re.sub(r"\bin order (?:to|that)\b", " ", text, flags=re.I)):
        return False
    # "Slobodan Milošević" is not news to a question about "Milošević": surnames decide.
    fresh = [n for n in names(text) if tokenize(n)[-1:] and tokenize(n)[-1] not in asked]
    role = re.search(rf"\b(?:which|what)\s+(?:\w+\s+){{0,3}}?({_ROLES})\b", q)
    if not role:
        return bool(fresh)
    # "Which foreign minister …?": the name must come with that title. A generic "official" or
    # "leader" may come with any title ("Security Council Secretary Nikolai Patrushev").
    title = _ROLES if role.group(1) in _GENERIC_ROLES else role.group(1)
    return any(_near(text, n, title) for n in fresh)


def _near(text: str, name: str, role: str, window: int = 40) -> bool:
    """Whether a title (`role`, a regex) stands within `window` characters of `name` in `text`."""
    at = text.find(name)
    return at >= 0 and bool(re.search(rf"\b(?:{role})", text[max(0, at - window) : at + len(name) + window], re.I))


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PLACE = re.compile(r"\b(in|at|near|from|outside|inside|on)\s+(?:the\s+)?([A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+)*)")


def select_evidence(question: str, hits: Sequence[Hit], embedder, *, limit: int = 4) -> list[Evidence]:  # noqa: ANN001
    """Rank every sentence of the hits by lexical overlap, meaning and answer type; keep `limit`."""
    candidates: list[tuple[Hit, int, int, str, str]] = []
    seen: set[str] = set()
    for hit in hits:
        text = hit.chunk.text
        spans = split_sentences(text)
        for i, (s, e) in enumerate(spans):
            sentence = text[s:e]
            key = fold(sentence)
            if key in seen or len(sentence) < 12:
                continue
            seen.add(key)
            lo, hi = spans[max(0, i - 1)][0], spans[min(len(spans) - 1, i + 1)][1]
            candidates.append((hit, hit.chunk.start + s, hit.chunk.start + e, sentence, text[lo:hi]))
    if not candidates:
        return []
    q_tokens = set(tokenize(question))
    sentence_tokens = [set(tokenize(c[3])) for c in candidates]
    context_tokens = [set(tokenize(c[4])) | set(tokenize(c[0].chunk.title)) for c in candidates]
    weights = _term_weights(q_tokens, context_tokens)
    lexical = np.array([_weighted_overlap(weights, st, ct) for st, ct in zip(sentence_tokens, context_tokens)])
    vectors = embedder.embed([question] + [c[3] for c in candidates])
    dense = vectors[1:] @ vectors[0]
    kind = answer_type(question)
    typed = np.array([1.0 if kind != "other" and has_type(c[3], kind, question) else 0.0 for c in candidates])
    rank_prior = np.array([1.0 / (c[0].rank + 1) for c in candidates])
    score = LEXICAL_WEIGHT * lexical + DENSE_WEIGHT * dense + TYPED_WEIGHT * typed + 0.1 * rank_prior
    order = np.argsort(-score)[:limit]
    return [
        Evidence(n=i + 1, hit=candidates[j][0], text=candidates[j][3], start=candidates[j][1], end=candidates[j][2],
                 context=candidates[j][4], score=float(score[j]))
        for i, j in enumerate(order)
    ]


LEXICAL_WEIGHT, DENSE_WEIGHT, TYPED_WEIGHT, CONTEXT_SHARE = 0.45, 0.4, 0.2, 0.5


def _term_weights(q_tokens: set[str], pool: Sequence[set[str]]) -> dict[str, float]:
    """How rare each question term is among the candidates: the name every sentence repeats counts
    less than the event asked about ("arrested")."""
    n = len(pool)
    return {t: math.log(1 + n / (1 + sum(t in c for c in pool))) for t in q_tokens}


def _weighted_overlap(weights: dict[str, float], sentence: set[str], context: set[str]) -> float:
    """Weighted share of the question's terms in the sentence. A term found only in the neighbouring
    sentences (a "him" whose name came just before) counts half."""
    if not weights:
        return 0.0
    total = sum(weights.values()) or 1.0
    got = sum(w * (1.0 if t in sentence else CONTEXT_SHARE if t in context else 0.0) for t, w in weights.items())
    return got / total


SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered sources. "
    "Reply with one short sentence that states the answer, then the number of the source in brackets."
)
# One worked example: a 135M model follows a pattern far better than an instruction.
_EXAMPLE_USER = (
    "Sources:\n[1] The summit was held in Oslo on May 3, 1999, and lasted two days.\n"
    "[2] The minister, Anna Berg, left the party in 2004.\n\nQuestion: When did Anna Berg leave the party?"
)
_EXAMPLE_ANSWER = "Anna Berg left the party in 2004 [2]."


def prompt_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    """Chat messages for the generator. Sources are quoted data: their text never becomes an
    instruction, and whatever the model does with them is checked afterwards anyway."""
    sources = "\n".join(f"[{ev.n}] {_one_line(ev.text)}" for ev in evidence)
    user = f"Sources:\n{sources}\n\nQuestion: {_one_line(question)}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _EXAMPLE_USER},
        {"role": "assistant", "content": _EXAMPLE_ANSWER},
        {"role": "user", "content": user},
    ]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
