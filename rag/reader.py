"""The ranker: every sentence of the retrieved passages is a candidate, scored by a fitted model.

Features are general by construction (no topic words): meaning (dense cosine), IDF-weighted overlap
of stemmed words, coverage of the question's names and numbers, an entity of the asked type that the
question does not already contain, the asked verb and subject, and where the sentence stands. A
logistic regression fitted on the tune parts of the evaluation sets (`python -m eval.fit_reader`)
turns them into the probability that the sentence answers the question. That probability cannot
tell a right sentence from a wrong one well enough to answer from (issue 23), so it only chooses what
the language model reads (rag/reading.py) and which rewrite of a follow-up to keep; whether to answer
is rag/decision.py's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunking import split_sentences
from .fitted import LogisticModel
from .nlp import Parser
from .question import Question
from .records import Hit
from .text import fold, tokenize

MODEL_PATH = Path(__file__).resolve().parent / "reader_model.json"
# Sentences parsed per question: the best by the cheap first-stage score. Parsing is the costly step.
SHORTLIST = 14
CONTEXT_SHARE = 0.5

FEATURES = (
    "dense", "dense_gap", "dense_title", "dense_title_gap", "lex", "lex_ctx", "lex_gap", "names_sent",
    "names_ctx", "numbers_ctx", "typed", "type_new", "span_close", "new_name", "verb", "no_verb",
    "subject_in_sent", "subject_role", "pronoun_subject", "rank", "first", "short",
    "verb_found", "verb_slot", "verb_args", "form_noun", "unslotted", "unit", "unit_missing",
)


@dataclass(frozen=True)
class Evidence:
    """A candidate sentence of a retrieved chunk, with offsets into its document and its score."""

    n: int
    hit: Hit
    text: str
    start: int
    end: int
    context: str  # the sentence with its neighbours in the chunk
    score: float  # probability that it answers the question
    features: Mapping[str, float] = field(default_factory=dict)
    span: str = ""  # the entity of the asked type it holds, when the question asks for one

    @property
    def before(self) -> str:
        return self.hit.chunk.text[: self.start - self.hit.chunk.start]


class ReaderModel(LogisticModel):
    """The ranker's weights and its threshold (rag/reader_model.json)."""

    FEATURES = FEATURES
    KIND = "reader model"
    REFIT = "python -m eval.fit_reader"
    PATH = MODEL_PATH


@dataclass(frozen=True)
class _Sentence:
    hit: Hit
    start: int
    end: int
    text: str
    context: str
    index: int  # position of the sentence in its chunk


def candidates(hits: Sequence[Hit]) -> list[_Sentence]:
    out: list[_Sentence] = []
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
            out.append(_Sentence(hit, hit.chunk.start + s, hit.chunk.start + e, sentence, text[lo:hi], i))
    return out


def read(question: Question, hits: Sequence[Hit], embedder, parser: Parser,
         model: ReaderModel | None, *, limit: int = 4) -> list[Evidence]:
    """The candidates ranked by probability of answering (features only when `model` is None)."""
    cands = candidates(hits)
    if not cands:
        return []
    # A name is matched by its last word (the article says "Koštunica" after "Vojislav Koštunica"
    # once), so a question's given names do not count as words the sentence must repeat.
    given = {t for n in question.names for t in tokenize(n)[:-1]}
    q_terms = set(question.terms) - given
    sent_tokens = [set(tokenize(c.text)) for c in cands]
    ctx_tokens = [set(tokenize(c.context)) | set(tokenize(c.hit.chunk.title)) for c in cands]
    idf = {t: math.log(1 + len(cands) / (1 + sum(t in c for c in ctx_tokens))) for t in q_terms}
    total = sum(idf.values()) or 1.0
    lex = np.array([sum(w for t, w in idf.items() if t in st) / total for st in sent_tokens])
    lex_ctx = np.array([sum(w * (1.0 if t in st else CONTEXT_SHARE if t in ct else 0.0) for t, w in idf.items()) / total
                        for st, ct in zip(sent_tokens, ctx_tokens)])
    vectors = embedder.embed([question.text] + [c.text for c in cands])
    dense = vectors[1:] @ vectors[0]
    first = 0.5 * dense + 0.5 * lex_ctx
    short = np.argsort(-first)[:SHORTLIST]
    docs = parser([cands[j].text for j in short])
    # The sentence under its article's title: "He also discovered aluminium" is about the title's Ørsted.
    titled = embedder.embed([f"{cands[j].hit.chunk.title}: {cands[j].text}" for j in short]) @ vectors[0]
    q_names = [n for n in question.names if tokenize(n)]
    q_folded = fold(question.text)
    q_tok = set(tokenize(question.text))
    out: list[Evidence] = []
    for j, doc, dense_title in zip(short, docs, titled):
        c = cands[j]
        st, ct = sent_tokens[j], ctx_tokens[j] | set(tokenize(c.hit.chunk.text[: c.start - c.hit.chunk.start]))
        names_sent = _share([_has_name(n, st) for n in q_names])
        names_ctx = _share([_has_name(n, ct) for n in q_names])
        numbers_ctx = _share([fold(n) in fold(c.context) for n in question.numbers])
        span, distance = _typed_span(doc, question, q_folded, q_tok) if question.typed else ("", 50)
        lemmas = {t.lemma_.lower() for t in doc}
        subj = question.subject
        x = {
            "dense": float(dense[j]), "dense_gap": float(dense.max() - dense[j]),
            "dense_title": float(dense_title), "dense_title_gap": float(titled.max() - dense_title),
            "lex": float(lex[j]), "lex_ctx": float(lex_ctx[j]), "lex_gap": float(lex_ctx.max() - lex_ctx[j]),
            "names_sent": names_sent, "names_ctx": names_ctx, "numbers_ctx": numbers_ctx,
            "typed": float(question.typed), "type_new": float(bool(span)),
            "span_close": 1.0 / (1.0 + distance) if span else 0.0,
            "new_name": float(_new_name(doc, q_tok)),
            "verb": float(any(v in lemmas for v in question.verbs)), "no_verb": float(not question.verbs),
            "subject_in_sent": float(bool(subj) and _has_name(subj, st)),
            "subject_role": float(bool(subj) and _is_subject(doc, subj)),
            "pronoun_subject": float(any(t.dep_ in ("nsubj", "nsubjpass") and t.pos_ == "PRON" for t in doc)),
            **_verb_features(doc, question, q_folded, q_tok),
            # "Which chemical element …?" – "He also discovered aluminium, a chemical element."
            "form_noun": float(bool(question.form_noun) and question.form_noun in lemmas),
            **_unit_features(doc, question, span),
            "rank": 1.0 / c.hit.rank, "first": float(c.index == 0), "short": float(len(doc) < 8),
        }
        p = model.probability(x) if model is not None else float(first[j])
        out.append(Evidence(0, c.hit, c.text, c.start, c.end, c.context, p, x, span))
    out.sort(key=lambda ev: -ev.score)
    return [Evidence(i + 1, ev.hit, ev.text, ev.start, ev.end, ev.context, ev.score, ev.features, ev.span)
            for i, ev in enumerate(out[:limit])]


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 1.0


