"""The checked answer: the model's sentence if it agrees with the chosen evidence, else the exact span.

The reader has already decided which sentence answers (or that none does, below the threshold:
a refusal). The model only phrases the answer, and its sentence is kept only when its numbers and
names stand in that sentence, it says what the question asked for (the span of the asked type, when
the question asks for one), its subjects are the sentence's subjects, and most of its words are the
sentence's. Otherwise the answer is the span plus the quoted sentence: never an unchecked claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .chunking import split_sentences
from .metrics import ungrounded_terms
from .nlp import Parser
from .question import Question, _names
from .reader import Evidence
from .records import Citation, Hit
from .text import fold, tokenize

_MARKER = re.compile(r"\s*\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
REFUSAL_PREFIX = "The archive does not say"
MIN_WORD_SHARE = 0.7


@dataclass(frozen=True)
class Verdict:
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    reason: str = ""
    drafted: bool = False  # the model's own sentence was kept


def verify(question: Question, draft: str, best: Evidence, parser: Parser) -> Verdict:
    sentence = _first_sentence(draft)
    if sentence and _agrees(sentence, question, best, parser):
        return _cite(sentence, best, drafted=True)
    quote = f"“{best.text.strip()}”"
    return _cite(f"{best.span}: {quote}" if best.span else quote, best)


def _agrees(sentence: str, question: Question, ev: Evidence, parser: Parser) -> bool:
    source = fold(ev.text)
    if any(fold(n) not in source for n in _NUMBER.findall(sentence)):
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
    if any(fold(n) not in source for n in _names(doc)):
        return False
    return _roles_agree(doc, src)


_OBJECT_DEPS = ("dobj", "iobj", "dative", "pobj")


def _roles_agree(draft, source) -> bool:  # noqa: ANN001
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


def _cite(sentence: str, ev: Evidence, *, drafted: bool = False) -> Verdict:
    c = ev.hit.chunk
    citation = Citation(1, c.doc_id, c.title, c.chunk_id, ev.text, ev.start, ev.end)
    body = sentence.rstrip()
    if body.endswith("”"):  # a quotation keeps its own punctuation inside the marks
        return Verdict(f"{body} [1]", (citation,), refused=False, drafted=drafted)
    end = body[-1] if body[-1:] in (".", "!") else "."
    body = body[:-1] if body[-1:] in (".", "!", "?") else body
    return Verdict(f"{body} [1]{end}", (citation,), refused=False, drafted=drafted)


def refusal(question: str, hits: Sequence[Hit], reason: str = "") -> Verdict:
    lines = [f"{REFUSAL_PREFIX} — no passage in the archive answers: “{question.strip()}”"]
    if hits:
        lines.append("Closest passages:")
        for h in hits[:3]:
            snippet = h.chunk.text[:160].replace("\n", " ")
            lines.append(f"- {h.chunk.title}: “{snippet}…”")
    return Verdict("\n".join(lines), (), refused=True, reason=reason)
