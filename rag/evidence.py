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
from .kinds import answer_type, fits, is_checkable, known_places
from .records import Hit
from .text import fold, tokenize


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

    @property
    def before(self) -> str:
        """The chunk's text up to this sentence: where a "he" or a transcript's speaker was named."""
        return self.hit.chunk.text[: self.start - self.hit.chunk.start]

    def fits(self, question: str, places: frozenset[str] = frozenset()) -> bool:
        return fits(self.text, answer_type(question), question, self.before, places)


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
    checkable, places = is_checkable(question), known_places(h.chunk.text for h in hits)
    typed = np.array([1.0 if checkable and fits(c[3], kind, question, c[0].chunk.text[: c[1] - c[0].chunk.start], places)
                      else 0.0 for c in candidates])
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