def _has_name(name: str, tokens: set[str]) -> bool:
    """A name is there when its last word is: "Koštunica" stands for "Vojislav Koštunica"."""
    words = tokenize(name)
    return bool(words) and words[-1] in tokens


def _verb_features(doc, question: Question, q_folded: str, q_tok: set[str]) -> dict[str, float]:
    """Roles: the sentence uses the asked verb, the asked type stands among that verb's dependents
    (the slot the question word fills), and the question's other arguments stand there too."""
    if not question.verb:
        return {"verb_found": 0.0, "verb_slot": 0.0, "verb_args": 0.0, "unslotted": 0.0}
    best_slot, best_args, found = 0.0, 0.0, 0.0
    for tok in doc:
        if tok.lemma_.lower() != question.verb or tok.pos_ not in ("VERB", "NOUN", "ADJ"):
            continue
        found = 1.0
        inside = {t.i for t in tok.subtree}
        words = set(tokenize(" ".join(t.text for t in tok.subtree)))
        args = _share([a in words for a in question.arguments])
        slot = 0.0
        if question.typed:
            for ent in doc.ents:
                if ent.label_ in question.expected and ent.start in inside and not (set(tokenize(ent.text)) & q_tok):
                    slot = 1.0
        best_slot, best_args = max(best_slot, slot), max(best_args, args)
    # A figure of the asked type that is not among the asked verb's dependents answers something else.
    unslotted = float(question.typed and found == 0.0 or (question.typed and best_slot == 0.0))
    return {"verb_found": found, "verb_slot": best_slot, "verb_args": best_args, "unslotted": unslotted}


def _unit_features(doc, question: Question, span: str) -> dict[str, float]:
    """What "how many votes" counts must be what the figure counts: "1,119 votes", not "38.62 percent"."""
    if not question.unit or not span:
        return {"unit": 0.0, "unit_missing": 0.0}
    for ent in doc.ents:
        if ent.text == span:
            near = ({t.lemma_.lower() for t in doc[ent.start: min(len(doc), ent.end + 3)]}
                    | {ent.root.head.lemma_.lower()})
            hit = question.unit in near
            return {"unit": float(hit), "unit_missing": float(not hit)}
    return {"unit": 0.0, "unit_missing": 1.0}


def _new_name(doc, q_tok: set[str]) -> bool:
    """The sentence names something (not a figure) that the question does not."""
    return any(ent.label_ not in _FIGURES and not set(tokenize(ent.text)) & q_tok for ent in doc.ents)


_FIGURES = frozenset({"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"})


def _typed_span(doc, question: Question, q_folded: str, q_tok: set[str]) -> tuple[str, int]:
    """The entity of an asked type that the question does not already name, nearest the question's
    words, and its distance in tokens from them."""
    best, best_d = "", 1e9
    for ent in doc.ents:
        if ent.label_ not in question.expected:
            continue
        words = set(tokenize(ent.text))
        if fold(ent.text) in q_folded or (words and words <= q_tok):
            continue  # "Slobodan Milošević" does not answer a question about Milošević
        if ent.label_ in ("PERSON", "ORG", "NORP", "GPE", "LOC", "FAC") and words & q_tok:
            continue
        anchors = [t.i for t in doc if t.lower_ and set(tokenize(t.text)) & q_tok]
        d = min((abs(a - ent.start) for a in anchors), default=50)
        if d < best_d:
            best, best_d = ent.text, d
    return best, int(best_d)


def _is_subject(doc, name: str) -> bool:
    last = tokenize(name)[-1:]
    for tok in doc:
        if tok.dep_ in ("nsubj", "nsubjpass", "agent") and last:
            if last[0] in set(tokenize(" ".join(t.text for t in tok.subtree))):
                return True
    return False
