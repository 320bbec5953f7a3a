"""The checked answer and the two ways of not answering.

An answer is the phrase the model copied, found in the article (rag/reading.py), then the sentence
that holds it, quoted, with its [n] marker and the article's date. A reply the model wrote in words
of its own is kept only when the verifier finds that it agrees with a sentence it read: its numbers
and names stand in that sentence, it says what was asked (the span of the asked type), its subjects
are the sentence's subjects, and most of its words are the sentence's. Never an unchecked claim.

Not answering comes in two kinds, and the difference matters to a journalist: "No confident
answer" when passages were found but none states the answer surely enough (the closest are shown,
each with its best sentence), and "Not in the archive" only when retrieval found nothing that
matches the question at all. The engine never says the archive lacks what it may hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .chunking import split_sentences
from .grounding import NUMBER, ungrounded_terms
from .nlp import Parser
from .question import Question, names_in
from .reader import Evidence
from .reading import Located
from .records import ANSWERED, NOT_FOUND, UNCERTAIN, Citation, Hit
from .text import fold, tokenize

_MARKER = re.compile(r"\s*\[(\d+)\]")
REFUSAL_PREFIX = "No confident answer"
NOT_FOUND_PREFIX = "Not in the archive"


@dataclass(frozen=True)
class Verdict:
    """What the engine makes of a reading: an answer with its citations, or a refusal and why."""

    text: str
    citations: tuple[Citation, ...]
    refused: bool
    reason: str = ""
    drafted: bool = False  # the model's own sentence was kept
    status: str = ANSWERED
    closest: tuple[Citation, ...] = ()


def answer_located(found: Located, *, as_of: bool = False) -> Verdict:
    """The phrase first, then the sentence that holds it, quoted, with [1] and the article's date;
    `as_of`: the question asks for the latest state, so the answer is dated "As of DATE". An answer
    from a corrected article carries the correction."""
    ev, sent = found.window.evidence, found.sentence
    c = ev.hit.chunk
    citation = Citation(1, c.doc_id, c.title, c.chunk_id, sent.text, sent.start, sent.end, c.date, c.correction)
    quote = sent.text.strip()
    date = f" ({citation.date})" if citation.date else ""
    if found.how == "checked":  # the model's own sentence, checked against this one
        body = found.phrase.rstrip(" .!")
        text, drafted = f"{body} [1]{date}. Source: “{quote}”", True
    elif len(found.phrase) >= 0.8 * len(quote):  # the answer is the sentence itself
        text, drafted = f"“{quote}” [1]{date}", False
    else:
        text, drafted = f"{found.phrase} — “{quote}” [1]{date}", False
    if as_of and citation.date:
        text = f"As of {citation.date}: {text}"
    if citation.correction:
        text += f"\nCorrection to [1]: {citation.correction}"
    return Verdict(text, (citation,), refused=False, drafted=drafted)


# Share of a sentence's words (in the model's own words) that its source must hold.
MIN_WORD_SHARE = 0.7


def agrees(sentence: str, question: Question, ev: Evidence, parser: Parser) -> bool:
    """Whether a sentence in the model's own words says what `ev` says (see the module's docstring)."""
    sentence = _first_sentence(sentence)
    return bool(sentence) and _agrees(sentence, question, ev, parser)


def _agrees(sentence: str, question: Question, ev: Evidence, parser: Parser) -> bool:
    source = fold(ev.text)
    if any(fold(n) not in source for n in NUMBER.findall(sentence)):
        return False  # a small model borrows numbers from the sentence next door
    if ungrounded_terms(sentence, [ev.text]):
        return False  # a capitalised word the sentence does not have
    words = tokenize(sentence)
    source_words = set(tokenize(ev.text))
    if not words or sum(w in source_words for w in words) / len(words) < MIN_WORD_SHARE:
        return False
    if not set(words) - set(question.terms):
        return False  # an echo of the question answers nothing
    if ev.span and fold(ev.span) not in fold(sentence):
        return False  # it must say what was asked
    doc, src = parser([sentence, ev.text])
    if any(fold(n) not in source for n in names_in(doc)):
        return False
    return _roles_agree(doc, src)


_OBJECT_DEPS = ("dobj", "iobj", "dative", "pobj")


def _roles_agree(draft, source) -> bool:
    """No subject of the draft is only ever an object in the source: "Clinton told Putin" does not
    become "Putin told Clinton". (A passive's "by X" is the subject of the active rephrasing.)"""
    for tok in draft:
        if tok.dep_ not in ("nsubj", "nsubjpass") or tok.pos_ not in ("PROPN", "NOUN"):
            continue
        same = [t for t in source if t.lemma_.lower() == tok.lemma_.lower()]
        if same and all(t.dep_ in _OBJECT_DEPS and t.head.dep_ != "agent" for t in same):
            return False
    return True


def _first_sentence(draft: str) -> str:
    text = _MARKER.sub("", draft).strip()
    spans = split_sentences(text)
    if not spans:
        return ""
    s, e = spans[0]
    first = text[s:e].strip()
    return "" if first.endswith("?") or fold(first).startswith("not in sources") else first


def refusal(question: str, hits: Sequence[Hit], reason: str = "", evidence: Sequence[Evidence] = ()) -> Verdict:
    """No confident answer: the closest passages, each with its best-ranked sentence (when the ranker
    scored one) as what to read first."""
    lines = [f"{REFUSAL_PREFIX}. The archive may hold it, but no passage found states it surely enough "
             f"to cite: “{question.strip()}”"]
    closest: list[Citation] = []
    for h in hits[:3]:
        best = next((ev for ev in evidence if ev.hit.chunk.chunk_id == h.chunk.chunk_id), None)
        c = h.chunk
        if best is not None:
            quote, start, end = best.text, best.start, best.end
        else:
            quote, start, end = c.text[:200], c.start, c.start + min(len(c.text), 200)
        closest.append(Citation(len(closest) + 1, c.doc_id, c.title, c.chunk_id, quote, start, end, c.date,
                                c.correction))
    if closest:
        lines.append("Closest passages:")
        for cit in closest:
            date = f", {cit.date}" if cit.date else ""
            lines.append(f"- {cit.title}{date}: “{' '.join(cit.quote.split())}”")
    return Verdict("\n".join(lines), (), refused=True, reason=reason, status=UNCERTAIN, closest=tuple(closest))


def not_found(question: str, reason: str = "") -> Verdict:
    """Retrieval found nothing that matches the question: the one case where the archive is said
    not to hold it (as far as search can tell)."""
    text = (f"{NOT_FOUND_PREFIX}. No archived article matches this question: “{question.strip()}”")
    return Verdict(text, (), refused=True, reason=reason, status=NOT_FOUND)
